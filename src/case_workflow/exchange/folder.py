"""Drop-folder transport: messages as files in the peer's inbox folder.

The sender writes ``MESSAGE_ID.json`` into the recipient's folder through a hidden temporary
file in the same folder and a rename, so the receiver never reads a partial file. The
receiver's :class:`FolderReceiver` applies each file through :meth:`Exchange.receive` and then
moves it into ``processed/`` (or ``rejected/``). A receiver that stops before the move
processes the file again next time, and its inbox acknowledges that copy as a duplicate.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from case_workflow.errors import InvalidInput
from case_workflow.exchange.service import Exchange
from case_workflow.exchange.transport import (
    OutboundMessage,
    Receipt,
    ReceiptStatus,
    TransportError,
)

__all__ = ["FolderReceiver", "FolderTransport", "write_atomically"]

log = logging.getLogger(__name__)

PROCESSED = "processed"
REJECTED = "rejected"


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a flushed temporary file and a rename."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class FolderTransport:
    """Writes each message into the recipient's inbox folder.

    ``folders`` maps each peer institution to its inbox folder (a single path serves every
    peer). A folder must exist: a missing one means the share is not mounted, which is a
    :class:`TransportError` to retry.
    """

    def __init__(self, folders: Mapping[str, Path] | Path) -> None:
        self._folders = folders

    def _folder(self, recipient: str) -> Path:
        if isinstance(self._folders, Path):
            return self._folders
        try:
            return self._folders[recipient]
        except KeyError:
            raise InvalidInput(
                f"no inbox folder configured for peer {recipient!r}; configured peers: "
                f"{', '.join(sorted(self._folders))}"
            ) from None

    def send(self, message: OutboundMessage) -> Receipt:
        folder = self._folder(message.recipient)
        if not folder.is_dir():
            raise TransportError(f"inbox folder {folder} does not exist or is not mounted")
        try:
            write_atomically(folder / f"{message.message_id}.json", message.body)
        except OSError as error:
            raise TransportError(f"cannot write into {folder}: {error}") from None
        return Receipt(message.message_id, ReceiptStatus.STORED)


class FolderReceiver:
    """Applies the message files found in ``folder`` to ``exchange``, oldest file first."""

    def __init__(self, exchange: Exchange, folder: Path) -> None:
        self.exchange = exchange
        self.folder = folder
        for name in (PROCESSED, REJECTED):
            (folder / name).mkdir(parents=True, exist_ok=True)

    def poll(self, *, limit: int | None = None) -> list[Receipt]:
        """Process up to ``limit`` waiting files; return their receipts in processing order."""
        files = sorted(
            (path for path in self.folder.glob("*.json") if path.is_file()),
            key=lambda path: (path.stat().st_mtime_ns, path.name),
        )
        receipts = []
        for path in files[:limit]:
            try:
                body = path.read_bytes()
            except FileNotFoundError:
                continue  # another receiver took it
            receipt = self.exchange.receive(body)
            target = REJECTED if receipt.status is ReceiptStatus.REJECTED else PROCESSED
            os.replace(path, self.folder / target / path.name)
            receipts.append(receipt)
        return receipts
