"""Delivery by HTTP POST to a webhook, signed with HMAC-SHA256.

The body is JSON: the message's metadata (see ``OutgoingMessage.describe``) and, for a letter,
the PDF in base64 under ``pdf_base64``. The body depends only on the message, so a duplicate
is byte-identical. Headers:

- ``X-Idempotency-Key``: the message's idempotency key; the receiver drops a key it has seen.
- ``X-Case-Workflow-Timestamp``: the attempt's time in Unix seconds.
- ``X-Case-Workflow-Signature``: ``sha256=`` and the hex HMAC-SHA256, keyed with the shared
  secret, of ``TIMESTAMP.`` followed by the body bytes. :func:`verify_signature` checks it.

A 2xx reply is success; 408, 425, 429 and 5xx replies and network errors are retried; any
other reply (including a redirect) is permanent. httpx is used when installed, else urllib.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from case_workflow.delivery.channel import (
    OutgoingMessage,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from case_workflow.errors import InvalidInput

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookChannel",
    "sign",
    "verify_signature",
]

IDEMPOTENCY_HEADER = "X-Idempotency-Key"
SIGNATURE_HEADER = "X-Case-Workflow-Signature"
TIMESTAMP_HEADER = "X-Case-Workflow-Timestamp"

_RETRYABLE_STATUSES = frozenset({408, 425, 429})


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """Return the signature header value of ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_signature(
    secret: bytes,
    *,
    timestamp: str,
    body: bytes,
    signature: str,
    now: datetime,
    tolerance_seconds: int = 300,
) -> bool:
    """Check a received webhook: the signature matches and the timestamp is recent.

    A timestamp more than ``tolerance_seconds`` away from ``now`` fails, which limits replays
    of a captured request to that window (the idempotency key covers the rest).
    """
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs(now.timestamp() - sent) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def _status_error(status: int, url: str) -> Exception:
    text = f"webhook {url} answered HTTP {status}"
    if status in _RETRYABLE_STATUSES or status >= 500:
        return RetryableDeliveryError(text)
    return PermanentDeliveryError(text + "; check the webhook URL and the receiver's logs")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


@dataclass
class WebhookChannel:
    """POSTs each message to ``url``, signed with ``secret``.

    ``timeout`` is in seconds. ``trust_env`` lets the proxy environment variables
    (``HTTPS_PROXY``, ``NO_PROXY``) apply, as curl and httpx do by default.
    """

    url: str
    secret: bytes = field(repr=False)
    timeout: float = 30.0
    trust_env: bool = True

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(
                f"invalid webhook URL {self.url!r}; use an http:// or https:// URL with a host"
            )
        if not self.secret:
            raise InvalidInput("the webhook secret is empty; configure a shared secret")

    def body(self, message: OutgoingMessage) -> bytes:
        """Return the JSON body of ``message``."""
        document = message.describe()
        if message.letter is not None:
            document["pdf_base64"] = base64.b64encode(message.letter.pdf).decode("ascii")
        text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return text.encode("utf-8")

    def deliver(self, message: OutgoingMessage) -> None:
        """POST ``message``; see :class:`~case_workflow.delivery.channel.Channel`."""
        body = self.body(message)
        timestamp = str(int(message.attempted_at.timestamp()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            IDEMPOTENCY_HEADER: message.idempotency_key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.secret, timestamp, body),
        }
        status = self._post(body, headers)
        if not 200 <= status < 300:
            raise _status_error(status, self.url)

    def _post(self, body: bytes, headers: dict[str, str]) -> int:
        try:
            # Imported by name: httpx is optional, and mypy must not require its stubs.
            httpx = importlib.import_module("httpx")
        except ImportError:
            return self._post_urllib(body, headers)
        # NOTE: this branch runs only where httpx is installed; the tests exercise urllib.
        try:
            response = httpx.post(
                self.url,
                content=body,
                headers=headers,
                timeout=self.timeout,
                trust_env=self.trust_env,
                follow_redirects=False,
            )
        except httpx.HTTPError as error:
            raise RetryableDeliveryError(f"webhook {self.url} unreachable: {error}") from None
        return int(response.status_code)

    def _post_urllib(self, body: bytes, headers: dict[str, str]) -> int:
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if not self.trust_env:
            handlers.append(urllib.request.ProxyHandler({}))
        opener = urllib.request.build_opener(*handlers)
        # The URL's scheme was checked to be http or https when the channel was built.
        request = urllib.request.Request(  # noqa: S310
            self.url, data=body, headers=headers, method="POST"
        )
        try:
            with opener.open(request, timeout=self.timeout) as response:
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as error:
            error.close()
            return int(error.code)
        except (urllib.error.URLError, OSError) as error:
            raise RetryableDeliveryError(f"webhook {self.url} unreachable: {error}") from None
