"""``Engine``: the one object an embedding back office holds.

An engine owns a SQLAlchemy engine, the compiled workflows and a clock. It keeps no dossier in
memory: every call reads what it needs from the database and writes one transaction per step.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from case_workflow.calendar_admin import (
    CalendarChangeResult,
    apply_change,
    recompute_all,
    record_change,
    stored_changes,
)
from case_workflow.calendars import HolidayChange, WorkingCalendar, load_calendar, load_zone
from case_workflow.clock import Clock, SystemClock, ensure_utc
from case_workflow.definition.loader import load_builtin, load_workflow
from case_workflow.durations import Duration
from case_workflow.errors import ActorNotAllowed, ConcurrencyError, InvalidInput
from case_workflow.escalation import sweep_due_actions
from case_workflow.filing import check_filing, file_dossier
from case_workflow.notifications import LetterRenderer
from case_workflow.records import (
    Complainant,
    Deadline,
    Dossier,
    Event,
    Letter,
    SweepResult,
    VerifyResult,
)
from case_workflow.states import Actor, CompiledWorkflow, GuardContext
from case_workflow.steps import StepContext, StepHook, apply_step, extend_deadline
from case_workflow.store import queries
from case_workflow.store.database import (
    DEFAULT_URL,
    connect,
    read_transaction,
    retry_when_locked,
    write_transaction,
)
from case_workflow.store.history import (
    iter_chain_breaks,
    load_history,
    load_snapshot,
)
from case_workflow.store.schema import check_schema, upgrade
from case_workflow.store.tables import calendar_changes
from case_workflow.timeline import explain_deadline

if TYPE_CHECKING:
    from case_workflow.scheduler import SweepScheduler

__all__ = ["Engine"]

log = logging.getLogger(__name__)

Guard = Callable[[GuardContext], bool]
WorkflowSource = CompiledWorkflow | str | Path


def _compile(source: WorkflowSource) -> CompiledWorkflow:
    if isinstance(source, CompiledWorkflow):
        return source
    path = Path(source)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        return load_workflow(path)
    return load_builtin(str(source))


def _json_payload(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    data = dict(payload or {})
    try:
        json.dumps(data)
    except (TypeError, ValueError) as error:
        raise InvalidInput(
            f"payload {data!r} is not JSON-serialisable ({error}); pass strings, numbers, "
            "booleans, lists and mappings only"
        ) from None
    return data


def _extension(payload: Mapping[str, Any]) -> Duration:
    value = payload.get("extension")
    try:
        return Duration.parse(str(value))
    except ValueError as error:
        raise InvalidInput(f"payload field 'extension': {error}") from None


def _outcome(context: StepContext, state: str, value: object) -> str:
    """Return the payload's outcome for a final state, checked against the state's outcomes."""
    outcomes = context.workflow.definition.states[state].outcomes
    outcome = str(value)
    if outcomes and outcome not in outcomes:
        raise InvalidInput(
            f"invalid outcome {outcome!r} for state {state!r}; use one of: {', '.join(outcomes)}"
        )
    return outcome


class Engine:
    """Files dossiers, fires events, sweeps deadlines and reads history.

    ``url`` is any SQLAlchemy URL (a plain path means a SQLite file); ``workflows`` are
    compiled workflows, YAML paths or names of shipped workflows. ``clock`` decides what
    "now" is when a call is not given an instant.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        workflows: Iterable[WorkflowSource] = ("mediator-alomrane",),
        clock: Clock | None = None,
        guards: Mapping[str, Guard] | None = None,
        create_schema: bool = False,
    ) -> None:
        self.database = connect(url)
        self.clock: Clock = clock or SystemClock()
        self._guards = dict(guards or {})
        self._contexts: dict[tuple[str, int], StepContext] = {}
        self._base_calendars: dict[tuple[str, int], WorkingCalendar] = {}
        self._calendar_changes: dict[str, list[HolidayChange]] = {}
        self._calendar_version: int | None = None
        self._latest: dict[str, CompiledWorkflow] = {}
        self._step_hooks: list[StepHook] = []
        for source in workflows:
            self.add_workflow(source)
        if create_schema:
            self.create_schema()
        self._schema_checked = create_schema

    # -- set-up -----------------------------------------------------------------------

    def add_workflow(self, source: WorkflowSource) -> CompiledWorkflow:
        """Compile and register a workflow version; the latest version files new dossiers."""
        workflow = _compile(source)
        definition = workflow.definition
        base = load_calendar(definition.calendar)
        changes = self._calendar_changes.get(base.name, [])
        context = StepContext(
            workflow=workflow,
            calendar=base.with_changes(changes) if changes else base,
            zone=load_zone(definition.timezone),
            renderer=LetterRenderer(workflow.template_dirs),
            hooks=self._step_hooks,
        )
        self._base_calendars[(definition.workflow, definition.version)] = base
        self._contexts[(definition.workflow, definition.version)] = context
        latest = self._latest.get(definition.workflow)
        if latest is None or latest.definition.version < definition.version:
            self._latest[definition.workflow] = workflow
        return workflow

    def add_step_hook(self, hook: StepHook) -> None:
        """Run ``hook`` inside the transaction of every later step, after the step is written."""
        self._step_hooks.append(hook)

    def step_context(self, workflow: str, version: int) -> StepContext:
        """Return the step context of a loaded workflow version, for writers of steps."""
        return self._context(workflow, version)

    def create_schema(self) -> None:
        """Create or upgrade the database schema to the latest migration."""
        upgrade(self.database)
        self._schema_checked = True

    def workflow(self, name: str) -> CompiledWorkflow:
        try:
            return self._latest[name]
        except KeyError:
            raise InvalidInput(
                f"unknown workflow {name!r}; loaded workflows: {', '.join(sorted(self._latest))}"
            ) from None

    def workflows(self) -> list[CompiledWorkflow]:
        """Return the latest loaded version of each workflow, in loading order."""
        return list(self._latest.values())

    @property
    def default_timezone(self) -> str:
        """Time zone of the first workflow loaded, used for schedules and reports."""
        return next(iter(self._latest.values())).definition.timezone

    def close(self) -> None:
        self.database.dispose()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _context(self, workflow: str, version: int) -> StepContext:
        try:
            return self._contexts[(workflow, version)]
        except KeyError:
            raise InvalidInput(
                f"workflow {workflow!r} version {version} is not loaded; add it with "
                "Engine.add_workflow() so dossiers filed under it can move"
            ) from None

    def check_schema(self) -> None:
        """Raise StoreError unless the database has the latest schema; load calendar changes."""
        self._ready()

    def _ready(self) -> None:
        if not self._schema_checked:
            check_schema(self.database)
            self._schema_checked = True
        if self._calendar_version is None:
            self.refresh_calendars()

    def refresh_calendars(self) -> None:
        """Apply the calendar changes stored by any process to this engine's calendars.

        Sweeps and calendar changes call it; other processes' changes reach ``fire()`` at the
        next sweep or call of this method.
        """
        with read_transaction(self.database) as connection:
            version = connection.execute(select(func.max(calendar_changes.c.id))).scalar() or 0
            if version == self._calendar_version:
                return
            self._calendar_changes = stored_changes(connection)
        for key, context in self._contexts.items():
            base = self._base_calendars[key]
            changes = self._calendar_changes.get(base.name, [])
            calendar = base.with_changes(changes) if changes else base
            self._contexts[key] = replace(context, calendar=calendar)
        self._calendar_version = version

    def _now(self, at: datetime | None) -> datetime:
        return ensure_utc(at) if at is not None else self.clock.now()

    # -- writing ----------------------------------------------------------------------

    def file(
        self,
        workflow: str,
        *,
        actor: Actor,
        complainant: Complainant,
        subject: str,
        respondent: str | None = None,
        region: str | None = None,
        urgent: bool = False,
        reference: str | None = None,
        external_reference: str | None = None,
        data: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
        at: datetime | None = None,
    ) -> Dossier:
        """File a new dossier in the workflow's initial state and return it."""
        self._ready()
        moment = self._now(at)

        def attempt() -> str:
            with write_transaction(self.database) as connection:
                return self.file_within(
                    connection,
                    workflow,
                    actor=actor,
                    complainant=complainant,
                    subject=subject,
                    respondent=respondent,
                    region=region,
                    urgent=urgent,
                    reference=reference,
                    external_reference=external_reference,
                    data=data,
                    payload=payload,
                    at=moment,
                )

        return self.get(retry_when_locked(attempt))

    def file_within(
        self,
        connection: Connection,
        workflow: str,
        *,
        actor: Actor,
        complainant: Complainant,
        subject: str,
        at: datetime,
        respondent: str | None = None,
        region: str | None = None,
        urgent: bool = False,
        reference: str | None = None,
        external_reference: str | None = None,
        data: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> str:
        """File a dossier inside the caller's write transaction and return its reference.

        Call :meth:`check_schema` once before, outside any transaction: on SQLite a first
        schema check inside the caller's write transaction would wait on that transaction.
        """
        compiled = self.workflow(workflow)
        definition = compiled.definition
        check_filing(
            definition, actor=actor, complainant=complainant, subject=subject, reference=reference
        )
        if (
            respondent is not None
            and definition.respondents
            and respondent not in definition.respondents
        ):
            raise InvalidInput(
                f"unknown respondent {respondent!r}; choose one of: "
                f"{', '.join(sorted(definition.respondents))}"
            )
        if region is None and respondent is not None and respondent in definition.respondents:
            region = definition.respondents[respondent].region
        return file_dossier(
            connection,
            self._context(definition.workflow, definition.version),
            actor=actor,
            complainant=complainant,
            subject=subject,
            respondent=respondent,
            region=region,
            urgent=urgent,
            reference=reference,
            external_reference=external_reference,
            data=_json_payload(data),
            payload=_json_payload(payload),
            at=ensure_utc(at),
        )

    def fire(
        self,
        reference: str,
        event: str,
        *,
        actor: Actor,
        payload: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        at: datetime | None = None,
    ) -> Dossier:
        """Fire ``event`` on a dossier in one transaction and return the dossier after it.

        With ``expected_version`` the step applies only to that version of the dossier;
        otherwise to the version read at the start of the transaction. Either way a lost race
        raises ConcurrencyError and writes nothing.
        """
        moment = self._now(at)
        event_payload = _json_payload(payload)

        def attempt() -> Dossier:
            with write_transaction(self.database) as connection:
                return self.fire_within(
                    connection,
                    reference,
                    event,
                    actor=actor,
                    payload=event_payload,
                    expected_version=expected_version,
                    at=moment,
                )

        return retry_when_locked(attempt)

    def fire_within(
        self,
        connection: Connection,
        reference: str,
        event: str,
        *,
        actor: Actor,
        at: datetime,
        payload: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
    ) -> Dossier:
        """Fire ``event`` inside the caller's write transaction; see :meth:`fire`.

        An error leaves the caller's transaction to roll back (or its savepoint).
        """
        self._ready()
        moment = ensure_utc(at)
        event_payload = _json_payload(payload)
        row, snapshot = load_snapshot(connection, reference)
        if expected_version is not None and row.version != expected_version:
            raise ConcurrencyError(reference, expected_version, row.version)
        context = self._context(row.workflow, row.workflow_version)
        if actor.role == context.workflow.definition.system_role:
            raise ActorNotAllowed(
                reference,
                event,
                actor.role,
                [role for role in context.workflow.definition.roles if role != actor.role],
            )
        transition = context.workflow.check_fire(
            reference=reference,
            state=row.state,
            event=event,
            actor=actor,
            payload=event_payload,
            guards=self._guards,
            data=row.data,
        )
        extra = self._column_changes(context, event_payload)
        if transition.extends is not None:
            extend_deadline(
                connection,
                context,
                row,
                name=transition.extends,
                extra=_extension(event_payload),
                at=moment,
                reason=str(event_payload.get("reason", event_payload.get("comment", ""))),
            )
        if context.workflow.is_final(transition.dest):
            extra["closed_at"] = moment
            if "outcome" in event_payload:
                extra["outcome"] = _outcome(context, transition.dest, event_payload["outcome"])
        apply_step(
            connection,
            context,
            row,
            trigger=event,
            to_state=transition.dest,
            actor=actor,
            payload=event_payload,
            at=moment,
            letters=transition.letters,
            extra_values=extra,
        )
        return replace(
            snapshot,
            state=transition.dest,
            version=row.version + 1,
            updated_at=moment,
            **extra,
        )

    @staticmethod
    def _column_changes(context: StepContext, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Return the dossier columns an event's payload sets (a new respondent)."""
        changes: dict[str, Any] = {}
        respondent = payload.get("respondent")
        if respondent is None:
            return changes
        respondents = context.workflow.definition.respondents
        if respondents and respondent not in respondents:
            choices = ", ".join(sorted(respondents))
            raise InvalidInput(f"unknown respondent {respondent!r}; choose one of: {choices}")
        changes["respondent"] = str(respondent)
        if respondent in respondents and respondents[respondent].region:
            changes["region"] = respondents[respondent].region
        return changes

    def sweep(self, now: datetime | None = None, *, batch_size: int = 200) -> SweepResult:
        """Act once on every reminder and escalation due at ``now``; safe to repeat."""
        self._ready()
        if batch_size < 1:
            raise InvalidInput(f"batch_size must be at least 1, got {batch_size}")
        moment = self._now(now)
        started = time.perf_counter()
        self.refresh_calendars()
        counts = sweep_due_actions(self.database, self._context, now=moment, batch_size=batch_size)
        # The scheduler logs the INFO line of each run; a sweep called directly logs this one.
        log.debug(
            "sweep at %s: %d reminders, %d escalations, %d skipped, %d failed, %d letters in %.3fs",
            moment.isoformat(),
            counts.reminders,
            counts.escalations,
            counts.skipped,
            counts.failed,
            counts.letters,
            time.perf_counter() - started,
        )
        return SweepResult(
            now=moment,
            reminders=counts.reminders,
            escalations=counts.escalations,
            skipped=counts.skipped,
            retried=counts.retried,
            letters=counts.letters,
            failed=counts.failed,
        )

    # -- calendars and explanations ---------------------------------------------------

    def calendar(self, name: str) -> WorkingCalendar:
        """Return the calendar ``name`` as the loaded workflows use it, stored changes applied."""
        for key, base in self._base_calendars.items():
            if base.name == name:
                return self._contexts[key].calendar
        raise InvalidInput(
            f"unknown calendar {name!r}; calendars of the loaded workflows: "
            f"{', '.join(self.calendar_names())}"
        )

    def calendar_names(self) -> list[str]:
        """Return the names of the calendars the loaded workflows use."""
        return sorted({calendar.name for calendar in self._base_calendars.values()})

    def change_calendar(
        self, calendar: str, change: HolidayChange, *, actor: str, at: datetime | None = None
    ) -> CalendarChangeResult:
        """Add, confirm or remove a holiday and recompute the open deadlines it affects.

        One transaction stores the change, moves each affected running deadline not yet acted
        on, reschedules its pending actions and records a ``calendar_changed`` event with the
        old and new due instants on its dossier.
        """
        self._ready()
        names = self.calendar_names()
        if calendar not in names:
            raise InvalidInput(
                f"unknown calendar {calendar!r}; calendars of the loaded workflows: "
                f"{', '.join(names)}"
            )
        moment = self._now(at)
        keys = [key for key, base in self._base_calendars.items() if base.name == calendar]
        current = self._contexts[keys[0]].calendar
        existing = current.holiday(change.day)
        if change.action == "add" and existing is not None:
            raise InvalidInput(
                f"{change.day.isoformat()} is already a non-working day in {calendar!r} "
                f"({existing.name}); use 'confirm' to mark an estimate as observed"
            )
        base = self._base_calendars[keys[0]]
        changes = [*self._calendar_changes.get(calendar, []), change]
        changed = base.with_changes(changes)

        def attempt() -> CalendarChangeResult:
            with write_transaction(self.database) as connection:
                record_change(connection, calendar, change, actor=actor, at=moment)
                contexts = [replace(self._contexts[key], calendar=changed) for key in keys]
                return apply_change(
                    connection, contexts, changed, change, actor_name=actor, at=moment
                )

        result = retry_when_locked(attempt)
        self.refresh_calendars()
        return result

    def recompute_deadlines(
        self, calendar: str, *, actor: str, at: datetime | None = None
    ) -> CalendarChangeResult:
        """Replay every running deadline on ``calendar`` and move those whose due date changed.

        Run it after editing the holidays declared in a workflow file: one transaction moves
        each deadline not yet acted on and records a ``calendar_changed`` event on its dossier.
        """
        self._ready()
        working = self.calendar(calendar)
        moment = self._now(at)
        keys = [key for key, base in self._base_calendars.items() if base.name == calendar]

        def attempt() -> CalendarChangeResult:
            with write_transaction(self.database) as connection:
                contexts = [self._contexts[key] for key in keys]
                return recompute_all(connection, contexts, working, actor_name=actor, at=moment)

        return retry_when_locked(attempt)

    def explain(self, reference: str, *, language: str = "en") -> list[tuple[Deadline, str]]:
        """Explain each deadline of a dossier: every day counted or skipped, pauses, extensions.

        The explanation replays the dossier's history with the current calendar. When the
        calendar changed after a deadline was acted on, the text notes that the stored due date
        was kept.
        """
        self._ready()
        dossier = self.get(reference)
        context = self._context(dossier.workflow, dossier.workflow_version)
        history = self.history(reference)
        explained = []
        for deadline in self.deadlines(reference):
            explained.append((deadline, explain_deadline(context, deadline, history, language)))
        return explained

    # -- reading ----------------------------------------------------------------------

    def get(self, reference: str) -> Dossier:
        self._ready()
        with read_transaction(self.database) as connection:
            return queries.get_dossier(connection, reference)

    def history(self, reference: str) -> list[Event]:
        self._ready()
        with read_transaction(self.database) as connection:
            return load_history(connection, queries.dossier_id(connection, reference))

    def deadlines(self, reference: str) -> list[Deadline]:
        self._ready()
        with read_transaction(self.database) as connection:
            return queries.list_deadlines(connection, reference)

    def letters(self, reference: str) -> list[Letter]:
        self._ready()
        with read_transaction(self.database) as connection:
            return queries.list_letters(connection, reference)

    def allowed_events(self, reference: str, role: str | None = None) -> list[str]:
        dossier = self.get(reference)
        workflow = self._context(dossier.workflow, dossier.workflow_version).workflow
        return workflow.allowed_events(dossier.state, role)

    def verify(self, reference: str | None = None) -> VerifyResult:
        """Recompute the event hash chains of one dossier or of all; stream, keep nothing."""
        self._ready()
        dossier_count = 0
        event_count = 0
        broken: list[tuple[str, int, str]] = []
        with read_transaction(self.database) as connection:
            if reference is not None:
                queries.dossier_id(connection, reference)
            for item in iter_chain_breaks(connection, reference):
                if isinstance(item, int):
                    dossier_count += 1
                    event_count += item
                else:
                    broken.append(item)
        return VerifyResult(dossier_count, event_count, tuple(broken))

    def respondent_names(self, language: str) -> dict[str, str]:
        """Map respondent codes of all loaded workflows to their names in ``language``."""
        names: dict[str, str] = {}
        for workflow in self._latest.values():
            for code, respondent in workflow.definition.respondents.items():
                names[code] = respondent.name.get(language) or next(
                    iter(respondent.name.values()), code
                )
        return names

    def references(self, *, state: str | None = None, limit: int = 100) -> list[str]:
        """Return dossier references in filing order, optionally only those in ``state``."""
        return [dossier.reference for dossier in self.dossiers(state=state, limit=limit)]

    def dossiers(
        self,
        *,
        state: str | None = None,
        respondent: str | None = None,
        workflow: str | None = None,
        limit: int = 100,
    ) -> list[Dossier]:
        """Return up to ``limit`` dossiers in filing order, filtered by the given columns."""
        self._ready()
        with read_transaction(self.database) as connection:
            return queries.list_dossiers(
                connection, state=state, respondent=respondent, workflow=workflow, limit=limit
            )

    # -- scheduling -------------------------------------------------------------------

    def start_scheduler(self, schedule: str = "every 5 minutes") -> SweepScheduler:
        """Run sweeps in a background thread of the host application; stop with shutdown().

        The schedule is ``"every N minutes"`` or a cron expression in the time zone of the
        first loaded workflow.
        """
        from case_workflow.scheduler import SweepScheduler

        scheduler = SweepScheduler(
            self, schedule=schedule, timezone=self.default_timezone, background=True
        )
        scheduler.start()
        return scheduler
