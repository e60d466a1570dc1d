"""Console sign-in, sign-out, the forced password change, and the per-request session check.

Sign-in goes through ``accounts.staff_signin.authenticate_staff`` (as the API's staff tokens:
the same throttling and audit). The cookie holds the account id, its role, the signed-in session
(an ``AuthSession`` row, as an API token's ``sid``) and the time of the last activity; every
request checks the session row and the account as the API's token check does, so a disabled
account or a revoked session stops at once.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from flask import (
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError

from server.accounts import auth as accounts_auth
from server.accounts import staff_signin
from server.accounts.models import ROLE_LABELS, Account, AuthSession
from server.accounts.service import change_own_password
from server.accounts.tokens import signed_in_actor, signed_in_row
from server.console import bp
from server.db import utcnow
from server.errors import DomainError, localize
from server.limits import client_address, config_limit, limiter, retry_after
from server.session import db_session, expect_writes

# Pages anyone may open; the rest need a signed-in staff session.
PUBLIC_ENDPOINTS = frozenset({"console.login", "console.static"})
# Pages a staff member whose password an administrator set may still open.
PASSWORD_CHANGE_ENDPOINTS = frozenset({"console.change_password", "console.logout"})
# Pages that only read (no audit entry, no write): their statements run without a transaction.
READ_ONLY_ENDPOINTS = frozenset({"console.queue", "console.live"})
# Requests the page makes by itself (live updates): they are not the officer's activity and
# do not hold the session open past the idle timeout.
PASSIVE_HEADER = "X-Console-Passive"


def _idle_limit() -> float:
    return float(current_app.config["CONSOLE_IDLE_MINUTES"]) * 60


def idle_seconds_left() -> float:
    """Seconds until the signed-in session's idle timeout."""
    return float(session.get("seen") or 0) + _idle_limit() - time.time()


def _wants_json() -> bool:
    return request.headers.get(PASSIVE_HEADER) == "json"


def _to_login(reason: str | None = None) -> Any:
    session.clear()
    if _wants_json():
        return jsonify(code="signed_out", message="登录已失效，请重新登录。"), 401
    if reason:
        flash(reason, "warning")
    return redirect(url_for("console.login", next=request.full_path.rstrip("?")))


