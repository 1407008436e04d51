"""Safe YAML reader that keeps the line and column of every key and value.

The reader composes PyYAML's node tree (never constructing arbitrary Python objects), builds
plain data from it and records the position of each value and each mapping key, so later stages
(the pydantic model, the static checks, the template checks) can point at ``FILE:LINE:COLUMN``.

Scalars follow YAML 1.2 rather than PyYAML's YAML 1.1 defaults: only ``true``/``false`` are
booleans (``yes``, ``no``, ``on``, ``off`` stay text), dates stay text, and ``08:30`` is not a
base-60 number. Duplicate keys and merge keys (``<<``) are rejected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from case_workflow.errors import InvalidDefinition

__all__ = ["DataPath", "Document", "Marks", "child", "read_document", "read_file"]

DataPath = tuple[str | int, ...]
"""A path into the data: mapping keys and sequence indexes, for example ``("states", "filed")``."""

_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$")
_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]+(?:[eE][-+]?[0-9]+)?$")


class _Loader(yaml.SafeLoader):
    """A safe loader whose implicit scalar types follow the YAML 1.2 core schema."""


# Start from no implicit resolvers rather than a copy of PyYAML's YAML 1.1 ones.
_Loader.yaml_implicit_resolvers = {}

for _tag, _regexp, _first in (
    ("tag:yaml.org,2002:bool", _BOOL, "tTfF"),
    ("tag:yaml.org,2002:null", _NULL, ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", _INT, "-+0123456789"),
    ("tag:yaml.org,2002:float", _FLOAT, "-+0123456789."),
    ("tag:yaml.org,2002:merge", re.compile(r"^<<$"), "<"),
):
    _Loader.add_implicit_resolver(_tag, _regexp, list(_first))


@dataclass(frozen=True)
class Marks:
    """1-based ``(line, column)`` of each value and each mapping key, by path."""

    values: dict[DataPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[DataPath, tuple[int, int]] = field(default_factory=dict)

    def of_value(self, path: DataPath) -> tuple[int, int] | None:
        """Return the place of the value at ``path``, or of its nearest recorded ancestor."""
        for prefix in _prefixes(path):
            if prefix in self.values:
                return self.values[prefix]
        return None

    def of_key(self, path: DataPath) -> tuple[int, int] | None:
        """Return the place of the key ending ``path``, falling back to :meth:`of_value`."""
        return self.keys.get(path) or self.of_value(path)


def _prefixes(path: DataPath) -> Iterator[DataPath]:
    for end in range(len(path), -1, -1):
        yield path[:end]


@dataclass(frozen=True)
class Document:
    """A parsed workflow file: its plain data, the position of each part, and the file name."""

    data: object
    marks: Marks
    file: str

    def error(
        self,
        path: DataPath,
        message: str,
        *,
        value: object = None,
        fix: str | None = None,
        at_key: bool = False,
    ) -> InvalidDefinition:
        """Build an :class:`InvalidDefinition` located at the value (or key) at ``path``."""
        place = self.marks.of_key(path) if at_key else self.marks.of_value(path)
        line, column = place if place is not None else (None, None)
        return InvalidDefinition(
            message, file=self.file, line=line, column=column, value=value, fix=fix
        )

    def get(self, path: DataPath) -> object:
        """Return the data at ``path``; raise ``KeyError`` when a step is missing."""
        node = self.data
        for step in path:
            found, node = child(node, step)
            if not found:
                raise KeyError(path)
        return node


def child(node: object, step: str | int) -> tuple[bool, object]:
    """Return ``(True, value)`` for a key or index ``step`` of ``node``, else ``(False, None)``."""
    if isinstance(node, dict) and step in node:
        return True, node[step]
    if isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
        return True, node[step]
    return False, None


def read_file(path: str | Path) -> Document:
    """Read and parse a workflow file; raise :class:`InvalidDefinition` if it cannot be read."""
    file = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_FILE_BYTES:
            raise InvalidDefinition(
                f"workflow file is {size:,} bytes, more than the {MAX_FILE_BYTES:,} allowed",
                file=file,
                fix="check that this is the workflow file; split data such as long "
                "respondent lists out of it",
            )
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidDefinition(
            "workflow file not found", file=file, fix="check the path and the file name"
        ) from None
    except UnicodeDecodeError as error:
        raise InvalidDefinition(
            f"workflow file is not valid UTF-8 ({error.reason} at byte {error.start})",
            file=file,
            fix="save the file as UTF-8",
        ) from None
    except OSError as error:
        raise InvalidDefinition(
            f"workflow file cannot be read: {error.strerror}",
            file=file,
            fix="check that the path names a readable file",
        ) from None
    return read_document(text, file)


def read_document(text: str, file: str = "<definition>") -> Document:
    """Parse YAML ``text`` into a :class:`Document`; raise :class:`InvalidDefinition` on errors."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        _raise_syntax_error(error, text, file)
    except yaml.YAMLError as error:
        raise InvalidDefinition(
            f"invalid YAML: {error}", file=file, fix="check the file's YAML syntax"
        ) from None
    finally:
        loader.dispose()
    if root is None:
        raise InvalidDefinition(
            "the workflow file is empty",
            file=file,
            line=1,
            column=1,
            fix="start with 'workflow: NAME' and 'version: 1'",
        )
    builder = _Builder(loader, file)
    data = builder.build(root, ())
    if not isinstance(data, dict):
        line, column = _place(root)
        raise InvalidDefinition(
            f"the top level of a workflow file must be a mapping, got {type(data).__name__}",
            file=file,
            line=line,
            column=column,
            value=data,
            fix="write 'key: value' lines such as 'workflow: NAME' at the top level",
        )
    return Document(data=data, marks=builder.marks, file=file)


