"""Settings from environment variables, with safe development defaults."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

DEFAULT_INSTANCE = Path(__file__).resolve().parent.parent / "instance"


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _required(env: dict[str, str], name: str, production: bool) -> str:
    value = env.get(name, "")
    if production and not value.strip():
        raise RuntimeError(f"{name} must be set in production")
    return value


def from_env(env: dict[str, str] | None = None) -> dict[str, Any]:
    """Build the configuration mapping from the environment."""
    env = dict(os.environ if env is None else env)
    instance = Path(env.get("AIDLINE_INSTANCE", DEFAULT_INSTANCE))
    production = env.get("AIDLINE_ENV", "development") == "production"
    secret = env.get("SECRET_KEY")
    if not secret:
        if production:
            raise RuntimeError("SECRET_KEY must be set in production")
        # Development only: a fresh key per process start. `make run` passes one key, kept in
        # the instance folder, to all its processes: what one seals the others must open.
        secret = secrets.token_urlsafe(48)
    return {
        "ENV_NAME": "production" if production else "development",
        "DATABASE_URL": env.get("DATABASE_URL") or f"sqlite:///{instance / 'aidline.db'}",
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": secret,
        # Fernet keys (comma-separated, newest first) for resident ID numbers at rest, and the
        # HMAC key of their look-up hash (kept apart so encryption keys can rotate). Both are
        # derived from SECRET_KEY in development; production must set them.
        "ID_ENCRYPTION_KEYS": _required(env, "ID_ENCRYPTION_KEYS", production),
        "ID_HASH_KEY": _required(env, "ID_HASH_KEY", production),
        "SMS_BACKEND": env.get("SMS_BACKEND", "console"),
        "TWILIO_ACCOUNT_SID": env.get("TWILIO_ACCOUNT_SID", ""),
        "TWILIO_AUTH_TOKEN": env.get("TWILIO_AUTH_TOKEN", ""),
        "TWILIO_FROM": env.get("TWILIO_FROM", ""),
        "TWILIO_MESSAGING_SERVICE_SID": env.get("TWILIO_MESSAGING_SERVICE_SID", ""),
        "TWILIO_API_BASE": env.get("TWILIO_API_BASE", ""),
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", ""),
        "TWILIO_TIMEOUT_SECONDS": float(env.get("TWILIO_TIMEOUT_SECONDS", 10)),
        # The SMS worker (README "SMS"): pace per sender of each worker process (TWILIO_FROM
        # may list a pool), the share by age of its sends, retries, crash detection.
        "SMS_SEND_RATE": float(env.get("SMS_SEND_RATE", 1)),
        "SMS_FAIR_SHARE": int(env.get("SMS_FAIR_SHARE", 10)),
        "SMS_BATCH_SIZE": int(env.get("SMS_BATCH_SIZE", 20)),
        "SMS_MAX_ATTEMPTS": int(env.get("SMS_MAX_ATTEMPTS", 8)),
        "SMS_RETRY_BASE_SECONDS": float(env.get("SMS_RETRY_BASE_SECONDS", 30)),
        "SMS_RETRY_MAX_SECONDS": float(env.get("SMS_RETRY_MAX_SECONDS", 3600)),
        "SMS_SENDING_TIMEOUT_SECONDS": float(env.get("SMS_SENDING_TIMEOUT_SECONDS", 300)),
        "SMS_POLL_SECONDS": float(env.get("SMS_POLL_SECONDS", 5)),
        "WORKER_PERIODIC_SECONDS": float(env.get("WORKER_PERIODIC_SECONDS", 60)),
        # Inbound SMS (feature phones): at most this many messages per number per window.
        "SMS_INBOUND_LIMIT": int(env.get("SMS_INBOUND_LIMIT", 5)),
        "SMS_INBOUND_WINDOW_SECONDS": int(env.get("SMS_INBOUND_WINDOW_SECONDS", 600)),
        "REDIS_URL": env.get("REDIS_URL", ""),
        # Shared by every serving process (required in production with more than one:
        # server.limits.require_shared_storage); memory:// counts per process.
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI")
        or env.get("REDIS_URL")
        or "memory://",
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX", "aidline"),
        "MAX_CONTENT_LENGTH": int(env.get("MAX_CONTENT_LENGTH", 256 * 1024)),
        # Rate limits (Flask-Limiter / limits syntax, ";" separates several).
        "RATELIMIT_SMS_PER_PHONE": env.get("RATELIMIT_SMS_PER_PHONE", "1/minute;10/day"),
        "RATELIMIT_SMS_PER_CLIENT": env.get("RATELIMIT_SMS_PER_CLIENT", "30/hour;200/day"),
        "RATELIMIT_VERIFY_PER_PHONE": env.get("RATELIMIT_VERIFY_PER_PHONE", "10/10minutes;50/day"),
        "RATELIMIT_VERIFY_PER_CLIENT": env.get("RATELIMIT_VERIFY_PER_CLIENT", "100/hour"),
        "RATELIMIT_STAFF_LOGIN_PER_CLIENT": env.get("RATELIMIT_STAFF_LOGIN_PER_CLIENT", "60/hour"),
        "RATELIMIT_REFRESH_PER_CLIENT": env.get("RATELIMIT_REFRESH_PER_CLIENT", "120/minute"),
        # Repeated one-tap requests of a resident who already has an open urgent case.
        "RATELIMIT_URGENT_PER_RESIDENT": env.get(
            "RATELIMIT_URGENT_PER_RESIDENT", "10/minute;60/hour"
        ),
        # New urgent cases (each pages the duty officers) opened by one resident's own taps.
        "RATELIMIT_URGENT_NEW_PER_RESIDENT": env.get("RATELIMIT_URGENT_NEW_PER_RESIDENT", "3/hour"),
        # Reverse proxies in front of the app whose X-Forwarded-For is trusted (client address).
        "TRUSTED_PROXIES": int(env.get("TRUSTED_PROXIES", 0)),
        # Failed staff sign-ins per (username, client address): this many are free, then each
        # further one makes that pair wait BASE seconds, doubling, at most MAX.
        "STAFF_THROTTLE_FREE_FAILURES": int(env.get("STAFF_THROTTLE_FREE_FAILURES", 5)),
        "STAFF_THROTTLE_BASE_SECONDS": int(env.get("STAFF_THROTTLE_BASE_SECONDS", 30)),
        "STAFF_THROTTLE_MAX_SECONDS": int(env.get("STAFF_THROTTLE_MAX_SECONDS", 900)),
        "ACCESS_TOKEN_TTL": int(env.get("ACCESS_TOKEN_TTL", 15 * 60)),
        "REFRESH_TOKEN_TTL": int(env.get("REFRESH_TOKEN_TTL", 30 * 24 * 3600)),
        # A refresh retried this soon after its answer was lost is not taken for a stolen copy.
        "REFRESH_REUSE_GRACE_SECONDS": int(env.get("REFRESH_REUSE_GRACE_SECONDS", 30)),
        "URGENT_LEASE_MINUTES": int(env.get("URGENT_LEASE_MINUTES", 30)),
        # An urgent case still unclaimed this long after submission is escalated.
        "URGENT_CLAIM_MINUTES": int(env.get("URGENT_CLAIM_MINUTES", 15)),
        "DUPLICATE_WINDOW_DAYS": int(env.get("DUPLICATE_WINDOW_DAYS", 30)),
        "DEPLOYMENT_CITY": env.get("DEPLOYMENT_CITY", "3711"),
        # Case documents (server/documents): where the files go, how large one may be, which
        # aid types take a signed commitment instead of proofs, how long files are kept.
        "DOCUMENT_STORAGE": env.get("DOCUMENT_STORAGE", "filesystem"),
        "DOCUMENT_DIR": env.get("DOCUMENT_DIR") or str(instance / "documents"),
        "DOCUMENT_S3_BUCKET": env.get("DOCUMENT_S3_BUCKET", ""),
        "DOCUMENT_S3_ENDPOINT_URL": env.get("DOCUMENT_S3_ENDPOINT_URL", ""),
        "DOCUMENT_S3_REGION": env.get("DOCUMENT_S3_REGION", ""),
        "DOCUMENT_S3_ACCESS_KEY_ID": env.get("DOCUMENT_S3_ACCESS_KEY_ID", ""),
        "DOCUMENT_S3_SECRET_ACCESS_KEY": env.get("DOCUMENT_S3_SECRET_ACCESS_KEY", ""),
        "DOCUMENT_S3_PREFIX": env.get("DOCUMENT_S3_PREFIX", ""),
        "DOCUMENT_MAX_BYTES": int(env.get("DOCUMENT_MAX_BYTES", 10 * 1024 * 1024)),
        "DOCUMENT_COMMITMENT_AID_TYPES": env.get("DOCUMENT_COMMITMENT_AID_TYPES"),
        "DOCUMENT_RETENTION_YEARS": int(env.get("DOCUMENT_RETENTION_YEARS", 10)),
        # The staff console (server/console): signed out after this long without activity;
        # its cookie is Secure when set so, else when the request came over HTTPS.
        "CONSOLE_IDLE_MINUTES": float(env.get("CONSOLE_IDLE_MINUTES", 30)),
        # The queue page's live channel (server/console/live.py): on PostgreSQL a request
        # waits this long at most for a change; a server other than gunicorn lets this many
        # wait at once per app (gunicorn: GUNICORN_LIVE_THREADS per process).
        "CONSOLE_LIVE_WAIT_SECONDS": float(env.get("CONSOLE_LIVE_WAIT_SECONDS", 25)),
        "CONSOLE_LIVE_WAITERS": int(env.get("CONSOLE_LIVE_WAITERS", 64)),
        "SESSION_COOKIE_SECURE": (
            _bool(env["SESSION_COOKIE_SECURE"]) if "SESSION_COOKIE_SECURE" in env else None
        ),
        "SERVE_DOCS": _bool(env.get("SERVE_DOCS"), default=not production),
        "TESTING": False,
    }


def web_threads(env: dict[str, str] | None = None) -> int:
    """Threads per gunicorn process (gunicorn.conf.py): ``GUNICORN_THREADS``, else 4 on
    PostgreSQL and 1 on SQLite (the default database when ``DATABASE_URL`` is unset).

    Threads overlap a request's waits on the database server: round trips, commits that wait
    for the WAL on disk. SQLite has no such wait (in-process, no fsync per commit in WAL mode)
    and one writer at a time, so there threads only take turns at the GIL: the writer holding
    the database's lock waits for it behind its process's other threads
    (bench/results/decisions.md)."""
    env = os.environ if env is None else env
    if env.get("GUNICORN_THREADS"):
        return int(env["GUNICORN_THREADS"])
    return 1 if (env.get("DATABASE_URL") or "sqlite").startswith("sqlite") else 4
