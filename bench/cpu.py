"""Where the machine's CPU went during one load run: the API server, the database, the load
generator, everything else — read from /proc before and after, divided by the requests served.

A ratio to the floor says how much slower a path is; this says which process the extra cost
sits in (Python or the database server).
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


def _group(pid_dir: Path) -> str | None:
    try:
        comm = (pid_dir / "comm").read_text().strip()
        if comm == "postgres":
            return "db"
        cmdline = (pid_dir / "cmdline").read_bytes()
    except OSError:
        return None
    return "app" if b"gunicorn" in cmdline else None


def _ticks(pid_dir: Path) -> int:
    # utime and stime: fields 14 and 15, counted after the ")" that ends the command name.
    fields = (pid_dir / "stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@dataclass
class Snapshot:
    groups: dict[str, float]  # CPU seconds per group of live processes
    servers: dict[int, float]  # CPU seconds of each API server process (gunicorn) by pid
    busy: float  # CPU seconds the whole machine spent not idle
    children: float  # CPU seconds of this harness's finished children (the load generator)


def snapshot() -> Snapshot:
    """The CPU seconds used so far, by group."""
    groups = {"app": 0.0, "db": 0.0}
    servers: dict[int, float] = {}
    for pid_dir in _PROC.iterdir():
        if not pid_dir.name.isdigit():
            continue
        group = _group(pid_dir)
        if group is None:
            continue
        try:
            used = _ticks(pid_dir) / _TICK
        except (OSError, IndexError, ValueError):
            continue  # it exited meanwhile
        groups[group] += used
        if group == "app":
            servers[int(pid_dir.name)] = used
    cpu = (_PROC / "stat").read_text().split("\n", 1)[0].split()[1:]
    values = [int(v) for v in cpu]
    idle = values[3] + values[4]  # idle + iowait
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Snapshot(
        groups=groups,
        servers=servers,
        busy=(sum(values[:8]) - idle) / _TICK,
        children=usage.ru_utime + usage.ru_stime,
    )


def per_request(before: Snapshot, after: Snapshot, requests: int) -> dict[str, float]:
    """CPU milliseconds per request by group between two snapshots (the load generator's
    from the harness's finished children, "other" the rest of the machine's busy time)."""
    if requests <= 0:
        return {}
    spent = {g: after.groups[g] - before.groups[g] for g in after.groups}
    spent["load"] = after.children - before.children
    total = after.busy - before.busy
    spent["other"] = max(0.0, total - sum(spent.values()))
    spent["total"] = total
    return {g: round(1000 * s / requests, 3) for g, s in spent.items()}


def server_shares(before: Snapshot, after: Snapshot) -> list[float]:
    """Each API server process's share of the servers' CPU between two snapshots, largest
    first (the gunicorn master's share is ~0)."""
    used = [after.servers[pid] - before.servers.get(pid, 0.0) for pid in after.servers]
    total = sum(used)
    return sorted((round(u / total, 3) for u in used), reverse=True) if total > 0 else []