def _place(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _raise_syntax_error(error: yaml.MarkedYAMLError, text: str, file: str) -> NoReturn:
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    problem = error.problem or "invalid YAML"
    if "'\\t'" in problem or (mark is not None and _line_has_tab(text, mark.line)):
        fix = "indent with spaces; YAML does not allow tab characters in indentation"
    elif "mapping values are not allowed" in problem:
        fix = (
            "check the indentation of this line against the line above, "
            "or quote a value that contains ': '"
        )
    elif "expected <block end>" in problem or "did not find expected" in problem:
        fix = "align this line with its siblings; nested keys need more indentation than parents"
    else:
        fix = "check the indentation and the ':' after each key near this place"
    context = f" ({error.context})" if error.context else ""
    raise InvalidDefinition(
        f"invalid YAML: {problem}{context}", file=file, line=line, column=column, fix=fix
    ) from None


def _line_has_tab(text: str, index: int) -> bool:
    lines = text.splitlines()
    return 0 <= index < len(lines) and "\t" in lines[index]


# Far above any real workflow file (the shipped ones have a few thousand values, 20 KB).
MAX_VALUES = 200_000
MAX_FILE_BYTES = 5_000_000


class _Builder:
    """Turn composed nodes into dicts, lists and scalars while recording marks."""

    def __init__(self, loader: _Loader, file: str) -> None:
        self._loader = loader
        self._file = file
        self._active: set[int] = set()
        self._built = 0
        self.marks = Marks()

    def build(self, node: Node, path: DataPath) -> object:
        # Aliases are expanded here, so a few lines of anchors could otherwise grow into
        # billions of values (the "billion laughs" file) and exhaust memory.
        self._built += 1
        if self._built > MAX_VALUES:
            self._fail(
                node,
                f"the workflow file expands to more than {MAX_VALUES:,} values",
                "remove YAML aliases (*name) that repeat large parts of the file",
            )
        self.marks.values[path] = _place(node)
        if isinstance(node, ScalarNode):
            return self._loader.construct_object(node, deep=True)
        if id(node) in self._active:
            self._fail(node, "recursive YAML alias", "remove the alias that refers to itself")
        self._active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self._build_mapping(node, path)
        finally:
            self._active.discard(id(node))
        self._fail(node, f"unsupported YAML node {node.tag}", "use plain mappings and lists")

    def _build_mapping(self, node: MappingNode, path: DataPath) -> dict[str, object]:
        result: dict[str, object] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self._fail(
                    key_node,
                    "merge keys ('<<') are not supported in workflow files",
                    "write the keys out in full",
                )
            key = self._loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                self._fail(
                    key_node,
                    f"mapping key {key!r} is not text",
                    f"quote the key, for example '\"{key}\":'",
                )
            if key in result:
                first = self.marks.keys[(*path, key)]
                self._fail(
                    key_node,
                    f"duplicate key {key!r} (first defined at line {first[0]})",
                    "remove or rename one of the two keys",
                )
            self.marks.keys[(*path, key)] = _place(key_node)
            result[key] = self.build(value_node, (*path, key))
        return result

    def _fail(self, node: Node, message: str, fix: str) -> NoReturn:
        line, column = _place(node)
        raise InvalidDefinition(message, file=self._file, line=line, column=column, fix=fix)
