"""What every benchmark path shares: the run context and one measured figure with its targets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from flask import Flask
from sqlalchemy.engine import Engine

from bench.seed import Seeder
from bench.server import ServerConfig

T = TypeVar("T")
FLOOR_PROBE_S = 3


@dataclass
class Target:
    """One target of a figure: ``ok`` is None when it does not apply on this database."""

    text: str
    ok: bool | None

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.text, "ok": self.ok}


@dataclass
class Measurement:
    """One figure: a path on a database in a phase (``base`` or ``growth``)."""

    path: str
    label: str
    db: str
    phase: str
    concurrency: int
    rate: float
    unit: str = "req/s"
    p50_ms: float | None = None
    p99_ms: float | None = None
    ratio: float | None = None
    targets: list[Target] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool | None:
        applicable = [t.ok for t in self.targets if t.ok is not None]
        if not applicable:
            return None
        return all(applicable)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "label": self.label,
            "db": self.db,
            "phase": self.phase,
            "concurrency": self.concurrency,
            "rate": round(self.rate, 1),
            "unit": self.unit,
            "p50_ms": _r(self.p50_ms),
            "p99_ms": _r(self.p99_ms),
            "ratio_to_floor": _r(self.ratio, 3),
            "targets": [t.as_dict() for t in self.targets],
            "pass": self.ok,
            "details": self.details,
        }


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class Context:
    """Everything a path needs to prepare its data and run against the live server."""

    db: str  # "sqlite" or "postgresql"
    phase: str  # "base" or "growth"
    base_url: str
    app: Flask  # in-process app on the same database: tokens, EXPLAIN
    engine: Engine
    seeder: Seeder
    server: ServerConfig
    env: dict[str, str]  # environment of the deployment's processes (CLI, worker)
    workdir: Path
    duration: int
    floor_concurrency: int
    floor: Measurement | None = None
    baseline: dict[str, Measurement] = field(default_factory=dict)  # base figures, for growth
    explains: list[dict[str, Any]] = field(default_factory=list)
    log: Any = print
    options: dict[str, Any] = field(default_factory=dict)  # per-path settings (--surge-*)

    def ratio(self, rate: float) -> float | None:
        if self.floor is None or not self.floor.rate:
            return None
        return rate / self.floor.rate

    def floor_probe(self) -> float:
        """A short floor run: the framework's ceiling right now (other work comes and goes)."""
        from bench import wrk

        res = wrk.run(
            self.base_url, "floor", connections=self.floor_concurrency, duration_s=FLOOR_PROBE_S
        )
        return res.rps

    def bracketed(self, fn: Callable[[], T]) -> tuple[T, dict[str, Any]]:
        """Run ``fn`` between two floor probes; the ratio of its figure is taken to their mean,
        so load from other processes that changes during the run cancels out."""
        before = self.floor_probe()
        out = fn()
        after = self.floor_probe()
        return out, {
            "before": round(before, 1),
            "after": round(after, 1),
            "mean": (before + after) / 2,
        }

    def adjacent_ratio(self, rate: float, floor: dict[str, Any]) -> float | None:
        return rate / floor["mean"] if floor.get("mean") else self.ratio(rate)

    def wrk_figure(
        self,
        path: str,
        label: str,
        concurrency: int,
        res: Any,
        floor: dict[str, Any],
        **details: Any,
    ) -> Measurement:
        """The figure of a wrk run (``bench.wrk.WrkResult``) taken between floor probes
        (``bracketed``): its rate and latency, its ratio to those probes, and ``details``."""
        return Measurement(
            path=path,
            label=label,
            db=self.db,
            phase=self.phase,
            concurrency=concurrency,
            rate=res.rps,
            p50_ms=res.p50_us / 1000,
            p99_ms=res.p99_us / 1000,
            ratio=self.adjacent_ratio(res.rps, floor),
            details={"wrk": res.as_dict(), "floor_adjacent_rps": floor, **details},
        )


GROWTH_FACTOR = 1.5


def growth_targets(ctx: Context, m: Measurement) -> list[Target]:
    """In the growth phase: within 1.5x of the base figure (throughput as a ratio to the
    floor of each phase, so the two runs' machine load cancels out; p99 absolute)."""
    if ctx.phase != "growth":
        return []
    base = ctx.baseline.get(m.path)
    if base is None:
        return [Target("within 1.5x of 10k run (no base figure)", None)]
    targets = []
    if base.ratio and m.ratio is not None:
        slower = base.ratio / m.ratio if m.ratio else float("inf")
        m.details["growth_throughput_factor"] = round(slower, 2)
        targets.append(Target(f"throughput ≥ base/{GROWTH_FACTOR}", slower <= GROWTH_FACTOR))
    elif base.rate and m.ratio is None:
        slower = base.rate / m.rate if m.rate else float("inf")
        m.details["growth_throughput_factor"] = round(slower, 2)
        targets.append(Target(f"rate ≥ base/{GROWTH_FACTOR}", slower <= GROWTH_FACTOR))
    if base.p99_ms and m.p99_ms is not None:
        factor = m.p99_ms / base.p99_ms
        m.details["growth_p99_factor"] = round(factor, 2)
        targets.append(Target(f"p99 ≤ {GROWTH_FACTOR}x base", factor <= GROWTH_FACTOR))
    return targets
