"""One ID number, one account: the migration that makes it a rule stops on data that breaks
it (a staff decision, not the migration's), and two claims at once end with one holder."""

from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import select, text

from server.accounts.models import Account
from server.db import UTCDateTime, make_engine, utcnow
from server.migrate import alembic_config
from server.session import database
from tests import factories
from tests.conftest import SENSITIVE

ID = "371102199001011232"
SENSITIVE.add(ID)


@pytest.fixture
def scratch(database_url, tmp_path):
    """A connection to an empty database of the suite's kind (a scratch PG schema)."""
    schema = None
    url = database_url
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'bind.db'}"
    else:
        schema = f"mig_{uuid.uuid4().hex[:8]}"
    engine = make_engine(url)
    conn = engine.connect()
    if schema:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(text(f'SET search_path TO "{schema}"'))
        conn.commit()
    yield url, conn
    conn.rollback()
    if schema:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        conn.commit()
    conn.close()
    engine.dispose()


def test_the_migration_stops_on_an_id_number_bound_twice_and_names_the_accounts(scratch):
    url, conn = scratch
    cfg = alembic_config(url, connection=conn)
    command.upgrade(cfg, "0009")
    # The accounts table as of 0009 (the model has columns of later revisions).
    accounts_0009 = sa.table(
        "accounts",
        sa.column("role"),
        sa.column("phone"),
        sa.column("id_number_hash"),
        sa.column("created_at", UTCDateTime),
    )
    conn.execute(
        accounts_0009.insert(),
        [
            {"role": "resident", "phone": phone, "id_number_hash": "a" * 64, "created_at": utcnow()}
            for phone in ("+8613812345601", "+8613812345602")
        ],
    )
    conn.commit()
    with pytest.raises(RuntimeError, match="unbind-id-number") as raised:
        command.upgrade(cfg, "head")
    conn.rollback()
    ids = conn.execute(text("SELECT id FROM accounts ORDER BY id")).scalars().all()
    assert str(ids) in str(raised.value)
    conn.execute(text("UPDATE accounts SET id_number_hash = NULL WHERE id = :id"), {"id": ids[1]})
    conn.commit()
    command.upgrade(cfg, "head")
    conn.commit()
    with pytest.raises(Exception, match="(?i)unique"):
        conn.execute(
            text("UPDATE accounts SET id_number_hash = :h WHERE id = :id"),
            {"h": "a" * 64, "id": ids[1]},
        )
    conn.rollback()


def _claim(app, barrier, headers, codes, i):
    client = app.test_client()
    barrier.wait()
    resp = client.patch("/api/v1/me", json={"id_number": ID}, headers=headers)
    codes[i] = (resp.status_code, resp.get_json().get("code"))


def test_two_accounts_claiming_one_id_number_at_once_end_with_one_holder(committed_app):
    app = committed_app
    for r in range(6):
        accounts = [Account(role="resident", phone=f"+86137300{r:03d}{i:02d}") for i in range(2)]
        with database(app).new_session() as s, s.begin():
            s.add_all(accounts)
        headers = [factories.auth(app, a) for a in accounts]
        barrier = threading.Barrier(2)
        codes: list = [None, None]
        threads = [
            threading.Thread(target=_claim, args=(app, barrier, headers[i], codes, i))
            for i in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(codes) == [(200, None), (409, "id_number_taken")], codes
        with database(app).new_session() as s, s.begin():
            holders = s.scalars(select(Account).where(Account.id_number_hash.is_not(None))).all()
            assert len(holders) == 1
            holders[0].id_number_hash = holders[0].id_number_enc = (
                None  # free it for the next round
            )
            holders[0].id_number_masked = None
