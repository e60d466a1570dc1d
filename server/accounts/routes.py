"""Sign-in (``/api/v1/auth``) and the caller's own profile (``/api/v1/me``)."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from flask.views import MethodView
from limits import parse_many

from server import access
from server.accounts import auth, codes, service, staff_signin
from server.accounts.models import ROLE_LABELS, Account
from server.accounts.schemas import (
    LogoutRequestSchema,
    MeSchema,
    MeUpdateSchema,
    RefreshRequestSchema,
    SmsCodeRequestSchema,
    SmsCodeSentSchema,
    StaffTokenRequestSchema,
    TokenRequestSchema,
    TokenSchema,
)
from server.accounts.tokens import current_actor
from server.api import Blueprint, ErrorSchema, actor
from server.divisions.models import Division
from server.divisions.service import full_name
from server.errors import DomainError
from server.limits import client_address, config_limit, limiter
from server.session import db_session

auth_blp = Blueprint(
    "auth",
    __name__,
    url_prefix="/api/v1/auth",
    description="登录：居民手机号 + 短信验证码，工作人员用户名 + 密码；访问令牌与轮换的刷新令牌",
)
me_blp = Blueprint("me", __name__, url_prefix="/api/v1/me", description="当前用户的个人资料")

RATE_LIMITED = {"schema": ErrorSchema, "description": "请求过于频繁（响应带 Retry-After）"}
SIGN_IN_FAILED = {"schema": ErrorSchema, "description": "验证失败"}


def _resend_after() -> int:
    # The shortest window of the per-phone limit, e.g. 60 s for "1/minute;10/day".
    item = min(parse_many(current_app.config["RATELIMIT_SMS_PER_PHONE"]))
    return item.get_expiry() // max(item.amount, 1)


@auth_blp.route("/sms-code")
class SmsCode(MethodView):
    @limiter.limit(config_limit("RATELIMIT_SMS_PER_CLIENT"), key_func=client_address)
    @auth_blp.arguments(SmsCodeRequestSchema)
    @auth_blp.response(202, SmsCodeSentSchema)
    @auth_blp.alt_response(429, **RATE_LIMITED)
    def post(self, data):
        """Send a sign-in code by SMS (limited per phone and per client)."""
        phone = service.normalize_phone(data["phone"])
        ttl = codes.send_sign_in_code(db_session(), phone=phone)
        return {"expires_in": ttl, "resend_after": _resend_after()}


@auth_blp.route("/token")
class Token(MethodView):
    @limiter.limit(config_limit("RATELIMIT_VERIFY_PER_CLIENT"), key_func=client_address)
    @auth_blp.arguments(TokenRequestSchema)
    @auth_blp.response(200, TokenSchema)
    @auth_blp.alt_response(401, **SIGN_IN_FAILED)
    @auth_blp.alt_response(403, schema=ErrorSchema, description="账号已停用")
    @auth_blp.alt_response(429, **RATE_LIMITED)
    def post(self, data):
        """Sign a resident in with phone + SMS code (creates the account on first sign-in)."""
        session = db_session()
        phone = service.normalize_phone(data["phone"])
        account = codes.verify_sign_in_code(session, phone=phone, code=data["code"])
        return auth.start_session(session, account=account)


@auth_blp.route("/staff-token")
class StaffToken(MethodView):
    @limiter.limit(config_limit("RATELIMIT_STAFF_LOGIN_PER_CLIENT"), key_func=client_address)
    @auth_blp.arguments(StaffTokenRequestSchema)
    @auth_blp.response(200, TokenSchema)
    @auth_blp.alt_response(401, **SIGN_IN_FAILED)
    @auth_blp.alt_response(403, schema=ErrorSchema, description="账号已停用")
    @auth_blp.alt_response(429, **RATE_LIMITED)
    def post(self, data):
        """Sign a staff member in with username + password (slowed after repeated failures)."""
        session = db_session()
        account = staff_signin.authenticate_staff(
            session, username=data["username"], password=data["password"], client=client_address()
        )
        return auth.start_session(session, account=account)


@auth_blp.route("/refresh")
class Refresh(MethodView):
    @limiter.limit(config_limit("RATELIMIT_REFRESH_PER_CLIENT"), key_func=client_address)
    @auth_blp.arguments(RefreshRequestSchema)
    @auth_blp.response(200, TokenSchema)
    @auth_blp.alt_response(401, **SIGN_IN_FAILED)
    @auth_blp.alt_response(429, **RATE_LIMITED)
    def post(self, data):
        """Exchange a refresh token for a new token pair (the old one is spent)."""
        return auth.refresh(db_session(), token=data["refresh_token"])


@auth_blp.route("/logout")
class Logout(MethodView):
    @auth_blp.arguments(LogoutRequestSchema)
    @auth_blp.response(204)
    def post(self, data):
        """Sign out: revoke the session of the refresh token and/or of the bearer token."""
        session_id = None
        if request.headers.get("Authorization"):
            try:
                current_actor()
                session_id = g.get("auth_session_id")
            except DomainError:
                session_id = None  # an expired access token must not prevent signing out
        auth.logout(db_session(), token=data.get("refresh_token"), session_id=session_id)


def _township_name(session: Any, code: str | None) -> str | None:
    if not code:
        return None
    division = session.get(Division, code)
    return full_name(session, division) if division else None


def _dump_me(session: Any, account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "role": account.role,
        "role_label": ROLE_LABELS.get(account.role, account.role),
        "phone": account.phone,
        "username": account.username,
        "name": account.name,
        "id_number_masked": account.id_number_masked,
        "residence_township_code": account.residence_township_code,
        "residence_township_name": _township_name(session, account.residence_township_code),
        "hukou_township_code": account.hukou_township_code,
        "hukou_township_name": _township_name(session, account.hukou_township_code),
        "region_code": account.region_code,
        "region_name": _township_name(session, account.region_code),
    }


@me_blp.route("")
class Me(MethodView):
    @me_blp.login_required(roles=access.ALL_ROLES)
    @me_blp.response(200, MeSchema)
    def get(self):
        """Get my profile (ID number masked)."""
        session = db_session()
        return _dump_me(session, session.get(Account, actor().id))

    @me_blp.login_required(roles=access.PROFILE_EDITORS)
    @me_blp.arguments(MeUpdateSchema)
    @me_blp.response(200, MeSchema)
    @me_blp.alt_response(
        409, schema=ErrorSchema, description="该身份证号已绑定其他账号（请拨打12349或联系乡镇核实）"
    )
    def patch(self, data):
        """Update my resident profile: name, ID number, residence and hukou township."""
        session = db_session()
        account = service.update_profile(
            session, actor=actor(), account=session.get(Account, actor().id), changes=data
        )
        return _dump_me(session, account)
