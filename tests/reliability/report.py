"""Prints what the reliability suites covered (operations fuzzed, examples, bad inputs)."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.reliability.support import FUZZED_OPERATIONS, KINDS, STATS, operations

    if not (FUZZED_OPERATIONS or STATS):
        return
    parts = []
    if FUZZED_OPERATIONS:
        parts.append(
            f"operations fuzzed: {len(FUZZED_OPERATIONS)}/{len(operations())}, "
            f"examples run: {STATS['fuzz examples']}"
        )
    if STATS["bad inputs"]:
        kinds = ", ".join(f"{kind}: {STATS[kind]}" for kind in KINDS)
        parts.append(
            f"bad inputs tried: {STATS['bad inputs']} "
            f"on {STATS['bad-input endpoints']} operations ({kinds})"
        )
    if STATS["faults"]:
        parts.append(f"fault scenarios: {STATS['faults']}")
    terminalreporter.write_line("reliability: " + "; ".join(parts))
