"""Delivery to a drop folder that the registry office (bureau d'ordre) prints and posts from.

Each message becomes ``STEM.pdf`` (when it carries a letter) and ``STEM.json``, a sidecar with
the message's metadata, where ``STEM`` is the idempotency key made safe for file names (see
:func:`~case_workflow.delivery.channel.safe_file_stem`). Each file is written to a hidden
temporary file in the same folder, flushed to disk and renamed into place, so a reader never
sees a partial file. The sidecar is renamed last: a consumer should wait for ``STEM.json``
and then read ``STEM.pdf``. Delivering the same message again replaces both files with the
same content.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from case_workflow.delivery.channel import (
    OutgoingMessage,
    RetryableDeliveryError,
    safe_file_stem,
)

__all__ = ["DropFolderChannel", "write_atomically"]


def write_atomically(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    With ``durable``, the file and then its folder are flushed to disk (``fsync``) so the
    rename survives a power cut.
    """
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            if durable:
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if durable and hasattr(os, "O_DIRECTORY"):
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


@dataclass
class DropFolderChannel:
    """Writes each message into ``folder``, which must exist (it is not created)."""

    folder: Path
    durable: bool = True

    def deliver(self, message: OutgoingMessage) -> None:
        """Write the message's PDF and sidecar; see :class:`~.channel.Channel`."""
        folder = Path(self.folder)
        if not folder.is_dir():
            raise RetryableDeliveryError(
                f"drop folder {folder} does not exist or is not a folder; create it or fix "
                "the delivery configuration"
            )
        stem = safe_file_stem(message.idempotency_key)
        sidecar = message.describe()
        try:
            if message.letter is not None:
                pdf_path = folder / f"{stem}.pdf"
                write_atomically(pdf_path, message.letter.pdf, durable=self.durable)
                sidecar["pdf_file"] = pdf_path.name
            body = json.dumps(sidecar, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
            write_atomically(folder / f"{stem}.json", body.encode("utf-8"), durable=self.durable)
        except OSError as error:
            raise RetryableDeliveryError(
                f"writing to drop folder {folder} failed: {error.strerror or error}"
            ) from None
