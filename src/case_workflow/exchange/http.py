"""HTTP transport: a Starlette app that receives messages and an httpx client that sends them.

A back office mounts :func:`create_app` (for example under ``/exchange``) in its ASGI server.
``POST /messages`` takes one envelope as JSON and returns the receipt as JSON, with status 200
when the message is recorded (applied, waiting, not applicable or a duplicate), 4xx when it is
rejected (400 malformed, 403 unknown sender, wrong recipient or bad signature, 409 replayed,
413 too large, 422 unknown event or dossier). :class:`HttpTransport` turns a 4xx into
:class:`MessageRejected` and anything that leaves the outcome unknown (connection errors,
timeouts, 5xx) into :class:`TransportError`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from case_workflow.errors import InvalidInput
from case_workflow.exchange.envelope import MAX_BODY_BYTES
from case_workflow.exchange.service import Exchange
from case_workflow.exchange.transport import (
    MessageRejected,
    OutboundMessage,
    Receipt,
    ReceiptStatus,
    RejectionReason,
    TransportError,
)

__all__ = ["MESSAGES_PATH", "HttpTransport", "create_app"]

log = logging.getLogger(__name__)

MESSAGES_PATH = "/messages"

_REJECTION_STATUS = {
    RejectionReason.MALFORMED: 400,
    RejectionReason.UNKNOWN_SENDER: 403,
    RejectionReason.WRONG_RECIPIENT: 403,
    RejectionReason.BAD_SIGNATURE: 403,
    RejectionReason.REPLAYED: 409,
    RejectionReason.UNKNOWN_EVENT: 422,
    RejectionReason.UNKNOWN_DOSSIER: 422,
}


def _receipt_json(receipt: Receipt) -> dict[str, str | None]:
    return {
        "message_id": receipt.message_id,
        "status": receipt.status.value,
        "reason": receipt.reason.value if receipt.reason else None,
        "detail": receipt.detail,
    }


def create_app(exchange: Exchange) -> Starlette:
    """Return the ASGI app receiving the peer's messages for ``exchange``."""

    async def too_large(request: Request) -> JSONResponse | None:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return JSONResponse(
                {
                    "message_id": None,
                    "status": ReceiptStatus.REJECTED.value,
                    "reason": RejectionReason.MALFORMED.value,
                    "detail": f"body of {declared} bytes exceeds {MAX_BODY_BYTES}",
                },
                status_code=413,
            )
        return None

    async def post_message(request: Request) -> JSONResponse:
        refused = await too_large(request)
        if refused is not None:
            return refused
        body = await request.body()
        # The store is synchronous: receive in a worker thread, off the event loop.
        receipt = await run_in_threadpool(exchange.receive, body)
        status = 200
        if receipt.status is ReceiptStatus.REJECTED and receipt.reason is not None:
            status = _REJECTION_STATUS[receipt.reason]
        return JSONResponse(_receipt_json(receipt), status_code=status)

    return Starlette(routes=[Route(MESSAGES_PATH, post_message, methods=["POST"])])


class HttpTransport:
    """Sends messages by HTTP POST to each peer's ``.../messages`` URL.

    ``urls`` maps each peer institution to the base URL where its app is mounted (a single
    string serves every peer). Pass ``client`` to share a configured :class:`httpx.Client`.
    """

    def __init__(
        self,
        urls: Mapping[str, str] | str,
        *,
        client: httpx.Client | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._urls = urls
        self._owned = client is None
        self._client = client or httpx.Client(timeout=timeout)

    def _url(self, recipient: str) -> str:
        if isinstance(self._urls, str):
            base = self._urls
        else:
            try:
                base = self._urls[recipient]
            except KeyError:
                raise InvalidInput(
                    f"no URL configured for peer {recipient!r}; configured peers: "
                    f"{', '.join(sorted(self._urls))}"
                ) from None
        return base.rstrip("/") + MESSAGES_PATH

    def send(self, message: OutboundMessage) -> Receipt:
        url = self._url(message.recipient)
        try:
            response = self._client.post(
                url, content=message.body, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError as error:
            raise TransportError(f"POST {url} failed: {type(error).__name__}: {error}") from None
        if response.status_code >= 500:
            raise TransportError(f"POST {url} failed with status {response.status_code}")
        try:
            data = response.json()
            status = ReceiptStatus(data["status"])
            reason = RejectionReason(data["reason"]) if data.get("reason") else None
            detail = str(data.get("detail") or "")
        except (ValueError, KeyError, TypeError):
            if 400 <= response.status_code < 500:
                raise MessageRejected(
                    message.message_id, None, f"HTTP {response.status_code}"
                ) from None
            raise TransportError(
                f"POST {url} returned status {response.status_code} without a receipt"
            ) from None
        if 400 <= response.status_code < 500 or status is ReceiptStatus.REJECTED:
            raise MessageRejected(message.message_id, reason, detail)
        return Receipt(data.get("message_id"), status, reason, detail)

    def close(self) -> None:
        if self._owned:
            self._client.close()
