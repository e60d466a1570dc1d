"""Time and peak memory of a month's ledger (台账) export: ``python -m bench.ledger``.

Seeds ``--cases`` cases submitted in one month in 东港区 (371102), a third paid with their
paperwork done, into a fresh database (a SQLite file in a temporary directory, or
``--database-url``, which is dropped and migrated), then exports each format in a fresh
process and prints its wall time and peak RSS (``ru_maxrss``), and the size of the file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COUNTY = "371102"
MONTH = dt.date(2026, 10, 1)


def _app(url: str):
    from server.app import create_app

    return create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-ledger-" + "x" * 40})


def seed(url: str, n: int) -> None:
    """A fresh schema with the divisions, 2,000 residents, a duty officer per township and
    ``n`` cases of the month."""
    from alembic import command
    from sqlalchemy import insert, select

    import server.models  # noqa: F401
    from server.accounts.models import Account
    from server.cases.clocks import SHANGHAI
    from server.cases.models import Case
    from server.divisions.load import load_divisions
    from server.divisions.models import Division
    from server.migrate import alembic_config
    from server.session import database

    app = _app(url)
    engine = database(app).engine
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    with engine.connect() as conn:
        command.upgrade(alembic_config(url, connection=conn), "head")
        conn.commit()
    rng = random.Random(11)
    with app.app_context(), database(app).new_session() as s, s.begin():
        load_divisions(s, prefix="3711")
        s.flush()
        townships = list(
            s.scalars(
                select(Division.code).where(
                    Division.level == "township", Division.parent_code == COUNTY
                )
            )
        )
        conn = s.connection()
        officers = {
            t: conn.execute(
                insert(Account).returning(Account.id),
                {"role": "duty", "username": f"duty{t}", "region_code": t, "name": f"值班{t[-3:]}"},
            ).scalar_one()
            for t in townships
        }
        residents = [
            conn.execute(
                insert(Account).returning(Account.id),
                {
                    "role": "resident",
                    "phone": f"+86170{i:08d}",
                    "id_number_masked": f"371102********{i % 10000:04d}",
                },
            ).scalar_one()
            for i in range(2000)
        ]
        start = dt.datetime.combine(MONTH, dt.time(), tzinfo=SHANGHAI)
        seconds = 30 * 86400
        batch: list[dict] = []
        for i in range(n):
            town = rng.choice(townships)
            created = start + dt.timedelta(seconds=rng.randrange(seconds))
            paid = i % 3 == 0
            case_id = uuid.uuid4()
            batch.append(
                {
                    "id": case_id,
                    "case_no": f"JJ{town}-{created:%Y%m%d}-{i:07d}",
                    "urgent": i % 2 == 0,
                    "aid_type": "temporary_emergency",
                    "status": "closed" if paid else "queued",
                    "channel": "app",
                    "resident_id": rng.choice(residents),
                    "subject_phone": None,
                    "township_code": town,
                    "county_code": COUNTY,
                    "accountable_township_code": town,
                    "address": "日照市东港区日照街道日升社区",
                    "claimed_by_id": officers[town] if paid else None,
                    "claimed_at": created + dt.timedelta(minutes=20) if paid else None,
                    "paid_amount_fen": 150_000 if paid else None,
                    "pay_method": "bank_transfer" if paid else None,
                    "paid_at": created + dt.timedelta(hours=5) if paid else None,
                    "paperwork_due_at": created + dt.timedelta(days=7) if paid else None,
                    "paperwork_done_at": created + dt.timedelta(days=2) if paid else None,
                    "closed_at": created + dt.timedelta(days=6) if paid else None,
                    "created_at": created,
                    "updated_at": created,
                    "version": 1,
                }
            )
            if len(batch) >= 5000:
                conn.execute(insert(Case), batch)
                batch = []
        if batch:
            conn.execute(insert(Case), batch)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    engine.dispose()


def export(url: str, fmt: str) -> None:
    """One export as an administrator would run it; prints seconds, peak RSS, rows, bytes."""
    from types import SimpleNamespace

    from server.reports import ledger
    from server.session import database

    app = _app(url)
    admin = SimpleNamespace(id=None, role="admin", region_code="3711", is_staff=True)
    with app.test_request_context(), database(app).new_session() as s:
        began = time.perf_counter()
        out, _, _ = ledger.export_ledger(s, actor=admin, county_code=COUNTY, month=MONTH, fmt=fmt)
        size = out.seek(0, 2)
        seconds = time.perf_counter() - began
        s.rollback()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{fmt}: {seconds:.1f} s, peak RSS {peak_mb:.0f} MB, {size / 1e6:.1f} MB file")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--database-url")
    parser.add_argument("--export", choices=("xlsx", "csv"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export:
        export(args.database_url, args.export)
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/ledger.db"
        began = time.perf_counter()
        seed(url, args.cases)
        print(
            f"seeded {args.cases} cases in {time.perf_counter() - began:.0f} s",
            f"({url.split('@')[-1]})",
        )
        for fmt in ("xlsx", "csv"):
            subprocess.run(
                [sys.executable, "-m", "bench.ledger", "--database-url", url, "--export", fmt],
                cwd=ROOT,
                check=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )


if __name__ == "__main__":
    main()
