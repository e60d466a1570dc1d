"""Resident ID numbers (居民身份证号码, GB 11643-1999): validate, encrypt, hash, mask.

The clear number exists only in memory between a request and ``protect_id_number``. At rest
an account (or a case) keeps three things:

- ``enc``: Fernet ciphertext (AES-128-CBC + HMAC-SHA256) under ``ID_ENCRYPTION_KEYS``
  (comma-separated, newest first; MultiFernet decrypts with any of them and encrypts with the
  first, so keys rotate by prepending a new one and running ``rotate_id_number`` over the rows);
- ``hash``: HMAC-SHA256 under ``ID_HASH_KEY``, for exact look-ups (duplicate detection, a
  hotline operator searching by ID number); a separate key so encryption keys can rotate
  without re-hashing;
- ``masked``: ``371102********123X`` (region code and the last four), the only form that ever
  appears in responses, SMS and logs.

In development both keys are derived from SECRET_KEY; production refuses to start without them.

Region check: the first six digits must be a county-level code, OR the first four a city-level
code, of the national division data. Codes of counties merged or renamed since the holder's
birth registration (e.g. a district later absorbed into another) are no longer in the current
statistical data but their city usually still is; accepting the city prefix keeps such real
numbers valid while still rejecting made-up regions. A number whose whole prefecture has since
been abolished (rare) is refused and needs staff help.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import functools
import hashlib
import hmac
import unicodedata
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import select

from server.divisions.load import DATA
from server.divisions.models import Division
from server.errors import ValidationFailed

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
CHINA_TZ = dt.timezone(dt.timedelta(hours=8))
EARLIEST_BIRTH = dt.date(1880, 1, 1)  # the standard's own example is born in 1880


def check_digit(first17: str) -> str:
    """The GB 11643 check character (0-9 or X) of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def _clean(raw: Any) -> str:
    # Full-width digits and a lower-case x are common from Chinese input methods.
    text = unicodedata.normalize("NFKC", str(raw or ""))
    return "".join(text.split()).upper()


@functools.lru_cache(maxsize=1)
def _known_regions() -> frozenset[str]:
    """County (6-digit) and city (4-digit) codes of the shipped national division data."""
    codes: set[str] = set()
    with (DATA / "divisions.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if len(row["code"]) in (4, 6):
                codes.add(row["code"])
    return frozenset(codes)


def _region_known(code6: str, session: Any = None) -> bool:
    known = _known_regions()
    if code6 in known or code6[:4] in known:
        return True
    if session is not None:
        # Divisions an administrator added to the table beyond the shipped data.
        return bool(
            session.scalar(select(Division.code).where(Division.code.in_([code6, code6[:4]])))
        )
    return False


def validate_id_number(
    raw: Any, *, field: str = "id_number", session: Any = None, today: dt.date | None = None
) -> str:
    """The normalised 18-character ID number, or a 422 naming ``field``.

    Checks: 18 characters (17 digits and a digit or X), a real birth date neither in the
    future nor before 1880, the GB 11643 check character, and a known region prefix (see
    the module docstring). Error messages never repeat the number.
    """
    value = _clean(raw)

    def fail(message: str) -> ValidationFailed:
        return ValidationFailed(errors={field: [message]})

    if len(value) != 18:
        raise fail("身份证号码应为 18 位。")
    if not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        raise fail("身份证号码格式不正确。")
    try:
        birth = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise fail("身份证号码中的出生日期无效。") from None
    today = today or dt.datetime.now(CHINA_TZ).date()
    if birth > today or birth < EARLIEST_BIRTH:
        raise fail("身份证号码中的出生日期无效。")
    if check_digit(value[:17]) != value[17]:
        raise fail("身份证号码校验位不正确，请核对。")
    if not _region_known(value[:6], session):
        raise fail("身份证号码中的地区码无效。")
    return value


def mask_id_number(value: str) -> str:
    """``371102********123X``: region code and last four; everything else hidden."""
    value = _clean(value)
    if len(value) < 10:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


# --- keys -----------------------------------------------------------------------------------


def _derive(secret: str, label: bytes) -> bytes:
    return hmac.new(secret.encode(), label, hashlib.sha256).digest()


@functools.lru_cache(maxsize=8)
def _fernet(keys: str, secret: str) -> MultiFernet:
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        # Development: derived from SECRET_KEY (production refuses to start without keys).
        parts = [base64.urlsafe_b64encode(_derive(secret, b"aidline id-number encryption v1"))]
    return MultiFernet([Fernet(p) for p in parts])


def _config_fernet() -> MultiFernet:
    cfg = current_app.config
    return _fernet(cfg.get("ID_ENCRYPTION_KEYS") or "", cfg["SECRET_KEY"])


def _hash_key() -> bytes:
    cfg = current_app.config
    if cfg.get("ID_HASH_KEY"):
        return str(cfg["ID_HASH_KEY"]).encode()
    return _derive(cfg["SECRET_KEY"], b"aidline id-number hash v1")


# --- at rest --------------------------------------------------------------------------------


def keyed_hash(text: str) -> str:
    """HMAC-SHA256 (hex) of ``text`` under ``ID_HASH_KEY``: the one keyed hash for anything
    that may contain an ID number (its look-up hash, a request's fingerprint)."""
    return hmac.new(_hash_key(), text.encode(), hashlib.sha256).hexdigest()


def id_number_hash(value: str) -> str:
    """Keyed hash (HMAC-SHA256, hex) of a normalised ID number, for exact look-ups."""
    return keyed_hash(_clean(value))


def encrypt_id_number(value: str) -> bytes:
    """Ciphertext of the ID number under the newest key."""
    return _config_fernet().encrypt(_clean(value).encode())


def decrypt_id_number(enc: bytes) -> str:
    """The clear ID number (for an audited full-record read only); ValueError when unreadable."""
    try:
        return _config_fernet().decrypt(bytes(enc)).decode()
    except InvalidToken as exc:
        raise ValueError(
            "ID number ciphertext cannot be decrypted with the configured keys"
        ) from exc


def rotate_id_number(enc: bytes) -> bytes:
    """Re-encrypt ciphertext under the newest key (after prepending a key to ID_ENCRYPTION_KEYS)."""
    return _config_fernet().rotate(bytes(enc))


def protect_id_number(value: str) -> tuple[bytes, str, str]:
    """``(ciphertext, keyed hash, masked form)`` of a validated ID number, for storage."""
    value = _clean(value)
    return encrypt_id_number(value), id_number_hash(value), mask_id_number(value)
