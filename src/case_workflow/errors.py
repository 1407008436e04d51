"""Exceptions raised by case_workflow.

Every error the library raises on purpose derives from :class:`CaseWorkflowError`::

    CaseWorkflowError
    ├── InvalidDefinition          a workflow file or template is wrong (file, line, column)
    ├── DossierNotFound            no dossier has the given reference
    ├── DuplicateDossier           a dossier with that reference already exists
    ├── TransitionNotAllowed       the event is not allowed in the dossier's state
    ├── ActorNotAllowed            the actor's role may not fire the event
    ├── GuardRejected              a guard or a required payload field blocked the event
    ├── ConcurrencyError           another writer changed the dossier first
    ├── InvalidInput               a value given through the API or command line is invalid
    └── StoreError                 the database is missing, too old or unreachable

The command line prints ``str(error)`` on one line and exits with status 2 (input errors) or
1 (store and concurrency errors); no traceback reaches the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "ActorNotAllowed",
    "CaseWorkflowError",
    "ConcurrencyError",
    "DossierNotFound",
    "DuplicateDossier",
    "GuardRejected",
    "InvalidDefinition",
    "InvalidInput",
    "StoreError",
    "TransitionNotAllowed",
]


class CaseWorkflowError(Exception):
    """Root of the errors that case_workflow raises on purpose."""

    exit_code: int = 1


class InvalidDefinition(CaseWorkflowError):
    """A workflow definition or one of its templates is wrong.

    ``str()`` reads ``FILE:LINE:COLUMN: MESSAGE`` so editors can jump to the place.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
        value: object = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.column = column
        self.value = value
        self.fix = fix
        super().__init__(self._format())

    @property
    def location(self) -> str:
        parts = [self.file or "<definition>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def _format(self) -> str:
        text = f"{self.location}: {self.message}"
        if self.fix:
            text += f"; fix: {self.fix}"
        return text


class DossierNotFound(CaseWorkflowError):
    """No dossier has the given reference."""

    exit_code = 2

    def __init__(self, reference: str) -> None:
        self.reference = reference
        super().__init__(
            f"dossier {reference!r} not found; check the reference with 'case-workflow list'"
        )


class DuplicateDossier(CaseWorkflowError):
    """A dossier with the given reference already exists."""

    exit_code = 2

    def __init__(self, reference: str) -> None:
        self.reference = reference
        super().__init__(f"dossier {reference!r} already exists; choose another reference")


class TransitionNotAllowed(CaseWorkflowError):
    """The event cannot be fired from the dossier's current state."""

    exit_code = 2

    def __init__(self, reference: str, state: str, event: str, allowed: Sequence[str]) -> None:
        self.reference = reference
        self.state = state
        self.event = event
        self.allowed = tuple(allowed)
        choices = ", ".join(self.allowed) if self.allowed else "none (the state is final)"
        super().__init__(
            f"event {event!r} is not allowed for dossier {reference!r} in state {state!r}; "
            f"allowed events: {choices}"
        )


class ActorNotAllowed(CaseWorkflowError):
    """The actor's role is not among the roles that may fire the event."""

    exit_code = 2

    def __init__(self, reference: str, event: str, role: str, allowed_roles: Sequence[str]) -> None:
        self.reference = reference
        self.event = event
        self.role = role
        self.allowed_roles = tuple(allowed_roles)
        super().__init__(
            f"role {role!r} may not fire {event!r} on dossier {reference!r}; "
            f"roles allowed: {', '.join(self.allowed_roles)}"
        )


class GuardRejected(CaseWorkflowError):
    """A guard of the transition returned false, or a required payload field is missing."""

    exit_code = 2

    def __init__(self, reference: str, event: str, reason: str) -> None:
        self.reference = reference
        self.event = event
        self.reason = reason
        super().__init__(f"event {event!r} on dossier {reference!r} was blocked: {reason}")


class ConcurrencyError(CaseWorkflowError):
    """Another writer changed the dossier between our read and our write; nothing was written."""

    def __init__(self, reference: str, expected_version: int, found_version: int | None) -> None:
        self.reference = reference
        self.expected_version = expected_version
        self.found_version = found_version
        found = "deleted" if found_version is None else f"version {found_version}"
        super().__init__(
            f"dossier {reference!r} changed concurrently: expected version {expected_version}, "
            f"found {found}; reload the dossier and retry"
        )


class InvalidInput(CaseWorkflowError):
    """A value passed through the API or the command line is invalid."""

    exit_code = 2


class StoreError(CaseWorkflowError):
    """The database cannot be used: unreachable, not initialised, or at another schema version."""
