"""The staff console (工作台): server-rendered pages under ``/console/``.

Another door into the same services and the same ``server.access`` rules as the API: views
parse a form, ask ``access``, call one service function and render. Signed in with a cookie
session (HttpOnly, SameSite=Lax, Secure over HTTPS) scoped to ``/console``; every
state-changing request carries a CSRF token (Flask-WTF); the API authenticates by bearer
token and is exempt.
"""

from __future__ import annotations

from flask import Blueprint, Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

csrf = CSRFProtect()


@bp.before_request
def _csrf() -> None:
    # Every state-changing console request, sign-in included, before anything else runs.
    csrf.protect()


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, Secure when configured so or when the request came
    over HTTPS (``SESSION_COOKIE_SECURE`` unset: by the request's scheme, behind
    ``TRUSTED_PROXIES`` as the proxy reports it)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        configured = app.config.get("SESSION_COOKIE_SECURE")
        if configured is not None:
            return bool(configured)
        return bool(request and request.is_secure)


def init_app(app: Flask) -> None:
    """Register the console blueprint, its session cookie and CSRF protection."""
    from server.console import admin, auth, callbacks, case, county, hotline, queue, reports, roster  # noqa: F401  (routes)

    app.config.setdefault("CONSOLE_IDLE_MINUTES", 30)
    if app.config.get("SESSION_COOKIE_NAME") in (None, "session"):
        app.config["SESSION_COOKIE_NAME"] = "aidline_console"
    # Only the console's pages get the cookie: the API never sees it.
    app.config["SESSION_COOKIE_PATH"] = "/console"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    # The token lives as long as the signed-in session (idle timeout, sign-out): a page left
    # open through a night shift still posts.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    # Checked by the console's own before_request (``_csrf``): the JSON API authenticates by
    # bearer token, never by a cookie, so it has nothing to forge.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.session_interface = ConsoleSessionInterface()
    app.register_blueprint(bp)
    csrf.init_app(app)
