"""PDF archive of letters: byte-stable rendering and the ``letters_archived`` event.

A letter's HTML is rendered and hashed in the step's transaction. Its PDF is rendered after
commit, because WeasyPrint needs from 0.2 s to over 2 s per letter (see docs/letters.md). In
the step it would hold the transaction, and on SQLite the database's write lock, that long.
Before a PDF leaves the system, the delivery relay calls :func:`archive_pdfs`, which stores its
SHA-256 in ``cw_letters.pdf_sha256`` and appends a ``letters_archived`` event to the dossier's
hash chain with the HTML and PDF hashes. A PDF whose hash is already stored appends nothing, so
the chain records each distinct PDF once. Language versions that are never sent are archived
by :func:`archive_letters`, run as a job.

The same HTML renders to the same PDF bytes as long as WeasyPrint, Pango, HarfBuzz and the
fonts stay the same: :func:`render_letter_pdf` pins the one time stamp WeasyPrint writes (see
there).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from importlib import metadata

from sqlalchemy import Connection, Engine, or_, select, update

from case_workflow.letters.pdf import render_pdf
from case_workflow.store.database import read_transaction, write_transaction
from case_workflow.store.history import load_dossier, write_step
from case_workflow.store.tables import dossiers, events, letters

__all__ = [
    "ARCHIVE_TRIGGER",
    "StoredVersion",
    "archive_letters",
    "archive_pdfs",
    "load_versions",
    "render_letter_pdf",
    "render_letter_pdf_cached",
    "renderer_version",
    "sha256_hex",
]

ARCHIVE_TRIGGER = "letters_archived"
ARCHIVE_ACTOR = "delivery relay"
ARCHIVE_ROLE = "system"

_SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"
_epoch_lock = threading.Lock()


def sha256_hex(data: bytes | str) -> str:
    """Return the SHA-256 of ``data`` (text is encoded as UTF-8) in hex."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def renderer_version() -> str:
    """Return the PDF renderer and its version, as recorded in ``letters_archived`` events."""
    try:
        return f"WeasyPrint {metadata.version('weasyprint')}"
    except metadata.PackageNotFoundError:
        return "WeasyPrint (not installed)"


def render_letter_pdf(html: str, issued_at: datetime) -> bytes:
    """Render a letter's HTML to PDF bytes that depend only on the HTML and ``issued_at``.

    WeasyPrint 70 embeds font subsets made by fontTools, which stamps the current time into
    each subset's ``head`` table, so two renderings of one HTML differ in a few bytes.
    fontTools takes that time from ``SOURCE_DATE_EPOCH`` when it is set (the reproducible
    builds convention), so the variable is set to the letter's issue time while rendering.
    Raises :class:`~case_workflow.errors.InvalidInput` when WeasyPrint is not installed.
    """
    epoch = str(int(issued_at.timestamp()))
    # The variable is process-wide: the lock keeps two threads from restoring each other's
    # value in the middle of a rendering.
    with _epoch_lock:
        previous = os.environ.get(_SOURCE_DATE_EPOCH)
        os.environ[_SOURCE_DATE_EPOCH] = epoch
        try:
            return render_pdf(html)
        finally:
            if previous is None:
                del os.environ[_SOURCE_DATE_EPOCH]
            else:
                os.environ[_SOURCE_DATE_EPOCH] = previous


@lru_cache(maxsize=16)
def render_letter_pdf_cached(html: str, issued_at: datetime) -> bytes:
    """Return :func:`render_letter_pdf` of the arguments, keeping the last 16 results.

    Rendering is deterministic, so a retry in the same process reuses the bytes instead of
    paying for WeasyPrint's font subsetting again.
    """
    return render_letter_pdf(html, issued_at)


@dataclass(frozen=True)
class StoredVersion:
    """One language version of an issued letter, as stored in ``cw_letters``."""

    letter_id: int
    dossier_id: int
    event_seq: int
    letter: str
    language: str
    registry_number: str
    subject: str
    sender: str
    recipient_code: str
    issued_at: datetime
    html: str = field(repr=False)
    html_sha256: str
    pdf_sha256: str | None


