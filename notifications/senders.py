"""Senders: hand one SMS to a provider. ``console`` for development, ``twilio`` in production.

A sender either returns the provider's message id or raises ``SendError`` saying whether a
retry may help (``transient``) or not (an invalid or unsubscribed number).

A sender has ``lanes``: the provider-side senders the worker paces one by one (each at
``SMS_SEND_RATE``). Twilio with a pool of numbers (``TWILIO_FROM=+1...,+1...``) has one lane per
number; a Messaging Service is one lane, since Twilio spreads it over the service's own pool.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

log = logging.getLogger(__name__)

# Twilio error codes worth retrying: rate limits and queue overflow.
TRANSIENT_CODES = frozenset({"20429", "30001", "30008", "20500", "20503"})
# Twilio error codes that will never succeed for this message (documented as permanent).
PERMANENT_CODES = frozenset(
    {
        "21211",  # invalid 'To' number
        "21408",  # region not enabled
        "21610",  # recipient unsubscribed (STOP)
        "21612",  # cannot route to this number
        "21614",  # not a mobile number
        "21617",  # body too long
        "30003",  # unreachable handset (Twilio: do not retry automatically)
        "30004",  # message blocked
        "30005",  # unknown destination handset
        "30006",  # landline or unreachable carrier
        "30007",  # carrier violation (filtered)
    }
)


class SendError(Exception):
    """The provider did not take the message."""

    def __init__(self, message: str, *, transient: bool, code: str | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code


class Sender(Protocol):
    """Hands one message to a provider; returns the provider's message id."""

    name: str
    lanes: int

    def send(
        self, *, to: str, body: str, message_id: int, status_callback: str | None, lane: int = 0
    ) -> str:
        """Send now from lane ``lane`` (0 <= lane < lanes); raise SendError on failure."""
        ...


class ConsoleSender:
    """Writes one JSON line per SMS to stderr: ``{"sms": {"to", "body", "id"}}``."""

    name = "console"
    lanes = 1

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(
        self, *, to: str, body: str, message_id: int, status_callback: str | None, lane: int = 0
    ) -> str:
        stream = self.stream or sys.stderr
        line = json.dumps({"sms": {"to": to, "body": body, "id": message_id}}, ensure_ascii=False)
        stream.write(line + "\n")
        stream.flush()
        return f"console-{message_id}"


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str
    auth_token: str
    # One number, or several separated by commas (a pool: one lane each, see the module).
    from_number: str = ""
    messaging_service_sid: str = ""
    api_base: str = ""
    timeout: float = 10.0


class TwilioSender:
    """Sends through the real Twilio SDK (``client.messages.create``)."""

    name = "twilio"

    def __init__(self, settings: TwilioSettings) -> None:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        if not settings.account_sid or not settings.auth_token:
            raise ValueError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required")
        self.from_numbers = tuple(n.strip() for n in settings.from_number.split(",") if n.strip())
        if not self.from_numbers and not settings.messaging_service_sid:
            raise ValueError("TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID is required")
        if len(set(self.from_numbers)) != len(self.from_numbers):
            raise ValueError("TWILIO_FROM names a number twice")
        self.settings = settings
        # A Messaging Service is paced by Twilio across its own pool: one lane for us.
        self.lanes = 1 if settings.messaging_service_sid else len(self.from_numbers)
        # The SDK logs every request at INFO; keep our logs to what we choose to say.
        http_logger = logging.getLogger("twilio.http_client")
        http_logger.setLevel(logging.WARNING)
        self.client = Client(
            settings.account_sid,
            settings.auth_token,
            http_client=TwilioHttpClient(timeout=settings.timeout, logger=http_logger),
        )
        if settings.api_base:
            # Region/edge would rewrite the host of every URL: another base means neither.
            self.client.edge = None
            self.client.region = None
            self.client.api.base_url = settings.api_base.rstrip("/")

    def send(
        self, *, to: str, body: str, message_id: int, status_callback: str | None, lane: int = 0
    ) -> str:
        import requests
        from twilio.base.exceptions import TwilioException, TwilioRestException

        kwargs: dict[str, Any] = {"to": to, "body": body}
        if self.settings.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.settings.messaging_service_sid
        else:
            kwargs["from_"] = self.from_numbers[lane % len(self.from_numbers)]
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            raise classify(exc.status, exc.code, str(exc.msg)) from exc
        except requests.RequestException as exc:
            raise SendError(f"network: {type(exc).__name__}", transient=True) from exc
        except TwilioException as exc:
            # Covers the SDK's RFC 9457 TwilioServiceException and anything else it raises.
            status = getattr(exc, "status", None)
            code = getattr(exc, "code", None)
            raise classify(status, code, type(exc).__name__) from exc
        return str(message.sid)


def classify(status: int | None, code: Any, message: str) -> SendError:
    """A SendError for an HTTP status and Twilio error code, transient or permanent."""
    code_s = str(code) if code is not None else None
    if code_s in TRANSIENT_CODES:
        transient = True
    elif code_s in PERMANENT_CODES:
        transient = False
    elif status is None:
        transient = True
    else:
        transient = status == 429 or status >= 500 or status == 408
    return SendError(f"HTTP {status}: {message}"[:500], transient=transient, code=code_s)


def make_sender(config: dict[str, Any]) -> Sender:
    """The sender named by ``SMS_BACKEND`` (``console`` or ``twilio``)."""
    backend = (config.get("SMS_BACKEND") or "console").lower()
    if backend == "console":
        return ConsoleSender()
    if backend == "twilio":
        return TwilioSender(
            TwilioSettings(
                account_sid=config.get("TWILIO_ACCOUNT_SID", ""),
                auth_token=config.get("TWILIO_AUTH_TOKEN", ""),
                from_number=config.get("TWILIO_FROM", ""),
                messaging_service_sid=config.get("TWILIO_MESSAGING_SERVICE_SID", ""),
                api_base=config.get("TWILIO_API_BASE", ""),
                timeout=float(config.get("TWILIO_TIMEOUT_SECONDS", 10)),
            )
        )
    raise ValueError(f"unknown SMS_BACKEND {backend!r} (console or twilio)")
