"""City administrators' pages: staff accounts, county aid standards, the holiday calendar and
SMS operations. Each is another door to the services the CLI and the API use."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from notifications import ops
from notifications.models import CallbackTask
from server import access
from server.accounts import staff
from server.accounts.models import ROLE_LABELS, SCOPE_LEVEL, STAFF_ROLES
from server.accounts.service import create_staff
from server.cases import money, settings
from server.cases.clocks import SHANGHAI
from server.cases.models import Case
from server.console import bp
from server.divisions.models import Division
from server.errors import ValidationFailed
from server.masking import mask_phone
from server.session import db_session
from server.sms import service as sms_service

# The four standards of a county as the form names them (yuan), stored in fen.
STANDARD_FIELDS = (
    ("urban_monthly_fen", "城市低保月标准"),
    ("rural_monthly_fen", "农村低保月标准"),
    ("township_urgent_cap_fen", "乡镇急难型先行救助上限"),
    ("township_approval_cap_fen", "乡镇审批权限上限（超出一事一议）"),
)


def _admin() -> Any:
    access.require_admin(g.actor)
    return g.actor


@bp.context_processor
def _calendar_banner() -> dict[str, Any]:
    """Administrators see, from 1 November, that next year's holidays are missing."""
    actor = g.get("actor")
    if actor is None or actor.role != "admin":
        return {}
    today = dt.datetime.now(SHANGHAI).date()
    return {"calendar_gap": settings.calendar_gap(db_session(), today=today)}


def _regions(session: Any, city: str) -> list[Any]:
    return session.execute(
        select(Division.code, Division.name, Division.level)
        .where(Division.code.startswith(city), Division.level.in_(("city", "county", "township")))
        .order_by(Division.code)
    ).all()


@bp.route("/admin/staff")
def admin_staff(new_password: tuple[str, str] | None = None) -> Any:
    """Staff accounts of the city: role, region, phone, status, last sign-in."""
    actor = _admin()
    session = db_session()
    regions = _regions(session, actor.region_code)
    return render_template(
        "console/admin_staff.html",
        accounts=staff.staff_list(session, region_code=actor.region_code),
        regions=regions,
        names={r.code: r.name for r in regions},
        roles=[(r, ROLE_LABELS[r]) for r in STAFF_ROLES],
        levels=SCOPE_LEVEL,
        new_password=new_password,
    )


@bp.route("/admin/staff/create", methods=["POST"])
def admin_staff_create() -> Any:
    """Create a staff account; the administrator's password is changed at first sign-in."""
    actor = _admin()
    form = request.form
    region = form.get("region_code") or ""
    access.require_admin(actor, region)
    account = create_staff(
        db_session(),
        username=(form.get("username") or "").strip(),
        password=form.get("password") or "",
        role=form.get("role") or "",
        region_code=region,
        phone=(form.get("phone") or "").strip() or None,
        name=(form.get("name") or "").strip() or None,
        must_change_password=True,
    )
    flash(f"已创建账号 {account.username}，首次登录须修改密码。", "success")
    return redirect(url_for("console.admin_staff"))


@bp.route("/admin/staff/<int:account_id>/<string:op>", methods=["POST"])
def admin_staff_change(account_id: int, op: str) -> Any:
    """Disable, enable, unlock, reset the password of, or update a staff account."""
    actor = _admin()
    session = db_session()
    account = staff.find_staff(session, account_id=account_id)
    access.require_admin(actor, account.region_code or "")
    if op == "disable":
        staff.set_active(session, actor=actor, account=account, active=False)
        flash(f"已停用 {account.username}，其登录已全部失效。", "info")
    elif op == "enable":
        staff.set_active(session, actor=actor, account=account, active=True)
        flash(f"已启用 {account.username}。", "success")
    elif op == "unlock":
        cleared = staff.unlock(session, actor=actor, account=account)
        flash(f"已解除 {account.username} 的登录等待（{cleared} 个地址）。", "success")
    elif op == "reset":
        password = staff.reset_password(session, actor=actor, account=account)
        # Shown once on this page, never put in the (signed, not encrypted) session cookie.
        return admin_staff(new_password=(account.username or "", password))
    elif op == "update":
        region = request.form.get("region_code") or ""
        access.require_admin(actor, region)
        staff.update_contact(
            session,
            actor=actor,
            account=account,
            phone=(request.form.get("phone") or "").strip() or None,
            region_code=region,
        )
        flash(f"已更新 {account.username} 的电话和辖区。", "success")
    else:
        raise ValidationFailed(errors={"op": ["未知操作。"]})
    return redirect(url_for("console.admin_staff"))


