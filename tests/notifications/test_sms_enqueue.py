"""``notifications.enqueue``: template overrides cached per process (an admin's change takes
effect at its commit here, within ``OVERRIDE_CACHE_SECONDS`` elsewhere) and one NOTIFY per
transaction on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import event, insert

import notifications
from notifications import templates
from notifications.models import SmsTemplateOverride
from notifications.ops import set_template_text
from server.session import database

PARAMS = {"case_no": "X-1"}
NEW = "【指尖办】{case_no}撤回了。"


def _body(session) -> str:
    return notifications.enqueue(session, "+8613900002222", "withdrawn", PARAMS).body


def _text(text: str) -> str:
    return templates.render("withdrawn", PARAMS, text=text)


def _statements(connection):
    seen: list[str] = []

    def log(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", log)
    return seen, lambda: event.remove(connection, "before_cursor_execute", log)


def test_overrides_are_read_once_then_cached(app, session, connection):
    default = _body(session)
    seen, stop = _statements(connection)
    for _ in range(3):
        _body(session)
    session.flush()
    stop()
    assert not any("sms_template_overrides" in s for s in seen)
    assert default == _body(session)


def test_change_in_another_process_shows_after_the_ttl(app, session, monkeypatch):
    default = _body(session)
    session.commit()
    # Another process's admin (no ORM event here): a plain row written and committed.
    session.execute(
        insert(SmsTemplateOverride).values(name="withdrawn", text="【指尖办】{case_no}已撤回。")
    )
    session.commit()
    assert _body(session) == default  # still cached
    monkeypatch.setattr(notifications, "OVERRIDE_CACHE_SECONDS", 0.0)
    assert _body(session) == _text("【指尖办】{case_no}已撤回。")


def test_change_in_this_process_shows_at_its_commit(app, session):
    default = _body(session)
    session.commit()
    with database(app).new_session() as admin:
        set_template_text(admin, name="withdrawn", text=NEW, actor_id=None)
        assert _body(admin) == _text(NEW)  # its own transaction sees it at once
        admin.commit()
    assert _body(session) == _text(NEW)
    with database(app).new_session() as admin:
        set_template_text(admin, name="withdrawn", text=None, actor_id=None)
        admin.commit()
    assert _body(session) == default


def test_rolled_back_change_is_forgotten(app, session):
    default = _body(session)
    session.commit()
    set_template_text(session, name="withdrawn", text="【指尖办】{case_no}撤。", actor_id=None)
    assert _body(session) == _text("【指尖办】{case_no}撤。")
    session.rollback()
    assert _body(session) == default


def test_pending_override_in_the_session_is_used(app, session):
    _body(session)
    session.add(SmsTemplateOverride(name="withdrawn", text="【指尖办】{case_no}未刷新。"))
    assert _body(session) == _text("【指尖办】{case_no}未刷新。")


def test_one_notify_per_transaction(app, session, connection):
    expected = 1 if connection.dialect.name == "postgresql" else 0
    seen, stop = _statements(connection)
    for _ in range(3):
        _body(session)
    session.commit()
    assert sum("NOTIFY" in s.upper() for s in seen) == expected
    assert not any("pg_notify" in s for s in seen)

    seen.clear()
    _body(session)
    session.rollback()  # rolled back: nobody to wake
    session.commit()  # ... and the next transaction of the session owes nothing
    assert not any("NOTIFY" in s.upper() for s in seen)

    _body(session)
    session.commit()
    stop()
    assert sum("NOTIFY" in s.upper() for s in seen) == expected