def load_versions(connection: Connection, letter_id: int) -> list[StoredVersion]:
    """Read every language version of the letter that row ``letter_id`` belongs to."""
    owner = select(letters.c.event_id, letters.c.letter).where(letters.c.id == letter_id).subquery()
    rows = connection.execute(
        select(letters, events.c.seq)
        .join(events, events.c.id == letters.c.event_id)
        .join(
            owner,
            (owner.c.event_id == letters.c.event_id) & (owner.c.letter == letters.c.letter),
        )
        .order_by(letters.c.id)
    )
    return [
        StoredVersion(
            letter_id=row.id,
            dossier_id=row.dossier_id,
            event_seq=row.seq,
            letter=row.letter,
            language=row.language,
            registry_number=row.registry_number,
            subject=row.subject,
            sender=row.sender,
            recipient_code=row.recipient,
            issued_at=row.issued_at,
            html=row.html,
            html_sha256=row.sha256,
            pdf_sha256=row.pdf_sha256,
        )
        for row in rows
    ]


def archive_pdfs(
    database: Engine, rendered: Sequence[tuple[StoredVersion, str]], *, now: datetime
) -> int:
    """Record the PDF hashes ``rendered`` (version, PDF SHA-256) of one letter's versions.

    In one transaction, stores each hash that differs from the stored one in
    ``cw_letters.pdf_sha256`` and appends one ``letters_archived`` event to the dossier's
    chain listing them. Returns how many versions were recorded; a second call with the same
    hashes records nothing.
    """
    if not rendered:
        return 0
    with write_transaction(database) as connection:
        changed = []
        for version, digest in rendered:
            result = connection.execute(
                update(letters)
                .where(letters.c.id == version.letter_id)
                .where(or_(letters.c.pdf_sha256.is_(None), letters.c.pdf_sha256 != digest))
                .values(pdf_sha256=digest)
            )
            if result.rowcount == 1:
                changed.append((version, digest))
        if not changed:
            return 0
        dossier_id = changed[0][0].dossier_id
        # Lock the dossier row first, so that on PostgreSQL a concurrent step waits for this
        # event instead of this event failing on the dossier's version check.
        connection.execute(
            select(dossiers.c.id).where(dossiers.c.id == dossier_id).with_for_update()
        ).one()
        dossier = load_dossier(connection, dossier_id=dossier_id)
        write_step(
            connection,
            dossier,
            trigger=ARCHIVE_TRIGGER,
            to_state=dossier.state,
            actor=ARCHIVE_ACTOR,
            role=ARCHIVE_ROLE,
            institution=changed[0][0].sender,
            occurred_at=now,
            payload={
                "renderer": renderer_version(),
                "letters": [
                    {
                        "letter": version.letter,
                        "language": version.language,
                        "registry_number": version.registry_number,
                        "event_seq": version.event_seq,
                        "html_sha256": version.html_sha256,
                        "pdf_sha256": digest,
                    }
                    for version, digest in changed
                ],
            },
        )
        return len(changed)


def archive_letters(database: Engine, *, now: datetime, limit: int = 100) -> int:
    """Render and archive up to ``limit`` letter versions that have no PDF hash yet.

    The relay archives each version it sends; this archives the others (the language versions
    that no recipient receives). Returns how many versions were archived.
    """
    with read_transaction(database) as connection:
        pending = connection.execute(
            select(letters.c.id, letters.c.event_id, letters.c.letter)
            .where(letters.c.pdf_sha256.is_(None))
            .order_by(letters.c.event_id, letters.c.letter, letters.c.id)
            .limit(limit)
        ).all()
    archived = 0
    for _key, group in itertools.groupby(pending, key=lambda row: (row.event_id, row.letter)):
        unarchived_ids = {row.id for row in group}
        with read_transaction(database) as connection:
            versions = load_versions(connection, next(iter(unarchived_ids)))
        rendered = [
            (version, sha256_hex(render_letter_pdf(version.html, version.issued_at)))
            for version in versions
            if version.letter_id in unarchived_ids and version.pdf_sha256 is None
        ]
        archived += archive_pdfs(database, rendered, now=now)
    return archived
