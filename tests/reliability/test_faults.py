"""Faults with real commits and real processes: the database going away mid-request, a gunicorn
worker SIGKILLed mid-request, Twilio unreachable for a while under a running worker process.

What must hold: the request fails cleanly (503 in the uniform shape, or a dropped connection),
nothing is half-written (no case without its events, its idempotency key or its SMS), the
service recovers without a restart, and every SMS waits and then goes out exactly once.

The process-level tests need PostgreSQL (a TCP proxy we control stands between the app and the
database, or a table lock holds a request mid-transaction); on SQLite the same mid-request
failure is injected as the OperationalError SQLite raises (disk I/O error).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url

import notifications
from notifications.models import SmsOutbox
from server.accounts.models import Account
from server.app import create_app
from server.cases.models import Case, CaseEvent, IdempotencyKey
from server.session import database
from tests import factories as f
from tests.conftest import _truncate
from tests.fake_twilio import twilio_config
from tests.reliability import support as r

ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-secret-key-with-enough-length-for-hs256"


def _needs_postgres(engine: Any) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("process-level fault: PostgreSQL pass only (the SQLite variant runs here)")


# --- a TCP proxy we can cut ---------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; ``cut()`` drops every connection and refuses new
    ones until ``resume()`` — the database (or Twilio) going away and coming back."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.down = False
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.down = True
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def resume(self) -> None:
        self.down = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._server.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- helpers ------------------------------------------------------------------------------


def _resident(app: Any, phone: str) -> tuple[int, dict[str, str]]:
    with database(app).new_session() as s, s.begin():
        account = Account(role="resident", phone=phone)
        s.add(account)
    return account.id, f.auth(app, account)


def _count(engine: Any, model: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _no_half_written_cases(engine: Any) -> None:
    """Every case has its timeline, and every idempotency key points at a case that exists."""
    with engine.connect() as conn:
        has_event = select(CaseEvent.case_id).where(CaseEvent.case_id == Case.id).exists()
        orphans = conn.scalar(select(func.count()).select_from(Case).where(~has_event))
        assert orphans == 0, "a case without timeline events"


@pytest.fixture
def proxied_app(database_url: str, engine: Any) -> Iterator[tuple[Any, TcpProxy | None]]:
    """A committing app; on PostgreSQL its connections go through a TcpProxy."""
    proxy = None
    url = database_url
    if engine.dialect.name == "postgresql":
        parsed = make_url(database_url)
        proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
        url = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    app = create_app(
        {"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": SECRET, "RATELIMIT_ENABLED": False}
    )
    yield app, proxy
    database(app).engine.dispose()
    if proxy:
        proxy.close()
    _truncate(engine)


# --- the database goes away ---------------------------------------------------------------


def test_database_lost_mid_request_is_503_nothing_written_then_recovers(proxied_app, engine):
    """The connection dies when a one-tap request writes its SMS: on SQLite after its case
    INSERT; on PostgreSQL in the one statement that writes the case, its events and SMS."""
    app, proxy = proxied_app
    client = app.test_client()
    _, ok_auth = _resident(app, "+8613711110001")
    victim_id, victim_auth = _resident(app, "+8613711110002")
    body = {"township_code": r.TOWNSHIP, "address": "泰安路88号"}

    assert client.post("/api/v1/urgent-requests", json=body, headers=ok_auth).status_code == 201

    fired = []

    # ``do_execute`` runs where the driver would: what it raises is wrapped like a real
    # driver error (sqlalchemy.exc.OperationalError), which is what an outage looks like.
    def fault(cursor, statement, parameters, context):
        if "INSERT INTO SMS_OUTBOX" in statement.upper() and not fired:
            fired.append(statement)
            if proxy is not None:
                proxy.cut()  # PostgreSQL: the server is gone, for real, mid-transaction
            else:
                raise sqlite3.OperationalError("disk I/O error")

    db_engine = database(app).engine
    event.listen(db_engine, "do_execute", fault)
    try:
        headers = {**victim_auth, "Idempotency-Key": "tap-during-outage"}
        resp = client.post("/api/v1/urgent-requests", json=body, headers=headers)
    finally:
        event.remove(db_engine, "do_execute", fault)
    assert fired, "the fault was not injected"
    assert resp.status_code == 503, resp.get_data(as_text=True)
    assert r.assert_error_shape(resp)["code"] == "database_unavailable"
    assert resp.headers["Retry-After"]

    if proxy is not None:
        # Still down: a new request cannot even connect — 503, not a hang or a 500.
        down = client.post("/api/v1/urgent-requests", json=body, headers=headers)
        assert down.status_code == 503, down.get_data(as_text=True)
        proxy.resume()

    # Nothing of the failed request exists: no case, no key, no SMS.
    assert _count(engine, Case, Case.resident_id == victim_id) == 0
    assert _count(engine, IdempotencyKey, IdempotencyKey.key == "tap-during-outage") == 0
    assert _count(engine, SmsOutbox, SmsOutbox.to_phone == "+8613711110002") == 0

    # The same process serves again (stale pooled connections are replaced), and the client's
    # retry with the same key makes exactly one case.
    retry = client.post("/api/v1/urgent-requests", json=body, headers=headers)
    assert retry.status_code == 201, retry.get_data(as_text=True)
    again = client.post("/api/v1/urgent-requests", json=body, headers=headers)
    assert again.status_code == 200 and again.get_json()["id"] == retry.get_json()["id"]
    assert _count(engine, Case, Case.resident_id == victim_id) == 1
    assert _count(engine, SmsOutbox, SmsOutbox.to_phone == "+8613711110002") == 1
    _no_half_written_cases(engine)
    r.STATS["faults"] += 1


def test_database_down_for_a_while_reads_and_writes_503_then_recover(proxied_app, engine):
    """A longer outage: every request answers 503 quickly; the first after it succeeds."""
    app, proxy = proxied_app
    _needs_postgres(engine)
    client = app.test_client()
    _, auth = _resident(app, "+8613711110003")
    assert client.get("/api/v1/cases", headers=auth).status_code == 200
    proxy.cut()
    started = time.monotonic()
    for _ in range(3):
        for resp in (
            client.get("/api/v1/cases", headers=auth),
            client.post("/api/v1/urgent-requests", json={}, headers=auth),
            client.get("/readyz"),
        ):
            assert resp.status_code == 503, resp.get_data(as_text=True)
            assert "code" in resp.get_json()
    assert time.monotonic() - started < 20, "an outage must fail fast, not hang"
    proxy.resume()
    assert client.get("/readyz").status_code == 200
    assert client.post("/api/v1/urgent-requests", json={}, headers=auth).status_code == 201
    _no_half_written_cases(engine)
    r.STATS["faults"] += 1


# --- a gunicorn worker killed mid-request -------------------------------------------------


def _wait_http(port: int, path: str = "/healthz", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    raise AssertionError(f"gunicorn did not answer on {port}")


def _worker_pids(master: int) -> list[int]:
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return []
    return [int(pid) for pid in children]


def _post(port: int, path: str, body: dict, headers: dict) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST", path, json.dumps(body), {**headers, "Content-Type": "application/json"}
        )
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()  # gunicorn.conf.py's gthread workers keep connections alive


def test_gunicorn_worker_killed_mid_request_leaves_no_partial_case(
    committed_app, engine, database_url
):
    """SIGKILL the worker while its transaction is open, waiting to write the tap (its case
    number already taken; the case, events and SMS go in one statement on PostgreSQL)."""
    _needs_postgres(engine)
    resident_id, auth = _resident(committed_app, "+8613711110004")
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": SECRET}
    env.pop("TEST_DATABASE_URL", None)
    gunicorn = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "1",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    locker = engine.connect()
    try:
        _wait_http(port)
        [worker] = _worker_pids(gunicorn.pid)
        # Hold the outbox: the request's write of its case and SMS waits on this lock.
        locker.execute(text("LOCK TABLE sms_outbox IN ACCESS EXCLUSIVE MODE"))
        outcome: list[Any] = []
        headers = {**auth, "Idempotency-Key": "tap-before-crash"}

        def tap() -> None:
            try:
                outcome.append(_post(port, "/api/v1/urgent-requests", {}, headers))
            except (OSError, http.client.HTTPException) as exc:
                outcome.append(exc)

        thread = threading.Thread(target=tap)
        thread.start()
        deadline = time.monotonic() + 20
        waiting = None
        with engine.connect() as watch:
            while time.monotonic() < deadline and not waiting:
                # A backend waiting for the outbox (its statement's text may be longer than
                # pg_stat_activity shows).
                waiting = watch.scalar(
                    text(
                        "SELECT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                        "WHERE NOT l.granted AND c.relname = 'sms_outbox'"
                    )
                )
                watch.rollback()  # pg_stat_activity is a per-transaction snapshot
                time.sleep(0.05)
        if not waiting:
            with engine.connect() as watch:
                seen = watch.execute(
                    text("SELECT state, wait_event_type, query FROM pg_stat_activity")
                ).all()
            raise AssertionError(f"the request never reached the SMS insert: {seen} {outcome}")
        os.kill(worker, signal.SIGKILL)
        thread.join(30)
        locker.rollback()
        assert outcome and not (isinstance(outcome[0], tuple) and outcome[0][0] < 300), outcome

        # The killed transaction is gone: no case, no key, no SMS.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _count(
            engine, IdempotencyKey, IdempotencyKey.key == "tap-before-crash"
        ):
            time.sleep(0.05)
        assert _count(engine, Case, Case.resident_id == resident_id) == 0
        assert _count(engine, IdempotencyKey, IdempotencyKey.key == "tap-before-crash") == 0
        assert _count(engine, SmsOutbox, SmsOutbox.to_phone == "+8613711110004") == 0

        # gunicorn replaced the worker; the client's retry makes exactly one case.
        _wait_http(port)
        status, body = _post(port, "/api/v1/urgent-requests", {}, headers)
        assert status == 201, body
        status, again = _post(port, "/api/v1/urgent-requests", {}, headers)
        assert status == 200 and again["id"] == body["id"]
        assert _count(engine, Case, Case.resident_id == resident_id) == 1
        _no_half_written_cases(engine)
    finally:
        locker.close()
        gunicorn.terminate()
        try:
            gunicorn.wait(10)
        except subprocess.TimeoutExpired:
            gunicorn.kill()
        gunicorn.stderr.close()
    r.STATS["faults"] += 1


# --- Twilio unreachable under a running worker process ------------------------------------


def test_twilio_down_for_a_while_messages_wait_then_go_out_once(
    committed_app, engine, database_url, fake_twilio
):
    """A real `flask worker` process; Twilio (behind a proxy we cut) is unreachable, then back.

    Complements tests/notifications/test_sms_worker.py (transient errors in-process) and
    tests/notifications/test_sms_concurrency.py (SIGKILL mid-send) with a real outage of the
    provider.
    """
    host, port = fake_twilio.base_url.removeprefix("http://").split(":")
    twilio = TcpProxy(host, int(port))
    twilio.cut()
    with database(committed_app).new_session() as session:
        rows = [
            notifications.enqueue(session, f"+86139{i:08d}", "withdrawn", {"case_no": f"A-B-{i}"})
            for i in range(4)
        ]
        session.commit()
        ids = [row.id for row in rows]
    config = twilio_config(
        fake_twilio,
        TWILIO_API_BASE=f"http://127.0.0.1:{twilio.port}",
        SMS_RETRY_BASE_SECONDS=0.2,
        SMS_RETRY_MAX_SECONDS=0.4,
        SMS_MAX_ATTEMPTS=200,
        SMS_POLL_SECONDS=0.1,
    )
    env = {
        **os.environ,
        **{k: str(v) for k, v in config.items()},
        "DATABASE_URL": database_url,
        "SECRET_KEY": SECRET,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--worker-id", "w1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def statuses() -> dict[int, tuple[str, int]]:
        with engine.connect() as conn:
            rows = conn.execute(
                select(SmsOutbox.id, SmsOutbox.status, SmsOutbox.attempts).where(
                    SmsOutbox.id.in_(ids)
                )
            ).all()
        found = {row.id: (row.status, row.attempts) for row in rows}
        assert len(found) == len(ids)
        return found

    try:
        # Down: the worker tries, records transient failures, and sends nothing.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(a >= 2 for _, a in statuses().values()):
            time.sleep(0.1)
        during = statuses()
        assert all(a >= 2 for _, a in during.values()), during
        assert all(s != "sent" for s, _ in during.values()), during
        assert fake_twilio.requests == []
        # Back: everything goes out, each message exactly once.
        twilio.resume()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(s == "sent" for s, _ in statuses().values()):
            time.sleep(0.1)
        after = statuses()
        assert all(s == "sent" for s, _ in after.values()), after
        time.sleep(0.5)  # a duplicate send would show up now
        assert sorted(len(fake_twilio.bodies_for(i)) for i in ids) == [1] * len(ids)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        twilio.close()
    r.STATS["faults"] += 1
