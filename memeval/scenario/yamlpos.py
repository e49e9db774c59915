"""YAML loading that remembers where every key and value came from, and cannot be crashed
or stalled by what a file holds.

Only `yaml.safe_load` semantics: nodes are composed with the SafeLoader and
scalars built by its SafeConstructor, so no tag can construct an object. Every
problem is a `YamlError` with a line and column; limits on size, nesting and
alias expansion keep a hostile file from exhausting memory or the stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

_CLOADER = getattr(yaml, "__with_libyaml__", False)

Path_ = tuple[str | int, ...]


@dataclass
class Positions:
    """1-based (line, column) of values and of mapping keys, by path."""

    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def of(self, path: Path_) -> tuple[int, int]:
        """Position of the value at `path`, or of its nearest ancestor."""
        path = tuple(path)
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), (1, 1))

    def of_key(self, path: Path_) -> tuple[int, int]:
        """Position of the key that names `path`, falling back to its value."""
        return self.keys.get(tuple(path)) or self.of(path)


class YamlError(Exception):
    """A file that is not valid YAML, or not a mapping at the top."""

    def __init__(self, line: int, column: int, message: str, fix: str):
        self.line, self.column, self.message, self.fix = line, column, message, fix
        super().__init__(message)


_COLLECTION_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}

#: Limits on what one file may hold.
MAX_BYTES = 256 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASED = 100_000  # values reached again through aliases: an alias bomb stops here


def line_of(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset."""
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _compose_fast(text: str) -> yaml.Node | None:
    """The node tree from libyaml's C parser (about 9× faster), or None where it is absent,
    finds an error, or would accept what the pure-Python reader rejects: the messages come
    from the pure-Python parser only."""
    if not _CLOADER or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return None
    loader = yaml.CSafeLoader(text)
    try:
        return loader.get_single_node()
    except Exception:  # any error at all: the pure-Python parser names it
        return None
    finally:
        loader.dispose()


def load_with_positions(text: str) -> tuple[dict[str, Any], Positions]:
    """Parse `text` as YAML and return the data with the position of every node."""
    if len(text) > MAX_BYTES:
        raise YamlError(1, 1, f"the file is larger than {MAX_BYTES // 2**20} MB, the limit",
                        "split it into several scenarios")
    root = _compose_fast(text)
    loader: yaml.SafeLoader | None = None
    try:
        if root is None:  # the C parser failed (or is absent): read again for the message
            loader = yaml.SafeLoader(text)
            root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlError(line, col, f"invalid YAML: {exc.problem}", "fix the YAML syntax") from None
    except yaml.reader.ReaderError as exc:  # a control character: not YAML text at all
        line, col = line_of(text, exc.position)
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise YamlError(line, col, f"invalid character {char!r}",
                        "remove it (YAML text cannot hold control characters)") from None
    except RecursionError:
        raise YamlError(1, 1, "the YAML nests too deeply to read",
                        f"nest at most {MAX_DEPTH} levels") from None
    finally:
        if loader is not None:
            loader.dispose()
    positions = Positions()
    if root is None:
        raise YamlError(1, 1, "the file is empty", "start with `memeval: 1`")
    if not isinstance(root, yaml.MappingNode):
        raise YamlError(*_mark(root), "the top level is not a mapping", "start with `memeval: 1`")
    constructor = yaml.SafeLoader("")
    seen: set[int] = set()
    aliased = 0

    def build(node: yaml.Node, path: Path_) -> Any:
        nonlocal aliased
        if id(node) in seen:  # reached again: an alias
            aliased += 1
            if aliased > MAX_ALIASED:
                raise YamlError(*_mark(node), f"aliases expand to more than {MAX_ALIASED:,} "
                                "values (aliases within aliases?)", "write the values out")
        seen.add(id(node))
        if len(path) > MAX_DEPTH:
            message = (f"nested deeper than {MAX_DEPTH} levels (an alias that contains itself?)"
                       if aliased else "the YAML nests too deeply to read")
            raise YamlError(*_mark(node), message, f"nest at most {MAX_DEPTH} levels")
        positions.values[path] = _mark(node)
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _COLLECTION_TAGS:
            raise YamlError(*_mark(node), f"unsupported YAML tag {node.tag}",
                            "use plain strings, numbers, lists and mappings")
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise YamlError(*_mark(key_node), "merge keys (<<) are not supported",
                                    "write the keys out")
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YamlError(*_mark(key_node), "a key is a list or mapping",
                                    "keys are plain names")
                key = scalar(key_node)
                if not isinstance(key, str):
                    key = str(key)
                if key in out:
                    raise YamlError(*_mark(key_node), f"duplicate key '{key}'",
                                    "remove one of the two")
                positions.keys[(*path, key)] = _mark(key_node)
                out[key] = build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*path, i)) for i, item in enumerate(node.value)]
        return scalar(node)

    def scalar(node: yaml.Node) -> Any:
        try:
            return constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            raise YamlError(*_mark(node), f"unsupported YAML tag {node.tag}",
                            "use plain strings, numbers, lists and mappings") from None
        except Exception as exc:  # a value its tag cannot hold: 2025-13-01, !!int abc, !!bool maybe
            shown = str(getattr(node, "value", ""))[:40]
            raise YamlError(*_mark(node), f"cannot read {shown!r} as {node.tag.rsplit(':', 1)[-1]}"
                            f" ({type(exc).__name__}: {exc})",
                            "correct the value, or quote it to keep it as text") from None

    return build(root, ()), positions
