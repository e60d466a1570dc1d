"""bench/results/latest.json and latest.md from one run's measurements."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.core import Measurement, Target
from bench.paths import SECTIONS

DECISIONS = "decisions.md"


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def verdict(ok: bool | None) -> str:
    return {True: "pass", False: "FAIL", None: "–"}[ok]


def one_line(m: Measurement) -> str:
    return (
        f"{m.path:<7} {m.db:<10} {m.phase:<6} c={m.concurrency:<3} "
        f"{m.rate:8.1f} {m.unit:<9} p50={_num(m.p50_ms)}ms p99={_num(m.p99_ms)}ms "
        f"ratio={_num(m.ratio, '{:.2f}')} {verdict(m.ok)}"
        + "".join(
            f"\n        {'ok ' if t.ok else ('-- ' if t.ok is None else 'XX ')}{t.text}"
            for t in m.targets
        )
    )


def table(results: list[Measurement], meta: dict[str, Any]) -> str:
    cores = meta.get("machine", {}).get("cores", "?")
    lines = [
        "| path | DB | phase | concurrency | rate | p50 ms | p99 ms | ratio to floor "
        "| target | pass/fail | cores |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for m in results:
        if "skipped" in m.details:
            lines.append(
                f"| {m.label} | {m.db} | {m.phase} | – | – | – | – | – "
                f"| {m.details['skipped']} | {verdict(m.ok)} | {cores} |"
            )
            continue
        targets = "; ".join(
            f"{t.text} {'✓' if t.ok else ('n/a' if t.ok is None else '✗')}" for t in m.targets
        )
        lines.append(
            f"| {m.label} | {m.db} | {m.phase} | {m.concurrency} | {m.rate:.1f} {m.unit} "
            f"| {_num(m.p50_ms)} | {_num(m.p99_ms)} | {_num(m.ratio, '{:.2f}')} "
            f"| {targets or 'reference'} | {verdict(m.ok)} | {cores} |"
        )
    return "\n".join(lines) + "\n"


def markdown(meta: dict[str, Any], results: list[Measurement], explains: list[dict]) -> str:
    mach = meta["machine"]
    servers = [
        f"- server on {kind}: gunicorn on {srv['bind']} (`{srv['config']}`), {srv['workers']} "
        f"`{srv['worker_class']}` workers × {srv['threads']} thread{'s' * (srv['threads'] != 1)}"
        for kind, info in meta.get("databases", {}).items()
        if (srv := info.get("server"))
    ]
    out = [
        "# Aidline benchmark: latest run",
        "",
        f"- started {meta['started_at']}, commit `{meta['commit']}`, "
        f"{meta['elapsed_s']} s in all, {meta['duration_s_per_path']} s per wrk run",
        f"- machine: {mach['cores']} cores ({mach['cpu']}), Python {mach['python']}; "
        f"load average at start {mach['loadavg_start'][0]:.2f}, at end "
        f"{mach['loadavg_end'][0]:.2f} (other work shares these cores: read ratios)",
        *servers,
        f"- floor concurrency {meta['floor_concurrency']} connections; status and urgent run "
        "at half of it; load generator wrk (C + LuaJIT, 2 threads)",
        "",
        table(results, meta),
        "How to read this: bench/README.md. What was tried, what stayed and why: "
        f"[{DECISIONS}]({DECISIONS}).",
        "",
        "## Details",
        "",
    ]
    for m in results:
        d = {k: v for k, v in m.details.items() if k != "wrk"}
        w = m.details.get("wrk")
        if w:
            d["requests"] = w["requests"]
            d["status_codes"] = w["codes"]
            if w["errors"]:
                d["socket_errors"] = w["errors"]
            d["p90_ms"], d["max_ms"] = w["p90_ms"], w["max_ms"]
        out.append(f"- **{m.label}** ({m.db}, {m.phase}): `{json.dumps(d, ensure_ascii=False)}`")
    for kind, info in meta.get("databases", {}).items():
        out.append(f"- setup on {kind}: `{json.dumps(info, ensure_ascii=False)}`")
    out += ["", "## EXPLAIN of the hot queries", ""]
    for e in explains:
        scans = ", ".join(e["full_scans"]) or "none"
        out.append(
            f"### {e['request']} ({e['database']}, {e['phase']}) — HTTP {e['status']}, "
            f"full scans of big tables: {scans}"
        )
        out.append("")
        for q in e["queries"]:
            out.append("```sql")
            out.append(q["sql"])
            out.append("```")
            out.append("```")
            out.append(q["plan"])
            out.append("```")
        out.append("")
    return "\n".join(out)


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- section:{name} -->", f"<!-- /section:{name} -->"


def _backlog_table(samples: list[dict[str, Any]], every_s: float = 30.0) -> list[str]:
    lines = [
        "| t (s) | urgent waiting | oldest urgent (s) | others waiting | oldest other (s) |",
        "|---:|---:|---:|---:|---:|",
    ]
    next_t = 0.0
    for i, b in enumerate(samples):
        if "error" in b or (b["t_s"] < next_t and i != len(samples) - 1):
            continue
        next_t = b["t_s"] + every_s
        lines.append(
            f"| {b['t_s']:.0f} | {b['urgent']} | {b.get('oldest_urgent_s', '–')} "
            f"| {b['other']} | {b.get('oldest_other_s', '–')} |"
        )
    return lines


def section_markdown(name: str, runs: dict[str, dict[str, Any]], results: list[Measurement]) -> str:
    """The results' own section (e.g. the surge), between markers ``--only`` replaces; ``runs``
    is the run's meta per database (each database may come from another run)."""
    begin, end = _markers(name)
    out = [begin, f"## {name.capitalize()}", ""]
    for db, meta in runs.items():
        mach = meta["machine"]
        out.append(
            f"- {db}: started {meta['started_at']}, commit `{meta['commit']}`, "
            f"{meta['elapsed_s']} s in all; machine: {mach['cores']} cores, load average at "
            f"start {mach['loadavg_start'][0]:.2f}, at end {mach['loadavg_end'][0]:.2f} "
            "(shared: other engineers' work runs on these cores)"
        )
    out += ["", table(results, next(iter(runs.values()), {})).rstrip("\n"), ""]
    for m in results:
        d = {k: v for k, v in m.details.items() if k != "backlog"}
        out.append(f"- **{m.label}** ({m.db}): `{json.dumps(d, ensure_ascii=False)}`")
        if m.details.get("backlog"):
            out += ["", f"Backlog over time ({m.db}), every 30 s:", ""]
            out += _backlog_table(m.details["backlog"])
            out.append("")
    out.append(end)
    return "\n".join(out) + "\n"


