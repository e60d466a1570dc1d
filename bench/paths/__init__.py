"""Benchmark paths. Each module has NAME, TITLE, PHASES, ``available(app) -> str | None``
(None, or why it cannot run yet) and ``run(ctx) -> list[Measurement]``. Add a path by adding
a module and listing it in ``ALL`` (in run order: the floor first)."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

ALL = (
    "floor",
    "status",
    "urgent",
    "ceiling",
    "stack",
    "claim",
    "console",
    "dashboard",
    "sms",
    "surge",
)
# Paths that write a section of their own in the results (``--only`` replaces just that).
SECTIONS = ("surge",)


def load(name: str) -> ModuleType:
    return import_module(f"bench.paths.{name}")
