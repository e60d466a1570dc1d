"""Masked forms of personal data for lists, logs and staff views."""

from __future__ import annotations


def mask_phone(phone: str | None) -> str | None:
    """+8613812345678 -> 138****5678."""
    if not phone:
        return phone
    digits = phone.removeprefix("+86")
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


def mask_name(name: str | None) -> str | None:
    """张三丰 -> 张**."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)
