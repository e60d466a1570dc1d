"""Rate limits: one Flask-Limiter instance for the whole app (memory, or Redis when configured).

Two ways to limit, both answering 429 in the uniform error shape with ``Retry-After``:

- a route decorator, for limits keyed by something known before parsing (the client address)::

      from server.limits import client_address, config_limit, limiter

      @limiter.limit(config_limit("RATELIMIT_SMS_PER_CLIENT"), key_func=client_address)
      def post(self, data): ...

- ``enforce(...)`` inside a service, for limits keyed by a parsed value (a normalised phone)::

      from server.limits import enforce, private_key
      limit = current_app.config["RATELIMIT_SMS_PER_PHONE"]
      enforce(limit, scope="sms-code", key=private_key(phone))

Storage is ``RATELIMIT_STORAGE_URI`` (``memory://`` by default; ``redis://...`` shares counters
between processes, and production refuses to serve from several processes without it: see
``require_shared_storage``). ``init_app`` gives every app a fresh storage, so each test's app
starts with empty counters. Keys that identify a person (phone numbers) go through
``private_key`` so they never appear in Redis or in the limiter's log lines in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, current_app, request
from flask_limiter import Limiter, RateLimitExceeded
from limits import RateLimitItem, parse_many

from server.errors import RateLimited, error_body, localize

log = logging.getLogger(__name__)

KEY_PREFIX = "aidline"


def client_address() -> str:
    """The client's address (X-Forwarded-For is honoured only through TRUSTED_PROXIES)."""
    return request.remote_addr or "unknown"


limiter = Limiter(
    key_func=client_address,
    key_prefix=KEY_PREFIX,
    # Moving window: "1/minute" really means one per rolling minute, not two across a boundary.
    strategy="moving-window",
    headers_enabled=False,
    # If Redis goes away, keep limiting per process instead of failing every request.
    in_memory_fallback_enabled=True,
)


def config_limit(name: str) -> Callable[[], str]:
    """A limit value read from the app config at request time (for ``@limiter.limit``)."""
    return lambda: current_app.config[name]


def private_key(value: str) -> str:
    """A stable, non-reversible limiter key for personal data such as a phone number."""
    secret = current_app.config["SECRET_KEY"].encode()
    return hmac.new(secret, b"ratelimit:" + value.encode(), hashlib.sha256).hexdigest()[:32]


def _retry_after(item: RateLimitItem, *identifiers: str) -> int:
    try:
        reset = limiter.limiter.get_window_stats(item, *identifiers).reset_time
    except Exception:  # storage trouble: a conservative answer beats a 500
        return item.get_expiry()
    return max(1, math.ceil(reset - time.time()))


def enforce(
    limit_value: str,
    *,
    scope: str,
    key: str,
    cost: int = 1,
    message: str | None = None,
    message_en: str | None = None,
) -> None:
    """Count one hit of ``key`` against every limit in ``limit_value``; 429 when exceeded.

    Nothing is counted when any of the limits is already exhausted. ``message`` (and
    ``message_en``) replace the generic refusal, e.g. to tell a resident where help still is.
    """

    def _limited(retry_after: int) -> RateLimited:
        headers = {"Retry-After": str(retry_after)}
        if message is None:
            return RateLimited(headers=headers)
        return RateLimited(message, message_en=message_en, headers=headers)

    items = parse_many(limit_value)
    identifiers = (KEY_PREFIX, scope, key)
    try:
        for item in items:
            if not limiter.limiter.test(item, *identifiers, cost=cost):
                log.info("rate limit %s exceeded for %s", item, scope)
                raise _limited(_retry_after(item, *identifiers))
        for item in items:
            # The hit itself decides (atomic in the storage): requests in several processes
            # may all have passed the test above at once.
            if not limiter.limiter.hit(item, *identifiers, cost=cost):
                log.info("rate limit %s exceeded for %s", item, scope)
                raise _limited(_retry_after(item, *identifiers))
    except RateLimited:
        raise
    except Exception:
        # The limiter's storage is down: fail open. The checks that guard secrets (tries per
        # code, staff sign-in throttle) live in the database and still hold.
        log.warning("rate limit storage unavailable; %s not limited", scope, exc_info=True)


def per_process(storage_uri: str) -> bool:
    """True when counters kept at ``storage_uri`` are seen by one process only."""
    return storage_uri.split(":", 1)[0].lower() in {"memory", ""}


def require_shared_storage(config: Mapping[str, Any], *, processes: int) -> None:
    """Refuse to serve in production with ``processes`` > 1 and per-process counters.

    With memory:// each process counts alone: under four workers one phone got four sign-in
    codes in a minute (limit 1). Development keeps working on memory://.
    """
    if config.get("ENV_NAME") != "production" or processes <= 1:
        return
    if per_process(str(config.get("RATELIMIT_STORAGE_URI") or "memory://")):
        raise RuntimeError(
            f"{processes} processes serve but rate limits are kept per process (memory://): "
            "set REDIS_URL (or RATELIMIT_STORAGE_URI) to a shared storage in production"
        )


def serving_processes(env: Mapping[str, str] | None = None) -> int:
    """The number of serving processes the environment declares (``WEB_CONCURRENCY``)."""
    env = os.environ if env is None else env
    try:
        return max(1, int(env.get("WEB_CONCURRENCY") or 1))
    except ValueError:
        return 1


def init_app(app: Flask) -> None:
    """Attach the limiter to ``app`` with fresh storage, and render its 429s uniformly."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    require_shared_storage(app.config, processes=serving_processes())
    # Keys in a shared storage start with this (limits' own prefix option): deployments, or
    # test runs, sharing one Redis do not count each other's hits.
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {
        **app.config.get("RATELIMIT_STORAGE_OPTIONS", {}),
        "key_prefix": app.config.get("RATELIMIT_KEY_PREFIX") or "aidline",
    }
    # Flask-Limiter keeps ``enabled`` on the shared instance; let each app's config decide.
    limiter.enabled = True
    app.config.setdefault("RATELIMIT_ENABLED", True)
    # A storage outage seen by a previous app must not leave this one on the fallback.
    limiter._storage_dead = False
    limiter.init_app(app)

    @app.errorhandler(RateLimitExceeded)
    def _exceeded(error: RateLimitExceeded):
        body = error_body("rate_limited", localize("rate_limited"))
        return body, 429, {"Retry-After": str(retry_after(error))}


def retry_after(error: RateLimitExceeded) -> int:
    """Seconds until the exceeded limit's window lets the client in again."""
    current = limiter.current_limit
    if current is not None:
        return max(1, math.ceil(current.window.reset_time - time.time()))
    return error.limit.limit.get_expiry()
