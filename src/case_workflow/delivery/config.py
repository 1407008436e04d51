"""Delivery configuration: which transport carries each outbox channel, and retry settings.

The configuration is a mapping, as read from a YAML or TOML file by the caller::

    channels:
      email:                       # outbox channel name (letters to e-mail addresses)
        transport: smtp
        host: smtp.example.org
        port: 587
        security: starttls         # none, starttls or ssl
        username: relay
        password_env: CW_SMTP_PASSWORD
        from: "Bureau d'ordre <bureau-ordre@example.org>"
        senders: {al-omrane: "Bureau d'ordre <bo@example.ma>"}
      registry:                    # letters without e-mail address: printed and posted
        transport: drop_folder
        path: /srv/bureau-ordre/outgoing
      # or, to the institutions' shared platform:
      # registry: {transport: webhook, url: https://platform.example/hooks/letters,
      #            secret_env: CW_WEBHOOK_SECRET}
    retry: {max_attempts: 8, first_delay_seconds: 60, max_delay_seconds: 21600}
    lease_seconds: 900
    batch_size: 20

Secrets are read from the environment variable that ``password_env`` or ``secret_env``
names; ``password`` and ``secret`` may hold them directly, for tests.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from case_workflow.delivery.channel import Channel
from case_workflow.delivery.dropfolder import DropFolderChannel
from case_workflow.delivery.outbox import RetryPolicy
from case_workflow.delivery.smtp import SmtpChannel
from case_workflow.delivery.webhook import WebhookChannel
from case_workflow.errors import InvalidInput

__all__ = ["DeliveryConfig", "load_delivery_config"]

TRANSPORTS = ("smtp", "drop_folder", "webhook")


@dataclass(frozen=True)
class DeliveryConfig:
    """Channels by outbox channel name, and the relay's retry, lease and batch settings."""

    channels: Mapping[str, Channel]
    policy: RetryPolicy
    lease: timedelta
    batch_size: int


def _required(section: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in section or section[key] in (None, ""):
        raise InvalidInput(f"delivery configuration {where}: missing {key!r}; add it")
    return section[key]


def _secret(
    section: Mapping[str, Any], key: str, where: str, environ: Mapping[str, str]
) -> str | None:
    variable = section.get(f"{key}_env")
    if variable is not None:
        value = environ.get(str(variable))
        if not value:
            raise InvalidInput(
                f"delivery configuration {where}: environment variable {variable!r} named by "
                f"'{key}_env' is not set; export it or remove '{key}_env'"
            )
        return value
    direct = section.get(key)
    return None if direct is None else str(direct)


def _channel(name: str, section: Mapping[str, Any], environ: Mapping[str, str]) -> Channel:
    where = f"channels.{name}"
    transport = section.get("transport")
    if transport == "smtp":
        return SmtpChannel(
            host=str(_required(section, "host", where)),
            port=int(section.get("port", 25)),
            sender=str(section.get("from", "case-workflow@localhost")),
            senders={str(k): str(v) for k, v in dict(section.get("senders", {})).items()},
            security=section.get("security", "none"),
            username=section.get("username"),
            password=_secret(section, "password", where, environ),
            timeout=float(section.get("timeout", 30.0)),
            message_id_domain=section.get("message_id_domain"),
        )
    if transport == "drop_folder":
        return DropFolderChannel(
            Path(str(_required(section, "path", where))),
            durable=bool(section.get("durable", True)),
        )
    if transport == "webhook":
        secret = _secret(section, "secret", where, environ)
        if not secret:
            raise InvalidInput(
                f"delivery configuration {where}: missing 'secret_env' (or 'secret'); name the "
                "environment variable that holds the shared HMAC secret"
            )
        return WebhookChannel(
            url=str(_required(section, "url", where)),
            secret=secret.encode("utf-8"),
            timeout=float(section.get("timeout", 30.0)),
            trust_env=bool(section.get("trust_env", True)),
        )
    raise InvalidInput(
        f"delivery configuration {where}: unknown transport {transport!r}; use one of: "
        + ", ".join(TRANSPORTS)
    )


def load_delivery_config(
    data: Mapping[str, Any], *, environ: Mapping[str, str] | None = None
) -> DeliveryConfig:
    """Build the channels and relay settings from the mapping ``data`` (see module docstring).

    ``environ`` defaults to the process environment. Raises :class:`InvalidInput` naming the
    offending key.
    """
    environment = os.environ if environ is None else environ
    sections = data.get("channels")
    if not isinstance(sections, Mapping) or not sections:
        raise InvalidInput(
            "delivery configuration: 'channels' is missing or empty; map at least one outbox "
            "channel (email, registry) to a transport"
        )
    channels: dict[str, Channel] = {}
    for name, section in sections.items():
        if not isinstance(section, Mapping):
            raise InvalidInput(
                f"delivery configuration channels.{name}: expected a mapping with 'transport'"
            )
        channels[str(name)] = _channel(str(name), section, environment)
    retry = data.get("retry", {})
    policy = RetryPolicy(
        max_attempts=int(retry.get("max_attempts", 8)),
        first_delay=timedelta(seconds=float(retry.get("first_delay_seconds", 60))),
        factor=float(retry.get("factor", 2.0)),
        max_delay=timedelta(seconds=float(retry.get("max_delay_seconds", 6 * 3600))),
    )
    return DeliveryConfig(
        channels=channels,
        policy=policy,
        lease=timedelta(seconds=float(data.get("lease_seconds", 900))),
        batch_size=int(data.get("batch_size", 20)),
    )
