"""wrk, the load generator: install it, run it with a Lua script, parse what it prints.

wrk is C with LuaJIT, so the load it adds to the two shared cores is small and constant; the
Python harness only starts it and reads its summary. Every script loads ``lua/common.lua``,
whose ``done()`` prints one ``BENCH_JSON {...}`` line with exact percentiles and the status
codes seen; the plain text summary is parsed as a fallback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cpu

LUA_DIR = Path(__file__).resolve().parent / "lua"

_UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0, "m": 60_000_000.0, "h": 3_600_000_000.0}


def ensure_wrk() -> str:
    """The path of wrk, installed from Debian's packages when missing (we are root here)."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = ["apt-get", "install", "-y", "-q", "wrk"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(apt, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        subprocess.run(apt, env=env, capture_output=True, check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


@dataclass
class WrkResult:
    """One wrk run: completed requests over the measured window, latency in microseconds."""

    requests: int
    duration_s: float
    p50_us: float
    p90_us: float
    p99_us: float
    max_us: float = 0.0
    mean_us: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)
    exhausted: int = 0
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per request, bench/cpu.py
    server_shares: list[float] = field(default_factory=list)  # of the API processes' CPU

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_us / 1000, 2),
            "p90_ms": round(self.p90_us / 1000, 2),
            "p99_ms": round(self.p99_us / 1000, 2),
            "max_ms": round(self.max_us / 1000, 2),
            "mean_ms": round(self.mean_us / 1000, 2),
            "errors": self.errors,
            "codes": self.codes,
            "exhausted": self.exhausted,
            "cpu_ms_per_request": self.cpu_ms,
            "server_process_shares": self.server_shares,
        }


def to_us(text: str) -> float:
    """``"1.23ms"`` -> 1230.0 (wrk's duration notation)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(us|ms|s|m|h)\s*", text)
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS_US[m.group(2)]


def parse_output(stdout: str) -> WrkResult:
    """Parse wrk's output: the ``BENCH_JSON`` line when present, else the text summary."""
    for line in stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line.removeprefix("BENCH_JSON "))
            lat = data["latency_us"]
            return WrkResult(
                requests=int(data["requests"]),
                duration_s=data["duration_us"] / 1_000_000,
                p50_us=float(lat["p50"]),
                p90_us=float(lat["p90"]),
                p99_us=float(lat["p99"]),
                max_us=float(lat["max"]),
                mean_us=float(lat["mean"]),
                errors={k: int(v) for k, v in data["errors"].items() if v},
                codes={str(k): int(v) for k, v in data.get("codes", {}).items()},
                exhausted=int(data.get("exhausted", 0)),
            )
    return _parse_text(stdout)


def _parse_text(stdout: str) -> WrkResult:
    m = re.search(r"(\d+) requests in ([0-9.]+\w+)", stdout)
    if not m:
        raise ValueError("wrk output has no summary line")
    pct = dict(re.findall(r"^\s*(50|90|99)%\s+([0-9.]+\w+)\s*$", stdout, re.MULTILINE))
    if not {"50", "99"} <= pct.keys():
        raise ValueError("wrk output has no latency distribution (run with --latency)")
    errors: dict[str, int] = {}
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", stdout
    )
    if sock:
        for name, value in zip(("connect", "read", "write", "timeout"), sock.groups(), strict=True):
            if int(value):
                errors[name] = int(value)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", stdout)
    if non2xx:
        errors["status"] = int(non2xx.group(1))
    lat = re.search(r"Latency\s+([0-9.]+\w+)\s+([0-9.]+\w+)\s+([0-9.]+\w+)", stdout)
    return WrkResult(
        requests=int(m.group(1)),
        duration_s=to_us(m.group(2)) / 1_000_000,
        p50_us=to_us(pct["50"]),
        p90_us=to_us(pct.get("90", pct["99"])),
        p99_us=to_us(pct["99"]),
        max_us=to_us(lat.group(3)) if lat else 0.0,
        mean_us=to_us(lat.group(1)) if lat else 0.0,
        errors=errors,
    )


def run(
    url: str,
    script: str,
    *,
    connections: int,
    duration_s: int,
    threads: int = 2,
    env: dict[str, str] | None = None,
    timeout_s: int = 10,
) -> WrkResult:
    """Run ``wrk`` against ``url`` (127.0.0.1 only) with ``lua/<script>.lua``."""
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError("benchmarks only ever load 127.0.0.1")
    threads = max(1, min(threads, connections))
    cmd = [
        ensure_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        f"--timeout={timeout_s}s",
        "--latency",
        "-s",
        str(LUA_DIR / f"{script}.lua"),
        url,
    ]
    full_env = {
        **os.environ,
        "BENCH_LUA_DIR": str(LUA_DIR),
        "BENCH_THREADS": str(threads),
        **(env or {}),
    }
    before = cpu.snapshot()
    proc = subprocess.run(
        cmd, env=full_env, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    after = cpu.snapshot()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
    result = parse_output(proc.stdout)
    result.cpu_ms = cpu.per_request(before, after, result.requests)
    result.server_shares = cpu.server_shares(before, after)
    return result