@bp.route("/admin/standards", methods=["GET", "POST"])
def admin_standards() -> Any:
    """County aid standards in yuan (stored in fen), with the 3–12× rule."""
    actor = _admin()
    session = db_session()
    if request.method == "POST":
        county = request.form.get("county") or ""
        access.require_admin(actor, county)
        values, errors = {}, {}
        for field, label in STANDARD_FIELDS:
            try:
                values[field] = money.parse_yuan(request.form.get(field) or "")
            except ValueError:
                errors[field] = [f"{label}：请填写以元为单位、最多两位小数的金额。"]
        if errors:
            raise ValidationFailed(errors=errors)
        settings.put_standard(session, actor=actor, county_code=county, **values)
        flash("救助标准已保存。", "success")
        return redirect(url_for("console.admin_standards"))
    counties = session.scalars(
        select(Division)
        .where(Division.level == "county", Division.parent_code == actor.region_code)
        .order_by(Division.code)
    ).all()
    standards = {c.code: money.get_standard(session, c.code) for c in counties}
    return render_template(
        "console/admin_standards.html",
        counties=counties,
        standards=standards,
        fields=STANDARD_FIELDS,
        yuan=money.yuan,
        ranges={c: money.expenditure_range(s) for c, s in standards.items() if s},
        multiples=(money.EXPENDITURE_MIN_MULTIPLE, money.EXPENDITURE_MAX_MULTIPLE),
    )


@bp.route("/admin/calendar", methods=["GET", "POST"])
def admin_calendar() -> Any:
    """Holiday and make-up working-day overrides of the working-day calendar."""
    actor = _admin()
    session = db_session()
    if request.method == "POST":
        try:
            day = dt.date.fromisoformat(request.form.get("day") or "")
        except ValueError:
            raise ValidationFailed(errors={"day": ["请填写日期。"]}) from None
        if request.form.get("delete"):
            settings.delete_override(session, actor=actor, day=day)
            flash(f"已删除 {day} 的调整。", "info")
        else:
            workday = request.form.get("kind") == "workday"
            note = (request.form.get("note") or "").strip()[:100] or None
            settings.set_override(session, actor=actor, day=day, workday=workday, note=note)
            flash(f"已设置 {day} 为{'调休上班' if workday else '节假日'}。", "success")
        return redirect(url_for("console.admin_calendar"))
    today = dt.datetime.now(SHANGHAI).date()
    return render_template(
        "console/admin_calendar.html",
        overrides=settings.list_overrides(session),
        years_known={y: settings.clocks.year_known(y) for y in (today.year, today.year + 1)},
    )


@bp.route("/admin/sms", methods=["GET", "POST"])
def admin_sms() -> Any:
    """SMS operations: outbox counts, failures with retry, template wording, open call-backs."""
    actor = _admin()
    session = db_session()
    if request.method == "POST":
        if request.form.get("retry"):
            raw = request.form.get("retry") or ""
            ids = [int(raw)] if raw.isdigit() else []
            queued = sms_service.retry(session, actor=actor, ids=ids)
            flash(f"已重新排队 {queued} 条短信。", "success")
        else:
            text = request.form.get("text")
            sms_service.update_template(
                session,
                actor=actor,
                name=request.form.get("name") or "",
                text=None if request.form.get("restore") else (text or ""),
            )
            flash("短信模板已保存。", "success")
        return redirect(url_for("console.admin_sms"))
    failures, failed_total = ops.list_outbox(session, status="failed", page=1, per_page=50)
    callbacks = session.execute(
        select(CallbackTask, Case.case_no)
        .join(Case, Case.id == CallbackTask.case_id)
        .where(CallbackTask.status == "open", Case.county_code.startswith(actor.region_code))
        .order_by(CallbackTask.created_at)
        .limit(100)
    ).all()
    return render_template(
        "console/admin_sms.html",
        counts=ops.counts_by_status(session),
        failures=failures,
        failed_total=failed_total,
        templates=ops.template_texts(session),
        callbacks=callbacks,
        mask_phone=mask_phone,
    )
