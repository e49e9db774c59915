"""Resolve adapter specs: `NAME[:opt=value,...]` or `module.path:Class[:opt=value,...]`.

Names come from the entry-point group `memeval.adapters` (the built-ins are
registered there too, and also known without installation metadata).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import typing
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any, TypeVar

from memeval.errors import MemevalError
from memeval.protocols import MemoryBackend, Reader

T = TypeVar("T")

GROUP = "memeval.adapters"
BUILTIN = {
    "full_context": "memeval.adapters.backends.full_context:FullContext",
    "no_memory": "memeval.adapters.backends.no_memory:NoMemory",
    "oracle": "memeval.adapters.backends.oracle:Oracle",
    "window": "memeval.adapters.backends.window:Window",
    "rag": "memeval.adapters.backends.rag:Rag",
    "bm25": "memeval.adapters.backends.bm25:Bm25",
    "langchain": "memeval.adapters.backends.langchain:LangChain",
    "summary": "memeval.adapters.backends.summary:Summary",
    "hybrid": "memeval.adapters.backends.hybrid:Hybrid",
    "mem0": "memeval.adapters.backends.mem0:Mem0",
    "embedded": "memeval.adapters.readers.embedded:EmbeddedReader",
    "transformers": "memeval.adapters.readers.transformers:TransformersReader",
    "openai": "memeval.adapters.readers.openai:OpenAIReader",
    "langchain-reader": "memeval.adapters.readers.langchain:LangChainReader",
    "extractive": "memeval.adapters.readers.extractive:ExtractiveReader",
}
_SECRET = re.compile(r"(^|_)(api_?key|key|secret|password|passwd|token|auth|credentials?)$", re.I)
_SECRET_OPTION = re.compile(r"(?<![\w])((?:\w*_)?(?:api_?key|key|secret|password|passwd|token|auth|"
                            r"credentials?)=)([^,;\s]+)", re.I)
_URL_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")
_URL_QUERY_VALUE = re.compile(r"([?&][^=&\s]+=)[^&#,;\s]+")


@lru_cache(maxsize=1)
def known_adapters() -> dict[str, str]:
    """Adapter names and their `module:Class` targets."""
    names = dict(BUILTIN)
    for ep in entry_points(group=GROUP):
        names.setdefault(ep.name, ep.value)
    return names


def _value(text: str) -> Any:
    lowered = text.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered in {"none", "null"}:
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_options(text: str, spec: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise MemevalError(f"adapter '{spec}': option '{part}' is not key=value "
                               "(write e.g. `rag:top_k=8,chunk=session`)")
        options[key.strip()] = _value(value.strip())
    return options


def split_spec(spec: str) -> tuple[str, str, dict[str, Any]]:
    """(label, 'module:Class' target, options) of a spec string."""
    head, _, rest = spec.partition(":")
    known = known_adapters()
    if head in known:
        return head, known[head], parse_options(rest, spec)
    cls_name, _, opts = rest.partition(":")
    if not cls_name.isidentifier():
        close = difflib.get_close_matches(head, known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(sorted(known))}"
        raise MemevalError(f"unknown adapter '{spec}' ({hint}; or give module.path:Class)")
    return f"{head}:{cls_name}", f"{head}:{cls_name}", parse_options(opts, spec)


def _import(target: str, spec: str) -> type:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise MemevalError(f"adapter '{spec}': no module named '{module_name}' "
                               "(is it installed, or on PYTHONPATH?)") from None
        raise MemevalError(f"adapter '{spec}' needs the package '{exc.name}' "
                           "(install memeval's extra for it, e.g. pip install 'memeval[local]')"
                           ) from None
    except Exception as exc:  # a user's module that fails at import time
        raise MemevalError(f"adapter '{spec}': importing {module_name} failed: "
                           f"{type(exc).__name__}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise MemevalError(f"adapter '{spec}': module '{module_name}' has no '{attr}'") from None


def build(spec: str | T | type[T], base: type[T]) -> tuple[str, T]:
    """Return (label, instance) for a spec string or an already-built object."""
    what = "backend" if base is MemoryBackend else "reader"
    if not isinstance(spec, str):
        if isinstance(spec, type):
            spec = spec()
        if not isinstance(spec, base):
            raise MemevalError(f"{spec!r} is not a {base.__name__}: subclass "
                               f"memeval.{base.__name__} and implement its abstract methods")
        label = getattr(spec, "name", None) or type(spec).__name__
        return str(label), spec
    label, target, options = split_spec(spec)
    cls = _import(target, spec)
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise MemevalError(f"'{spec}' is not a {what}: {target} must subclass "
                           f"memeval.{base.__name__}")
    params = inspect.signature(cls).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    unknown = [k for k in options if k not in params and not takes_any]
    if unknown:
        allowed = [p for p in params if p not in {"self", "args", "kwargs"}]
        raise MemevalError(f"{what} '{label}' has no option '{unknown[0]}' "
                           f"(options: {', '.join(allowed) or 'none'})")
    _check_types(cls, options, f"{what} '{label}'")
    try:
        instance = cls(**options)
    except (TypeError, ValueError) as exc:
        raise MemevalError(f"{what} '{spec}': {exc}") from None
    except Exception as exc:
        raise MemevalError(f"{what} '{spec}' failed to start: {type(exc).__name__}: {exc}") from None
    shown = ",".join(f"{k}={'***' if _secret(k) else redact(str(v))}" for k, v in options.items())
    return (f"{label}:{shown}" if shown else label), instance


def _check_types(cls: type, options: dict[str, Any], who: str) -> None:
    """Options against the constructor's annotations, so `window:tokens=abc` is one line here
    and not a TypeError deep in a run."""
    from pydantic import TypeAdapter, ValidationError

    try:
        params = inspect.signature(cls, eval_str=True).parameters
    except Exception:  # annotations that do not resolve: leave the check to the constructor
        return
    for key, value in options.items():
        hint = params[key].annotation if key in params else None
        if hint is None or hint is Any or hint is inspect.Parameter.empty:
            continue
        try:
            TypeAdapter(hint).validate_python(value, strict=not isinstance(value, int))
        except ValidationError:
            raise MemevalError(f"{who}: option {key}={value!r} is not {_type_name(hint)}") from None
        except Exception:  # a type pydantic cannot check (an object): the constructor will
            continue


def _type_name(hint: Any) -> str:
    names = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    return " or ".join(names.get(a, getattr(a, "__name__", str(a))) for a in args)


def redact(text: str) -> str:
    """`text` with secrets masked: values of secret-named options (key=, token=, password=…),
    credentials in URLs (user:pass@) and URL query values."""
    text = _SECRET_OPTION.sub(r"\1***", text)
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    return _URL_QUERY_VALUE.sub(r"\1***", text)


def _secret(key: str) -> bool:
    return _SECRET.search(key) is not None


def build_backend(spec: str | MemoryBackend | type[MemoryBackend]) -> tuple[str, MemoryBackend]:
    return build(spec, MemoryBackend)  # type: ignore[type-abstract] # an ABC is the check


def build_reader(spec: str | Reader | type[Reader]) -> tuple[str, Reader]:
    return build(spec, Reader)  # type: ignore[type-abstract] # an ABC is the check