@bp.before_request
def _signed_in() -> Any:
    """Every console request but sign-in: a live staff session, not idle, password changed."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    uid, sid, role, seen = (session.get(k) for k in ("uid", "sid", "role", "seen"))
    if not (uid and sid and role and seen):
        return _to_login()
    now = time.time()
    if now - float(seen) > _idle_limit():
        return _to_login("长时间未操作，已自动退出，请重新登录。")
    try:
        session_id = uuid.UUID(str(sid))
    except ValueError:
        return _to_login()
    read_only = request.method == "GET" and request.endpoint in READ_ONLY_ENDPOINTS
    if not read_only:
        expect_writes()  # staff reads are audited
    db_session(read_only=read_only)
    found = signed_in_row(int(uid), session_id)
    claims = {"sub": str(uid), "role": role, "sid": session_id}
    if found is None or found.role == "resident" or signed_in_actor(claims, found) is None:
        return _to_login("登录已失效，请重新登录。")
    g.must_change_password = bool(found.must_change_password)
    if g.must_change_password and request.endpoint not in PASSWORD_CHANGE_ENDPOINTS:
        if _wants_json():
            return jsonify(code="password_change_required", message="请先修改密码。"), 403
        return redirect(url_for("console.change_password"))
    if not request.headers.get(PASSIVE_HEADER):
        session["seen"] = now
    return None


@bp.context_processor
def _layout() -> dict[str, Any]:
    actor = g.get("actor")
    if actor is None:
        return {"actor": None}
    return {"actor": actor, "role_label": ROLE_LABELS.get(actor.role, actor.role)}


def _safe_next(target: str | None) -> str:
    # Only a page of the console itself: never an absolute or protocol-relative URL.
    if target and target.startswith("/console/") and not target.startswith("/console//"):
        return target
    return url_for("console.queue")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    config_limit("RATELIMIT_STAFF_LOGIN_PER_CLIENT"), key_func=client_address, methods=["POST"]
)
def login() -> Any:
    """Sign in with staff username and password."""
    if request.method == "GET":
        return render_template("console/login.html", next=request.args.get("next", ""))
    username = (request.form.get("username") or "").strip()
    password = request.form.get("password") or ""
    target = request.form.get("next") or ""
    if not username or not password:
        return _login_refused("请输入用户名和密码。", 400, username, target)
    db = db_session()
    try:
        account = staff_signin.authenticate_staff(db, username=username, password=password)
    except DomainError as exc:
        message = localize(exc.code, exc.message, exc.message_en, **exc.params)
        return _login_refused(message, exc.status, username, target, exc.headers)
    now = utcnow()
    signed_in = AuthSession(
        id=uuid.uuid4(), account_id=account.id, created_at=now, last_used_at=now
    )
    db.add(signed_in)
    db.flush()
    session.clear()  # a fresh session (and CSRF token) for the signed-in officer
    session.update(uid=account.id, sid=str(signed_in.id), role=account.role, seen=time.time())
    if account.must_change_password:
        return redirect(url_for("console.change_password"))
    return redirect(_safe_next(target))


def _login_refused(
    message: str, status: int, username: str, target: str, headers: Any = None
) -> Any:
    body = render_template("console/login.html", error=message, username=username, next=target)
    return body, status, headers or {}


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    """Sign out: the signed-in session ends (its cookie stops working everywhere)."""
    accounts_auth.revoke_session(
        db_session(), session_id=uuid.UUID(str(session["sid"])), reason="logout"
    )
    session.clear()
    flash("已退出登录。", "info")
    return redirect(url_for("console.login"))


@bp.route("/password", methods=["GET", "POST"])
def change_password() -> Any:
    """Change my password (required at first sign-in with an administrator's password)."""
    forced = g.get("must_change_password", False)
    if request.method == "GET":
        return render_template("console/password.html", forced=forced)
    new = request.form.get("new_password") or ""
    if new != (request.form.get("confirm_password") or ""):
        errors = {"confirm_password": ["两次输入的新密码不一致。"]}
        return render_template("console/password.html", forced=forced, errors=errors), 422
    db = db_session()
    account = db.get(Account, g.actor.id)
    try:
        change_own_password(
            db,
            account=account,
            current=request.form.get("current_password") or "",
            new=new,
            keep_session=uuid.UUID(str(session["sid"])),
        )
    except DomainError as exc:
        page = render_template("console/password.html", forced=forced, errors=exc.errors or {})
        return page, exc.status
    flash("密码已修改。", "info")
    return redirect(url_for("console.queue"))


@bp.errorhandler(CSRFError)
def _csrf_refused(error: CSRFError) -> Any:
    message = "页面已过期或缺少安全令牌，请刷新页面后重试。"
    return render_template("console/error.html", message=message), 400


@bp.errorhandler(RateLimitExceeded)
def _too_many(error: RateLimitExceeded) -> Any:
    # The console's own page, not the API's JSON (limits.init_app renders those).
    headers = {"Retry-After": str(retry_after(error))}
    message = localize("rate_limited")
    if _wants_json():
        return jsonify(code="rate_limited", message=message), 429, headers
    if request.endpoint == "console.login":
        return _login_refused(message, 429, request.form.get("username", ""), "", headers)
    return render_template("console/error.html", message=message), 429, headers


@bp.errorhandler(DomainError)
def _refused(error: DomainError) -> Any:
    message = localize(error.code, error.message, error.message_en, **error.params)
    if _wants_json():
        return jsonify(code=error.code, message=message), error.status, error.headers
    page = render_template("console/error.html", message=message, errors=error.errors or {})
    return page, error.status, error.headers


def shanghai(value: dt.datetime | None) -> str:
    """A time as the officer reads it (Asia/Shanghai), e.g. 05-03 14:20."""
    from server.cases.clocks import SHANGHAI

    return value.astimezone(SHANGHAI).strftime("%m-%d %H:%M") if value else ""


bp.add_app_template_filter(shanghai, "shanghai")
