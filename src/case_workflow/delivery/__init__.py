"""Delivery of outbox messages after commit: the relay, its channels and its operations.

Steps write letters and outbox rows in their own transaction; nothing leaves the process
there. The :class:`OutboxRelay` later claims due messages, renders and archives each letter's
PDF, and hands the message to the :class:`Channel` configured for its outbox channel name:
:class:`SmtpChannel`, :class:`DropFolderChannel` or :class:`WebhookChannel`. The functions
:func:`list_outbox`, :func:`retry_dead`, :func:`purge_sent` and :func:`deliver` back the
``case-workflow outbox`` commands.

Importing this package does not import WeasyPrint; rendering a PDF does.
"""

from case_workflow.delivery.archive import (
    ARCHIVE_TRIGGER,
    archive_pdfs,
    render_letter_pdf,
    renderer_version,
)
from case_workflow.delivery.channel import (
    Channel,
    DeliveryError,
    LetterDocument,
    OutgoingMessage,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from case_workflow.delivery.commands import (
    OutboxEntry,
    OutboxStatus,
    archive_pending,
    count_outbox,
    deliver,
    list_outbox,
    purge_sent,
    retry_dead,
)
from case_workflow.delivery.config import DeliveryConfig, load_delivery_config
from case_workflow.delivery.dropfolder import DropFolderChannel
from case_workflow.delivery.outbox import OutboxRelay, RelayResult, RetryPolicy
from case_workflow.delivery.smtp import SmtpChannel
from case_workflow.delivery.webhook import WebhookChannel, verify_signature

__all__ = [
    "ARCHIVE_TRIGGER",
    "Channel",
    "DeliveryConfig",
    "DeliveryError",
    "DropFolderChannel",
    "LetterDocument",
    "OutboxEntry",
    "OutboxRelay",
    "OutboxStatus",
    "OutgoingMessage",
    "PermanentDeliveryError",
    "RelayResult",
    "RetryPolicy",
    "RetryableDeliveryError",
    "SmtpChannel",
    "WebhookChannel",
    "archive_pdfs",
    "archive_pending",
    "count_outbox",
    "deliver",
    "list_outbox",
    "load_delivery_config",
    "purge_sent",
    "render_letter_pdf",
    "renderer_version",
    "retry_dead",
    "verify_signature",
]
