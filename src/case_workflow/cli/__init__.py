"""The ``case-workflow`` command line: a thin typer app over the library.

Each command parses its arguments, calls the library inside :func:`reported_errors` and prints
the result. Errors meant for users (:class:`CaseWorkflowError`, and pydantic or YAML errors that
escape the library) become one line on standard error and the error's exit status, never a
traceback. Only the console script imports this module, so ``import case_workflow`` does not
load typer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sized
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import yaml
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from case_workflow.cli.i18n import gettext_ as _
from case_workflow.cli.i18n import ngettext
from case_workflow.definition.loader import load_workflow, workflow_json_schema
from case_workflow.errors import CaseWorkflowError

__all__ = ["app", "main", "reported_errors"]

INPUT_ERROR_STATUS = 2
STORE_ERROR_STATUS = 1

app = typer.Typer(
    name="case-workflow",
    help=_("Workflow engine for complaint dossiers: check workflow files and run dossiers."),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _count(items: Sized, singular: str, plural: str) -> str:
    return ngettext(singular, plural, len(items)) % {"count": len(items)}


def _fail(message: str, status: int) -> NoReturn:
    typer.echo(_one_line(message), err=True)
    raise typer.Exit(status)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn user-facing errors raised inside the block into one stderr line and an exit status."""
    try:
        yield
    except CaseWorkflowError as error:
        _fail(str(error), error.exit_code)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(step) for step in first["loc"]) or error.title
        _fail(f"invalid input at {where}: {first['msg']}", INPUT_ERROR_STATUS)
    except yaml.YAMLError as error:
        _fail(f"invalid YAML: {error}", INPUT_ERROR_STATUS)
    except SQLAlchemyError as error:
        # Connection refused, a file that is not a database, a read-only store, a value the
        # database rejects: the user fixes the URL, the server or the value, not the code.
        cause = getattr(error, "orig", None) or error
        detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        _fail(
            f"database error: {detail}; check the --db URL, that the server runs and that "
            "the database is writable",
            STORE_ERROR_STATUS,
        )
    except ModuleNotFoundError as error:
        _fail(
            f"missing Python package {error.name!r} for this database URL; install its driver "
            "or use a sqlite:/// or postgresql+psycopg:// URL",
            INPUT_ERROR_STATUS,
        )


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help=_("Workflow file (YAML) to check."))],
) -> None:
    """Check a workflow file: YAML syntax, model, static rules and letter templates."""
    with reported_errors():
        workflow = load_workflow(file)
    definition = workflow.definition
    typer.echo(
        _(
            "%(file)s: valid (workflow %(name)s version %(version)d, %(states)s, "
            "%(transitions)s, %(letters)s x %(languages)s)"
        )
        % {
            "file": file,
            "name": definition.workflow,
            "version": definition.version,
            "states": _count(definition.states, "%(count)d state", "%(count)d states"),
            "transitions": _count(
                definition.transitions, "%(count)d transition", "%(count)d transitions"
            ),
            "letters": _count(definition.letters, "%(count)d letter", "%(count)d letters"),
            "languages": _count(definition.languages, "%(count)d language", "%(count)d languages"),
        }
    )


@app.command()
def schema() -> None:
    """Print the JSON Schema of workflow files, for editors and CI checks."""
    with reported_errors():
        document = workflow_json_schema()
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def main() -> None:
    """Run the command line (the ``case-workflow`` console script)."""
    # Importing the command modules registers their commands on ``app``.
    from case_workflow.cli import calendar, dossiers, monitoring, outbox, runs  # noqa: F401

    app()