def _from_dict(d: dict[str, Any]) -> Measurement:
    return Measurement(
        path=d["path"],
        label=d["label"],
        db=d["db"],
        phase=d["phase"],
        concurrency=d["concurrency"],
        rate=d["rate"],
        unit=d["unit"],
        p50_ms=d["p50_ms"],
        p99_ms=d["p99_ms"],
        ratio=d["ratio_to_floor"],
        targets=[Target(t["target"], t["ok"]) for t in d["targets"]],
        details=d["details"],
    )


def _section(
    name: str, meta: dict[str, Any], new: list[Measurement], old: dict[str, Any] | None
) -> tuple[dict[str, Any], str]:
    """The section's JSON and Markdown: this run's databases, and the others' last run."""
    dbs = {m.db for m in new}
    runs = {db: meta for db in sorted(dbs)}
    results = list(new)
    if old and "runs" not in old and "meta" in old:  # written before sections kept per database
        old = {"runs": {r["db"]: old["meta"] for r in old["results"]}, "results": old["results"]}
    if old:
        for db, run_meta in old["runs"].items():
            if db not in dbs:
                runs[db] = run_meta
                results += [_from_dict(r) for r in old["results"] if r["db"] == db]
    order = {db: k for k, db in enumerate(("sqlite", "postgresql"))}
    results.sort(key=lambda m: order.get(m.db, 9))
    runs = dict(sorted(runs.items(), key=lambda kv: order.get(kv[0], 9)))
    payload = {"runs": runs, "results": [m.as_dict() for m in results]}
    return payload, section_markdown(name, runs, results)


def _old_block(md: str, name: str) -> str | None:
    begin, end = _markers(name)
    if begin in md and end in md:
        return md[md.index(begin) : md.index(end) + len(end)] + "\n"
    return None


def write(
    out_dir: Path, meta: dict[str, Any], results: list[Measurement], explains: list[dict]
) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "latest.json", out_dir / "latest.md"
    old_json = json.loads(json_path.read_text()) if json_path.exists() else {}
    old_md = md_path.read_text() if md_path.exists() else ""
    main = [m for m in results if m.path not in SECTIONS]
    payload: dict[str, Any] = {
        "meta": meta,
        "results": [m.as_dict() for m in main],
        "explain": explains,
    }
    blocks = []
    for name in SECTIONS:
        own = [m for m in results if m.path == name]
        if own:
            payload[name], block = _section(name, meta, own, old_json.get(name))
            blocks.append(block)
        elif name in old_json and (block := _old_block(old_md, name)):
            # Not run this time: the section of its last run stays as it was.
            payload[name] = old_json[name]
            blocks.append(block)
    json_path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    md_path.write_text(markdown(meta, main, explains) + "".join("\n" + b for b in blocks))
    return json_path, md_path


def write_sections(
    out_dir: Path, meta: dict[str, Any], results: list[Measurement]
) -> tuple[Path, Path]:
    """Replace only the sections of ``results``' paths in latest.{json,md} (``--only``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "latest.json", out_dir / "latest.md"
    payload = json.loads(json_path.read_text()) if json_path.exists() else {}
    md = md_path.read_text() if md_path.exists() else ""
    for name in SECTIONS:
        own = [m for m in results if m.path == name]
        if not own:
            continue
        payload[name], block = _section(name, meta, own, payload.get(name))
        old = _old_block(md, name)
        md = md.replace(old, block) if old else md.rstrip("\n") + "\n\n" + block
    json_path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    md_path.write_text(md)
    return json_path, md_path
