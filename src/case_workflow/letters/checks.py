"""Static checks of letter templates, run when a workflow is loaded.

A template must exist, parse, compile (unknown filters are compile errors) and use only the
names and attributes of the letter context schema. Attribute use is found by walking the Jinja
AST for ``name.attribute`` and ``name["attribute"]``; templates that are included, imported or
extended are checked the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from jinja2 import Environment, TemplateNotFound, TemplateSyntaxError, meta, nodes

from case_workflow.errors import InvalidDefinition
from case_workflow.letters.sandbox import template_error

__all__ = ["check_template"]


def check_template(
    environment: Environment,
    name: str,
    schema: Mapping[str, frozenset[str]],
    *,
    search_path: str,
    _seen: set[str] | None = None,
) -> None:
    """Check template ``name`` and every template it references against ``schema``.

    Raises :class:`InvalidDefinition` naming the template file, the line and the offending
    value. ``search_path`` lists the template folders, for the message of a missing file.
    """
    seen = _seen if _seen is not None else set()
    if name in seen:
        return
    seen.add(name)

    if environment.loader is None:
        raise InvalidDefinition("the template environment has no loader", value=name)
    try:
        source, filename, _ = environment.loader.get_source(environment, name)
    except TemplateNotFound:
        raise InvalidDefinition(
            f"letter template {name!r} not found",
            file=name,
            value=name,
            fix=f"create {name} in one of the template folders: {search_path}",
        ) from None

    file = filename or name
    try:
        tree = environment.parse(source, name, file)
        # Compiling finds unknown filters and tests, which parsing accepts.
        environment.compile(source, name, file)
    except TemplateSyntaxError as error:
        raise template_error(error, name) from None

    _check_names(tree, schema, set(environment.globals), file)
    _check_attributes(tree, schema, file)

    for child in meta.find_referenced_templates(tree):
        if child is None:
            raise InvalidDefinition(
                "template names another template through a variable",
                file=file,
                value=name,
                fix="write the included, imported or extended template name as a literal string",
            )
        check_template(environment, child, schema, search_path=search_path, _seen=seen)


def _names_loaded(tree: nodes.Template) -> Iterator[nodes.Name]:
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load":
            yield node


def _check_names(
    tree: nodes.Template,
    schema: Mapping[str, frozenset[str]],
    global_names: set[str],
    file: str,
) -> None:
    # A block reads the names its template sets at top level from the context, so Jinja
    # reports them as undeclared although the template defines them.
    undeclared = meta.find_undeclared_variables(tree) - _local_names(tree)
    unknown = undeclared - set(schema) - global_names
    if not unknown:
        return
    first = min(
        (node for node in _names_loaded(tree) if node.name in unknown),
        key=lambda node: node.lineno,
    )
    if first.name == "deadline":
        raise InvalidDefinition(
            "template uses 'deadline', which only letters sent for a deadline receive",
            file=file,
            line=first.lineno,
            value="deadline",
            fix="use this letter only for deadline reminders and escalations, or remove "
            "'deadline'; use one of: " + ", ".join(sorted(schema)),
        )
    raise InvalidDefinition(
        f"template uses unknown variable {first.name!r}",
        file=file,
        line=first.lineno,
        value=first.name,
        fix="use one of: " + ", ".join(sorted(schema)),
    )


def _local_names(tree: nodes.Template) -> set[str]:
    """Return the names the template binds itself (loops, set, macros, imports, with)."""
    local: set[str] = set()
    for node in tree.find_all(nodes.Name):
        if node.ctx in {"store", "param"}:
            local.add(node.name)
    for macro in tree.find_all(nodes.Macro):
        local.add(macro.name)
    for imported in tree.find_all(nodes.Import):
        local.add(imported.target)
    for from_import in tree.find_all(nodes.FromImport):
        for item in from_import.names:
            local.add(item[1] if isinstance(item, tuple) else item)
    return local


def _accessed_attribute(node: nodes.Node) -> tuple[str, str, int] | None:
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        return node.node.name, node.attr, node.lineno
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.node, nodes.Name)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        return node.node.name, node.arg.value, node.lineno
    return None


def _check_attributes(
    tree: nodes.Template, schema: Mapping[str, frozenset[str]], file: str
) -> None:
    # NOTE: a name bound anywhere in the template (for example a loop variable called
    # 'dossier') is treated as local everywhere in it, so its attributes go unchecked.
    local = _local_names(tree)
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        access = _accessed_attribute(node)
        if access is None:
            continue
        name, attribute, line = access
        if name in local or name not in schema:
            continue
        if attribute not in schema[name]:
            choices = ", ".join(f"{name}.{known}" for known in sorted(schema[name]))
            raise InvalidDefinition(
                f"template uses unknown attribute {name}.{attribute}",
                file=file,
                line=line,
                value=f"{name}.{attribute}",
                fix=f"use one of: {choices}",
            )
