"""Load the shipped division data into the database, idempotently."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from server.db import is_postgresql
from server.divisions.models import Division, ancestor_codes

DATA = Path(__file__).resolve().parent / "data"
CHUNK = 2000


def _rows(path: Path) -> Iterator[dict[str, str | None]]:
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            yield {
                "code": row["code"],
                "name": row["name"],
                "level": row["level"],
                "parent_code": row["parent_code"] or None,
            }


def data_files(prefix: str | None = None) -> list[Path]:
    """The national file plus the village files that matter for ``prefix``."""
    files = [DATA / "divisions.csv"]
    for path in sorted(DATA.glob("villages_*.csv")):
        vprefix = path.stem.removeprefix("villages_")
        if prefix is None or vprefix.startswith(prefix) or prefix.startswith(vprefix):
            files.append(path)
    return files


def load_divisions(session: Session, *, prefix: str | None = None) -> dict[str, int]:
    """Upsert divisions (all, or only those under ``prefix`` and their ancestors).

    Rows already stored as they are in the files are skipped, so a second load writes
    nothing. Returns the number of rows per level now in the database for that selection.
    """
    if prefix is not None and not prefix.isdigit():
        raise ValueError("prefix must be digits, e.g. 3711")
    keep_ancestors = set(ancestor_codes(prefix)) if prefix else set()
    insert = postgresql.insert if is_postgresql(session) else sqlite.insert
    stored = {
        code: (name, level, parent)
        for code, name, level, parent in session.execute(
            select(Division.code, Division.name, Division.level, Division.parent_code)
        )
    }
    batch: list[dict[str, str | None]] = []

    def flush() -> None:
        if not batch:
            return
        stmt = insert(Division).values(batch)
        stmt = stmt.on_conflict_do_update(
            index_elements=["code"],
            set_={
                "name": stmt.excluded.name,
                "level": stmt.excluded.level,
                "parent_code": stmt.excluded.parent_code,
            },
        )
        session.execute(stmt)
        batch.clear()

    # Files are sorted by code, so a parent is always inserted before its children.
    for path in data_files(prefix):
        for row in _rows(path):
            code = row["code"] or ""
            if prefix and not (code.startswith(prefix) or code in keep_ancestors):
                continue
            if stored.get(code) == (row["name"], row["level"], row["parent_code"]):
                continue
            batch.append(row)
            if len(batch) >= CHUNK:
                flush()
    flush()
    session.flush()
    query = select(Division.level, func.count()).group_by(Division.level)
    if prefix:
        query = query.where(Division.code.startswith(prefix))
    return dict(session.execute(query).all())
