"""YAML loading that remembers where every key and value came from.

Only `yaml.safe_load` semantics: nodes are composed with the SafeLoader and
scalars built by its SafeConstructor, so no tag can construct an object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

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


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def load_with_positions(text: str) -> tuple[dict[str, Any], Positions]:
    """Parse `text` as YAML and return the data with the position of every node."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlError(line, col, f"invalid YAML: {exc.problem}", "fix the YAML syntax") from None
    finally:
        loader.dispose()
    positions = Positions()
    if root is None:
        raise YamlError(1, 1, "the file is empty", "start with `memeval: 1`")
    if not isinstance(root, yaml.MappingNode):
        raise YamlError(*_mark(root), "the top level is not a mapping", "start with `memeval: 1`")
    constructor = yaml.SafeLoader("")

    def build(node: yaml.Node, path: Path_) -> Any:
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
                key = constructor.construct_object(key_node, deep=True)
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
        try:
            return constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            raise YamlError(*_mark(node), f"unsupported YAML tag {node.tag}",
                            "use plain strings, numbers, lists and mappings") from None

    return build(root, ()), positions
