"""``notifications.enqueue``: template overrides cached per process (an admin's change takes
effect at its commit here, within ``OVERRIDE_CACHE_SECONDS`` elsewhere) and the workers woken
by commits only on PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import insert
from sqlalchemy.engine import make_url

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


@pytest.mark.postgres
def test_the_workers_are_woken_by_commits_only(committed_app, database_url, engine):
    """A committed enqueue NOTIFYs the workers' channel; a rolled-back one wakes nobody."""
    if engine.dialect.name != "postgresql":
        pytest.skip("LISTEN/NOTIFY: PostgreSQL pass only (SQLite's workers poll)")
    listener = psycopg.connect(
        make_url(database_url).set(drivername="postgresql").render_as_string(False),
        autocommit=True,
    )
    try:
        listener.execute(f"LISTEN {notifications.NOTIFY_CHANNEL}")
        with database(committed_app).new_session() as session:
            _body(session)
            session.rollback()
            assert list(listener.notifies(timeout=0.3, stop_after=1)) == []
            for _ in range(3):
                _body(session)
            session.commit()
        woken = list(listener.notifies(timeout=5, stop_after=1))
        assert [n.channel for n in woken] == [notifications.NOTIFY_CHANNEL]
    finally:
        listener.close()
