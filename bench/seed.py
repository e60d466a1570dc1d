"""Realistic benchmark data, bulk-inserted with SQLAlchemy Core (never through the API).

日照市 (3711) townships from the loaded division data; a duty officer on the roster in every
township and a supervisor in every county (so an urgent tap pages someone: case + 3 events + 2
SMS rows); residents with phones and access tokens; cases with 10-event timelines; and, for the
growth variant, a million historical cases (PostgreSQL COPY, SQLite executemany) and five
years of past duty shifts.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from flask import Flask
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.engine import Connection, Engine

import server.models  # noqa: F401  (every table on the metadata)
from server.accounts.models import Account
from server.accounts.tokens import issue_access_token
from server.cases.aid_types import APPLICATION_TYPES, URGENT_AID_TYPE
from server.cases.models import Case, CaseEvent
from server.db import Base, utcnow
from server.divisions.models import Division

CITY = "3711"
CHUNK = 5000
UTC = dt.UTC

# A case's life as a resident sees it: 10 timeline events (2 staff-only), ending paid.
TIMELINE = (
    ("submit", None, "queued", "已收到您的临时救助（支出型）申请。", True),
    ("route", None, "queued", "已转秦楼街道办理。", True),
    ("claim", "queued", "claimed", "工作人员已受理，正在核实。", True),
    ("note", "claimed", "claimed", "已电话联系申请人。", False),
    ("request_info", "claimed", "needs_info", "请补充近三个月医疗费用票据。", True),
    ("supply_info", "needs_info", "claimed", "您已补充材料。", True),
    ("visit", "claimed", "claimed", "工作人员已入户核实。", False),
    ("approve", "claimed", "approved", "您的申请已审批通过，救助金额 3000.00 元。", True),
    ("pay", "approved", "paid", "救助金 3000.00 元已发放。", True),
    ("paperwork", "paid", "paid", "请在 5 个工作日内补齐材料。", True),
)


def table(model: Any) -> Table:
    return model.__table__


def complete(tbl: Table, row: dict[str, Any]) -> dict[str, Any]:
    """Fill the Python-side defaults of columns a bulk row leaves out (COPY does not)."""
    for col in tbl.columns:
        if col.name in row or col.default is None:
            continue
        default = col.default
        if getattr(default, "is_scalar", False):
            row[col.name] = default.arg
        elif getattr(default, "is_callable", False):
            row[col.name] = default.arg(None)
    return row


def chunks(rows: Iterable[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class Resident:
    id: int
    phone: str
    token: str = ""
    session_id: uuid.UUID | None = None  # the signed-in session its token names


class Seeder:
    """Seeds one benchmark database; ``app`` supplies the engine's URL and the token key."""

    def __init__(self, app: Flask, engine: Engine) -> None:
        self.app = app
        self.engine = engine
        self.dialect = engine.dialect.name
        self.rng = random.Random(7)
        with engine.connect() as conn:
            self.townships: list[str] = list(
                conn.scalars(
                    select(Division.code)
                    .where(Division.level == "township", Division.code.startswith(CITY))
                    .order_by(Division.code)
                )
            )
            self.counties: list[str] = list(
                conn.scalars(
                    select(Division.code)
                    .where(Division.level == "county", Division.code.startswith(CITY))
                    .order_by(Division.code)
                )
            )
            self._phone_seq = int(
                conn.scalar(select(func.count()).select_from(table(Account))) or 0
            )
        if not self.townships:
            raise RuntimeError("no 日照市 townships: run `flask divisions load --prefix 3711`")
        self._case_seq = 0
        self._run_tag = secrets.token_hex(2)  # case numbers stay unique across seeders

    # --- accounts -------------------------------------------------------------------------

    def _phone(self) -> str:
        # Unique, but in no order (a bijection of 0..10^8-1): people's phones are not
        # numbered by sign-up, and a new case's entry in an index by phone must land where
        # a real one would, among the history's, not after it.
        self._phone_seq += 1
        return f"+86170{self._phone_seq * 48_271 % 10**8:08d}"

    def _insert_accounts(self, conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
        tbl = table(Account)
        ids: list[int] = []
        for batch in chunks(rows):
            result = conn.execute(
                insert(tbl).returning(tbl.c.id, sort_by_parameter_order=True), batch
            )
            ids.extend(r[0] for r in result)
        return ids

    def staff(self, now: dt.datetime | None = None) -> dict[str, list[int]]:
        """A rostered duty officer per township, a supervisor per county (idempotent)."""
        from server.roster.models import DutyShift

        now = now or utcnow()
        with self.engine.begin() as conn:
            if conn.scalar(select(func.count()).where(table(Account).c.role == "duty")):
                return {}
            duty = [
                {
                    "role": "duty",
                    "username": f"bench_duty_{code}",
                    "password_hash": "!",
                    "region_code": code,
                    "phone": self._phone(),
                    "name": f"值班员{code[-3:]}",
                }
                for code in self.townships
            ]
            sups = [
                {
                    "role": "supervisor",
                    "username": f"bench_sup_{code}",
                    "password_hash": "!",
                    "region_code": code,
                    "phone": self._phone(),
                    "name": f"督导{code[-2:]}",
                }
                for code in self.counties
            ]
            duty_ids = self._insert_accounts(conn, [complete(table(Account), r) for r in duty])
            sup_ids = self._insert_accounts(conn, [complete(table(Account), r) for r in sups])
            shifts = [
                complete(
                    table(DutyShift),
                    {
                        "account_id": i,
                        "starts_at": now - dt.timedelta(days=1),
                        "ends_at": now + dt.timedelta(days=2),
                    },
                )
                for i in duty_ids + sup_ids
            ]
            conn.execute(insert(table(DutyShift)), shifts)
        return {"duty": duty_ids, "supervisor": sup_ids}

    def duty_officers(self, township: str, n: int) -> list[Resident]:
        """``n`` duty officers of ``township`` (created as needed), with tokens."""
        tbl = table(Account)
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(tbl.c.id, tbl.c.phone)
                .where(tbl.c.role == "duty", tbl.c.region_code == township)
                .order_by(tbl.c.id)
            ).all()
            missing = n - len(rows)
            if missing > 0:
                new = [
                    complete(
                        tbl,
                        {
                            "role": "duty",
                            "username": f"bench_duty_{township}_{k}_{self._phone_seq}",
                            "password_hash": "!",
                            "region_code": township,
                            "phone": self._phone(),
                        },
                    )
                    for k in range(missing)
                ]
                self._insert_accounts(conn, new)
                rows = conn.execute(
                    select(tbl.c.id, tbl.c.phone)
                    .where(tbl.c.role == "duty", tbl.c.region_code == township)
                    .order_by(tbl.c.id)
                ).all()
        officers = [Resident(id=r[0], phone=r[1]) for r in rows[:n]]
        self.tokens(officers, role="duty", region=township)
        return officers

    def residents(self, n: int) -> list[Resident]:
        """``n`` new resident accounts (phone only, as after a first SMS sign-in), with tokens."""
        tbl = table(Account)
        now = utcnow()
        rows = []
        for _ in range(n):
            township = self.rng.choice(self.townships)
            rows.append(
                complete(
                    tbl,
                    {
                        "role": "resident",
                        "phone": self._phone(),
                        "residence_township_code": township,
                        "created_at": now,
                    },
                )
            )
        with self.engine.begin() as conn:
            ids = self._insert_accounts(conn, rows)
        people = [Resident(id=i, phone=r["phone"]) for i, r in zip(ids, rows, strict=True)]
        self.tokens(people, role="resident")
        return people

    def tokens(self, people: Sequence[Resident], *, role: str, region: str | None = None) -> None:
        """Access tokens signed with the server's key, exactly as sign-in issues them: each
        person gets a signed-in session (auth_sessions row) that the token names."""
        from server.accounts.models import AuthSession

        now = utcnow()
        sessions = [
            complete(
                table(AuthSession), {"id": uuid.uuid4(), "account_id": p.id, "created_at": now}
            )
            for p in people
        ]
        with self.engine.begin() as conn:
            for batch in chunks(sessions):
                conn.execute(insert(table(AuthSession)), batch)
        with self.app.app_context():
            for p, s in zip(people, sessions, strict=True):
                account = SimpleNamespace(id=p.id, role=role, region_code=region)
                p.token, _ = issue_access_token(account, session_id=s["id"])
                p.session_id = s["id"]

    # --- cases ----------------------------------------------------------------------------

    def _case_row(
        self,
        *,
        resident_id: int,
        township: str,
        status: str,
        urgent: bool,
        created_at: dt.datetime,
        tag: str,
    ) -> dict[str, Any]:
        self._case_seq += 1
        kind = "JJ" if urgent else "SQ"
        day = created_at.strftime("%Y%m%d")
        row = {
            "id": uuid.uuid4(),
            "case_no": f"{kind}{township}-{day}-{tag}{self._run_tag}{self._case_seq:07d}",
            "urgent": urgent,
            "aid_type": URGENT_AID_TYPE if urgent else self.rng.choice(APPLICATION_TYPES),
            "status": status,
            "channel": self.rng.choice(("app", "app", "miniprogram", "hotline")),
            "resident_id": resident_id,
            "created_by_id": resident_id,
            "subject_phone": None,
            "township_code": township,
            "county_code": township[:6],
            "accountable_township_code": township,
            "routing_evidence": "explicit",
            "routing_reason": "居民选择的乡镇（街道）。",
            "address": "日照市东港区泰安路88号",
            "description": "家中老人住院，医疗费用负担重。",
            "household_size": 3,
            "monthly_income_fen": 180000,
            "pay_due_at": created_at + dt.timedelta(hours=24) if urgent else None,
            "created_at": created_at,
            "updated_at": created_at,
            "version": 1,
        }
        # Every row has the same keys: executemany needs one shape.
        paid = status in ("paid", "closed")
        row["approved_amount_fen"] = row["paid_amount_fen"] = 300000 if paid else None
        row["paid_at"] = created_at + dt.timedelta(hours=20) if paid else None
        row["closed_at"] = (
            created_at + dt.timedelta(days=9)
            if status in ("closed", "rejected", "withdrawn")
            else None
        )
        return row

    def _events(self, case_id: uuid.UUID, start: dt.datetime, n: int = 10) -> list[dict[str, Any]]:
        out = []
        for k, (action, frm, to, text_zh, visible) in enumerate(TIMELINE[:n]):
            out.append(
                {
                    "case_id": case_id,
                    "at": start + dt.timedelta(hours=2 * k),
                    "actor_id": None,
                    "actor_role": "duty" if k >= 2 else None,
                    "action": action,
                    "from_status": frm,
                    "to_status": to,
                    "data": {"step": k},
                    "resident_visible": visible,
                    "text_zh": text_zh,
                }
            )
        return out

    def status_cases(self, people: Sequence[Resident]) -> list[str]:
        """One paid case with a 10-event timeline per resident; returns the case ids."""
        now = utcnow()
        cases, events = [], []
        for p in people:
            township = self.rng.choice(self.townships)
            created = now - dt.timedelta(days=self.rng.randint(1, 20))
            row = self._case_row(
                resident_id=p.id,
                township=township,
                status="paid",
                urgent=False,
                created_at=created,
                tag="S",
            )
            row["subject_phone"] = p.phone
            cases.append(complete(table(Case), row))
            events.extend(self._events(row["id"], created))
        with self.engine.begin() as conn:
            for batch in chunks(cases):
                conn.execute(insert(table(Case)), batch)
            for batch in chunks(events):
                conn.execute(insert(table(CaseEvent)), batch)
        return [str(c["id"]) for c in cases]

    def queue(
        self,
        township: str,
        n: int,
        people: Sequence[Resident],
        *,
        urgent_every: int = 4,
        age_minutes: tuple[int, int] = (1, 10),
    ) -> int:
        """``n`` queued cases in ``township`` (every ``urgent_every``-th urgent), each with 2
        events, submitted ``age_minutes`` ago: by default a flood that has just begun, so the
        SLA sweep has nothing overdue yet (it escalates urgent cases unclaimed for 15 min)."""
        now = utcnow()
        cases, events = [], []
        for k in range(n):
            urgent = k % urgent_every == 0
            created = now - dt.timedelta(
                seconds=self.rng.randint(60 * age_minutes[0], 60 * age_minutes[1])
            )
            p = people[k % len(people)]
            row = self._case_row(
                resident_id=p.id,
                township=township,
                status="queued",
                urgent=urgent,
                created_at=created,
                tag="Q",
            )
            row["subject_phone"] = p.phone
            cases.append(complete(table(Case), row))
            events.extend(self._events(row["id"], created, n=2))
        with self.engine.begin() as conn:
            for batch in chunks(cases):
                conn.execute(insert(table(Case)), batch)
            for batch in chunks(events):
                conn.execute(insert(table(CaseEvent)), batch)
        return n

    # --- growth: a million historical cases -----------------------------------------------

    def history(
        self,
        n_cases: int,
        *,
        events_per_case: int = 3,
        n_residents: int = 100_000,
        county: str | None = None,
        log: Any = print,
    ) -> dict[str, Any]:
        """Bulk-load ``n_cases`` closed historical cases over five years, across every
        township (or every township of ``county``), with ``events_per_case`` events each,
        owned by ``n_residents`` residents."""
        townships = [t for t in self.townships if not county or t.startswith(county)]
        if not townships:
            raise ValueError(f"no township of {county} in the bench's city")
        t0 = time.monotonic()
        owners = self._history_residents(n_residents)
        t_res = time.monotonic() - t0
        now = utcnow()
        span = 5 * 365 * 24 * 3600
        statuses = ("closed",) * 8 + ("rejected", "withdrawn")
        case_tbl, ev_tbl = table(Case), table(CaseEvent)

        def generate() -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
            rng = self.rng
            for _ in range(n_cases):
                created = now - dt.timedelta(seconds=rng.randint(86400 * 30, span))
                status = rng.choice(statuses)
                owner, phone, id_hash = rng.choice(owners)
                row = self._case_row(
                    resident_id=owner,
                    township=rng.choice(townships),
                    status=status,
                    urgent=rng.random() < 0.3,
                    created_at=created,
                    tag="H",
                )
                # The person in need, as intake records it (cross-channel duplicate checks,
                # staff search by phone): the history fills those indexes as years would.
                row["subject_phone"], row["subject_id_hash"] = phone, id_hash
                row["closed_at"] = created + dt.timedelta(days=rng.randint(1, 30))
                yield complete(case_tbl, row), self._events(row["id"], created, events_per_case)

        t1 = time.monotonic()
        if self.dialect == "postgresql":
            self._copy_history(generate(), case_tbl, ev_tbl, log=log)
        else:
            self._executemany_history(generate(), case_tbl, ev_tbl, log=log)
        shifts = self._history_shifts(now, days=5 * 365)
        t_load = time.monotonic() - t1
        t2 = time.monotonic()
        if self.dialect == "postgresql":
            # A database that has run for years is vacuumed: set the visibility map and the
            # statistics now, so autovacuum of the fresh rows does not run during the figures.
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM (ANALYZE) cases, case_events, accounts, duty_shifts"))
        else:
            with self.engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        return {
            "cases": n_cases,
            "county": county or "the whole city",
            "events": n_cases * events_per_case,
            "residents": n_residents,
            "past_duty_shifts": shifts,
            "seconds_residents": round(t_res, 1),
            "seconds_load": round(t_load, 1),
            "seconds_vacuum_analyze": round(time.monotonic() - t2, 1),
            "method": "COPY" if self.dialect == "postgresql" else "executemany",
        }

    def _history_shifts(self, now: dt.datetime, *, days: int) -> int:
        """A past shift a day for ``days`` days for everyone on today's roster: the years of
        shifts every urgent tap's roster look-up must not read."""
        from server.roster.models import DutyShift

        tbl = table(DutyShift)
        with self.engine.begin() as conn:
            rostered = list(conn.scalars(select(tbl.c.account_id).distinct()))
            rows = (
                complete(
                    tbl,
                    {
                        "account_id": account,
                        "starts_at": now - dt.timedelta(days=day + 1),
                        "ends_at": now - dt.timedelta(days=day),
                    },
                )
                for day in range(2, days + 2)
                for account in rostered
            )
            for batch in chunks(rows, 20_000):
                conn.execute(insert(tbl), batch)
        return len(rostered) * days

    def _history_residents(self, n: int) -> list[tuple[int, str, str]]:
        """``n`` residents who have had cases, with a verified ID number (its keyed hash):
        (id, phone, ID hash) each."""
        tbl = table(Account)
        now = utcnow()
        rows = [
            complete(
                tbl,
                {
                    "role": "resident",
                    "phone": self._phone(),
                    "id_number_hash": self.rng.randbytes(32).hex(),
                    "residence_township_code": self.rng.choice(self.townships),
                    "created_at": now,
                },
            )
            for _ in range(n)
        ]
        ids: list[int] = []
        with self.engine.begin() as conn:
            for batch in chunks(rows, 20_000):
                ids.extend(self._insert_accounts(conn, batch))
        return [(i, r["phone"], r["id_number_hash"]) for i, r in zip(ids, rows, strict=True)]

    def _copy_history(self, rows: Iterator, case_tbl: Table, ev_tbl: Table, *, log: Any) -> None:
        case_cols = [c.name for c in case_tbl.columns]
        ev_cols = [c.name for c in ev_tbl.columns if c.name != "id"]
        json_cols = {c.name for c in ev_tbl.columns if c.type.__class__.__name__ == "JSON"}
        json_cols |= {c.name for c in case_tbl.columns if c.type.__class__.__name__ == "JSON"}
        raw = self.engine.raw_connection()
        try:
            dbapi = raw.driver_connection
            with dbapi.cursor() as cur:
                # Events go to a second COPY after the cases (FK), buffered per 100k cases.
                pending: list[dict[str, Any]] = []
                done = 0
                for batch in _batched(rows, 100_000):
                    with cur.copy(f"COPY cases ({', '.join(case_cols)}) FROM STDIN") as copy:
                        for case, events in batch:
                            copy.write_row([_pg(case.get(c), c in json_cols) for c in case_cols])
                            pending.extend(events)
                    with cur.copy(f"COPY case_events ({', '.join(ev_cols)}) FROM STDIN") as copy:
                        for ev in pending:
                            copy.write_row([_pg(ev.get(c), c in json_cols) for c in ev_cols])
                    pending.clear()
                    done += len(batch)
                    log(f"    loaded {done:,} historical cases")
            dbapi.commit()
        finally:
            raw.close()

    def _executemany_history(
        self, rows: Iterator, case_tbl: Table, ev_tbl: Table, *, log: Any
    ) -> None:
        done = 0
        with self.engine.begin() as conn:
            for batch in _batched(rows, 50_000):
                conn.execute(insert(case_tbl), [c for c, _ in batch])
                conn.execute(insert(ev_tbl), [e for _, evs in batch for e in evs])
                done += len(batch)
                if done % 200_000 == 0:
                    log(f"    loaded {done:,} historical cases")

    def count_cases(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(table(Case))) or 0)


def _batched(it: Iterator, n: int) -> Iterator[list]:
    batch = []
    for item in it:
        batch.append(item)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def _pg(value: Any, is_json: bool) -> Any:
    if is_json and value is not None:
        return json.dumps(value, ensure_ascii=False)
    return value


def all_tables() -> list[str]:
    return [t.name for t in Base.metadata.sorted_tables]
