"""Turn the workflow file's plain data into the pydantic model, with located errors.

A pydantic :class:`~pydantic.ValidationError` lists every problem with a ``loc`` path such as
``("states", "transmitted", "deadline", "within")``. :func:`parse_definition` reports the first
one as a single :class:`InvalidDefinition` at that place in the YAML file, naming the value,
the allowed values (enum members, or the valid keys with the closest one suggested) and the fix.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from case_workflow.definition.model import WorkflowDefinition
from case_workflow.definition.reader import DataPath, Document, child
from case_workflow.errors import InvalidDefinition

__all__ = ["parse_definition"]


def parse_definition(document: Document) -> WorkflowDefinition:
    """Validate ``document.data`` against :class:`WorkflowDefinition`.

    Raises one :class:`InvalidDefinition` for the most useful error pydantic reports.
    """
    try:
        return WorkflowDefinition.model_validate(document.data)
    except ValidationError as error:
        raise _translate(error, document) from None


def _data_path(document: Document, detail: ErrorDetails) -> tuple[DataPath, bool]:
    """Map an error's ``loc`` onto the data, dropping union member tags such as ``"str"``.

    A missing key stays as the last step. Returns the path and whether a step had to be
    dropped, which means the error sits in one branch of a union.
    """
    loc = tuple(detail["loc"])
    node: object = document.data
    path: list[str | int] = []
    dropped = False
    for position, step in enumerate(loc):
        found, value = child(node, step)
        if found:
            path.append(step)
            node = value
        elif position == len(loc) - 1 and detail["type"] == "missing":
            path.append(step)
        else:
            dropped = True
    return tuple(path), dropped


def _pick(errors: list[ErrorDetails], document: Document) -> ErrorDetails:
    """Return the error to report: the first, unless it is a union branch that did not apply.

    For ``calendar: {bse: x}`` pydantic reports both "not a string" and "unknown key bse";
    the deeper error of the same value is the one that helps.
    """
    first = errors[0]
    path, dropped = _data_path(document, first)
    if first["type"] == "missing":
        # A missing key next to an unknown one is usually a misspelling: report the unknown one.
        parent = tuple(first["loc"][:-1])
        for other in errors:
            if other["type"] == "extra_forbidden" and tuple(other["loc"][:-1]) == parent:
                return other
    if not dropped:
        return first
    paths = [(_data_path(document, error)[0], error) for error in errors]
    related = [(where, error) for where, error in paths if where[: len(path)] == path]
    return max(related, key=lambda item: len(item[0]))[1]


def _dotted(path: DataPath) -> str:
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        elif text:
            text += f".{step}"
        else:
            text = step
    return text or "the top level"


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """Return the pydantic model class that validates the mapping at ``loc``."""
    current: Any = WorkflowDefinition
    for step in loc:
        current = _unwrap(current)
        origin = typing.get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next(
                (f for name, f in current.model_fields.items() if step in (name, f.alias)), None
            )
            if field is None:
                return None
            current = field.annotation
        elif origin in (Union, types.UnionType):
            members = [_unwrap(member) for member in typing.get_args(current)]
            named = [m for m in members if getattr(m, "__name__", None) == step]
            if not named:
                return None
            current = named[0]
        elif origin is dict:
            current = typing.get_args(current)[1]
        elif origin is list:
            current = typing.get_args(current)[0]
        else:
            return None
    current = _unwrap(current)
    if typing.get_origin(current) in (Union, types.UnionType):
        models = [m for m in typing.get_args(current) if isinstance(m, type)]
        current = next((m for m in models if issubclass(m, BaseModel)), None)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _keys_of(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _translate(error: ValidationError, document: Document) -> InvalidDefinition:
    detail = _pick(error.errors(), document)
    loc = tuple(detail["loc"])
    path, _ = _data_path(document, detail)
    kind = detail["type"]
    where = _dotted(path)

    if kind == "extra_forbidden":
        key = str(loc[-1])
        valid = _keys_of(_model_at(loc[:-1]))
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return document.error(
            path,
            f"unknown key {key!r} in {_dotted(path[:-1])}; valid keys: {', '.join(valid)}",
            value=key,
            fix=f"{hint}use one of the valid keys or remove {key!r}",
            at_key=True,
        )
    if kind == "missing":
        key = str(loc[-1])
        return document.error(
            path[:-1],
            f"missing required key {key!r} in {_dotted(path[:-1])}",
            value=None,
            fix=f"add '{key}: ...' to {_dotted(path[:-1])}",
            at_key=True,
        )

    value = detail.get("input")
    context = detail.get("ctx") or {}
    message = detail["msg"].removeprefix("Value error, ")
    if kind in {"enum", "literal_error"}:
        allowed = str(context.get("expected", ""))
        return document.error(
            path,
            f"invalid value {value!r} for {where}; allowed: {allowed}",
            value=value,
            fix=f"use one of: {allowed}",
        )
    if kind in {"value_error", "assertion_error"}:
        # Our validators already name the value and the fix.
        return document.error(path, f"{where}: {message}", value=value, fix=None)
    return document.error(
        path,
        f"invalid value {value!r} for {where}: {message}",
        value=value,
        fix=_fix_for(kind, where),
    )


def _fix_for(kind: str, where: str) -> str:
    if kind in {"dict_type", "model_type"}:
        return f"write {where} as a mapping of 'key: value' lines"
    if kind == "list_type":
        return f"write {where} as a list, for example [a, b]"
    if kind in {"int_type", "int_parsing", "greater_than_equal"}:
        return f"write {where} as a whole number, 1 or more"
    if kind in {"string_type", "str_type"}:
        return f"write {where} as text (quote it if needed)"
    if kind in {"bool_type", "bool_parsing"}:
        return f"write {where} as true or false"
    if kind == "too_short":
        return f"give {where} at least one entry"
    return f"correct {where} as the message says"
