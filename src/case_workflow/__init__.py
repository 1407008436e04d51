"""case_workflow: a workflow engine for complaint dossiers.

Dossiers move through a state machine defined in YAML; deadlines are rows swept once each;
every step can issue formal letters; escalation reports come from SQL aggregates.

    >>> from case_workflow import Engine
    >>> engine = Engine("sqlite:///case_workflow.db", create_schema=True)  # doctest: +SKIP

The command line (``case-workflow``), APScheduler and WeasyPrint are imported only when used.
"""

from case_workflow.clock import Clock, SimulatedClock, SystemClock
from case_workflow.definition.loader import load_builtin, load_workflow
from case_workflow.definition.model import WorkflowDefinition
from case_workflow.durations import Duration, TimeUnit
from case_workflow.engine import Engine
from case_workflow.errors import (
    ActorNotAllowed,
    CaseWorkflowError,
    ConcurrencyError,
    DossierNotFound,
    DuplicateDossier,
    GuardRejected,
    InvalidDefinition,
    InvalidInput,
    StoreError,
    TransitionNotAllowed,
)
from case_workflow.records import (
    ActionKind,
    ActionStatus,
    Complainant,
    Deadline,
    DeadlineStatus,
    Dossier,
    Event,
    Letter,
    SweepResult,
    VerifyResult,
)
from case_workflow.states import Actor, CompiledWorkflow, GuardContext

__all__ = [
    "ActionKind",
    "ActionStatus",
    "Actor",
    "ActorNotAllowed",
    "CaseWorkflowError",
    "Clock",
    "CompiledWorkflow",
    "Complainant",
    "ConcurrencyError",
    "Deadline",
    "DeadlineStatus",
    "Dossier",
    "DossierNotFound",
    "DuplicateDossier",
    "Duration",
    "Engine",
    "Event",
    "GuardContext",
    "GuardRejected",
    "InvalidDefinition",
    "InvalidInput",
    "Letter",
    "SimulatedClock",
    "StoreError",
    "SweepResult",
    "SystemClock",
    "TimeUnit",
    "TransitionNotAllowed",
    "VerifyResult",
    "WorkflowDefinition",
    "__version__",
    "load_builtin",
    "load_workflow",
]

__version__ = "0.1.0"
