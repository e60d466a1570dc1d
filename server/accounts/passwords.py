"""Staff password hashing (argon2id via argon2-cffi)."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()


def generate_password() -> str:
    """A random one-time password (72 bits, 12 URL-safe characters) for an administrator to
    hand over: the demo seed's and ``staff reset-password``'s."""
    return secrets.token_urlsafe(9)


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


# A hash of nothing anybody knows, made with the hasher in use: checks that must fail (no such
# user, a throttled sign-in) verify against it and cost what a real check costs.
_dummy: tuple[PasswordHasher, str] | None = None


def _dummy_hash() -> str:
    global _dummy
    if _dummy is None or _dummy[0] is not _hasher:
        _dummy = (_hasher, _hasher.hash(secrets.token_urlsafe(32)))
    return _dummy[1]


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; constant-time, never raises on a bad hash.

    Without a hash it verifies against a dummy one and returns False, in the same time, so
    usernames cannot be probed by timing.
    """
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)
