"""Load a workflow file: read YAML, validate the model, run the checks, check templates, compile.

:func:`load_workflow` is the pipeline's front door. Every stage raises
:class:`InvalidDefinition` located at ``FILE:LINE:COLUMN``, so a bad file fails at load time
and never halfway through a dossier's life.
"""

from __future__ import annotations

import importlib.resources
import logging
from collections.abc import Iterator
from pathlib import Path

from case_workflow.definition.checks import run_checks
from case_workflow.definition.model import WorkflowDefinition
from case_workflow.definition.reader import DataPath, Document, read_file
from case_workflow.definition.validation import parse_definition
from case_workflow.errors import InvalidDefinition, InvalidInput
from case_workflow.states import CompiledWorkflow

__all__ = [
    "builtin_workflows_dir",
    "check_templates",
    "load_builtin",
    "load_workflow",
    "shipped_workflows",
    "workflow_json_schema",
]

logger = logging.getLogger(__name__)

TEMPLATE_SUFFIX = ".html.j2"


def builtin_workflows_dir() -> Path:
    """Return the folder of the shipped workflows and their ``letters/`` templates.

    A wheel packages it as ``case_workflow/workflows``; a source checkout keeps it at the
    repository's top level.
    """
    packaged = importlib.resources.files("case_workflow").joinpath("workflows")
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    # NOTE: a package imported from a zip archive has no folder on disk; it falls through here.
    return Path(__file__).resolve().parents[3] / "workflows"


def load_workflow(path: str | Path) -> CompiledWorkflow:
    """Load, check and compile the workflow file at ``path``.

    Raises :class:`InvalidDefinition` naming the file, line, column, offending value and fix.
    """
    source = Path(path)
    document = read_file(source)
    definition = parse_definition(document)
    run_checks(definition, document)
    template_dirs = _template_dirs(source)
    check_templates(definition, document, template_dirs)
    compiled = CompiledWorkflow(definition, source=source.resolve(), template_dirs=template_dirs)
    logger.debug("loaded workflow %s from %s", compiled.key, source)
    return compiled


def shipped_workflows() -> list[str]:
    """Return the names of the shipped workflow files, leaving out exchange mappings beside them."""
    return sorted(
        path.stem
        for path in builtin_workflows_dir().glob("*.yaml")
        if any(
            line.startswith("workflow:") for line in path.read_text(encoding="utf-8").splitlines()
        )
    )


def load_builtin(name: str) -> CompiledWorkflow:
    """Load a shipped workflow by name, such as ``"mediator-alomrane"`` or ``"boston-311"``."""
    folder = builtin_workflows_dir()
    path = folder / f"{name}.yaml"
    if not path.is_file() or name not in shipped_workflows():
        shipped = shipped_workflows()
        raise InvalidInput(
            f"unknown built-in workflow {name!r}; shipped workflows: "
            f"{', '.join(shipped) or 'none'}; pass one of them or a workflow file path"
        )
    return load_workflow(path)


def workflow_json_schema() -> dict[str, object]:
    """Return the JSON Schema of a workflow file, with YAML key names (``from``, ``to``)."""
    schema: dict[str, object] = WorkflowDefinition.model_json_schema(by_alias=True)
    return schema


def _template_dirs(source: Path) -> tuple[Path, ...]:
    """Return the template search path: the workflow file's folder, then the shipped one."""
    folders = [source.resolve().parent, builtin_workflows_dir().resolve()]
    return tuple(dict.fromkeys(folders))


def _letter_contexts(definition: WorkflowDefinition) -> dict[str, set[bool]]:
    """Map each letter to the ``with_deadline`` values it is sent with.

    Reminder and escalation letters receive the deadline; so do letters sent on entering a
    state that has one. A letter never sent is checked without the deadline.
    """
    contexts: dict[str, set[bool]] = {name: set() for name in definition.letters}

    def use(letter: str, with_deadline: bool) -> None:
        contexts.setdefault(letter, set()).add(with_deadline)

    for spec in definition.states.values():
        for letter in spec.letters:
            use(letter, spec.deadline is not None)
        if spec.deadline is None:
            continue
        for reminder in spec.deadline.reminders:
            if reminder.letter is not None:
                use(reminder.letter, True)
        for level in spec.deadline.escalation:
            if level.letter is not None:
                use(level.letter, True)
    for transition in definition.transitions:
        for letter in transition.letters:
            use(letter, definition.states[transition.dest].deadline is not None)
    return {name: used or {False} for name, used in contexts.items()}


def _template_files(definition: WorkflowDefinition, template: str) -> Iterator[tuple[str, str]]:
    for language in definition.languages:
        yield language, f"{template}.{language}{TEMPLATE_SUFFIX}"


def check_templates(
    definition: WorkflowDefinition, document: Document, template_dirs: tuple[Path, ...]
) -> None:
    """Check that every letter has a template in every language, using only known values."""
    from case_workflow.notifications import LetterRenderer  # Jinja2 loads on demand

    search_path = ", ".join(str(folder) for folder in template_dirs)
    for name, letter in definition.letters.items():
        path: DataPath = ("letters", name, "template")
        _check_template_name(document, path, letter.template)
        for _language, file_name in _template_files(definition, letter.template):
            if not any((folder / file_name).is_file() for folder in template_dirs):
                raise document.error(
                    path,
                    f"letter {name!r}: template file {file_name!r} not found in the template "
                    f"folders ({search_path})",
                    value=letter.template,
                    fix=f"create {file_name} in one of those folders, or correct 'template'",
                )

    renderer = LetterRenderer(template_dirs)
    for name, with_deadline_values in _letter_contexts(definition).items():
        letter = definition.letters[name]
        for language in definition.languages:
            for with_deadline in sorted(with_deadline_values):
                try:
                    renderer.check(letter.template, language, with_deadline=with_deadline)
                except InvalidDefinition as error:
                    if error.file is not None:
                        raise
                    raise document.error(
                        ("letters", name, "template"),
                        error.message,
                        value=error.value,
                        fix=error.fix,
                    ) from None


def _check_template_name(document: Document, path: DataPath, template: str) -> None:
    parts = template.split("/")
    if template.startswith("/") or ".." in parts or template.endswith(".j2") or "" in parts:
        raise document.error(
            path,
            f"invalid template name {template!r}; name it relative to a template folder, "
            "without language or suffix",
            value=template,
            fix="write it like 'letters/reminder' (for letters/reminder.fr.html.j2)",
        )
