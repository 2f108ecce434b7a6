"""Console sign-in: a session only under ``/console``, Flask-Login, CSRF, security headers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, flash, redirect, request, session, url_for
from flask.sessions import NullSession, SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from wtforms import ValidationError

from outreach.errors import Invalid, RateLimited, ServiceError
from outreach.platform.users import (
    authenticate,
    end_sessions,
    session_epoch,
    session_user,
    set_password,
)
from outreach.web.console.base import bp, render, requires, store

PREFIX = "/console"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; frame-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
# the template preview frame: the marketer's HTML with its inline styles, no script, no
# form, no plugin, shown only inside the console (sandboxed: a unique origin)
PREVIEW_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data: https: http:; "
               "frame-ancestors 'self'; sandbox")
PUBLIC_ENDPOINTS = {"console.login", "console.static"}


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session, opened only for ``/console`` requests.

    Every other request (the intake fast path, the JSON API, tracking) gets the null
    session at once, as before the console existed: no cookie read, signed or set."""

    def open_session(self, app: Flask, request: Any) -> Any:
        if not request.path.startswith(PREFIX):
            return None
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: Any, response: Any) -> None:
        if isinstance(session, NullSession):
            return None
        return super().save_session(app, session, response)


class ConsoleUser(UserMixin):
    def __init__(self, user: dict[str, Any]) -> None:
        self.email: str = user["email"]
        self.role: str = user["role"]
        self.active: bool = user["active"]

    def get_id(self) -> str:
        return self.email

    @property
    def is_active(self) -> bool:
        return self.active


login_manager = LoginManager()
login_manager.session_protection = "basic"


@login_manager.user_loader
def _load_user(email: str) -> ConsoleUser | None:
    # the session is good only while the user is active and its epoch is the user's: a
    # sign-out, a password or role change or a disable moves the epoch on (server-side end)
    user = session_user(store(), email, session.get("epoch"))
    return ConsoleUser(user) if user is not None else None


def init_app(app: Flask) -> None:
    config = app.extensions["outreach.config"]
    app.session_interface = ConsoleSessions()
    app.config.update(
        SESSION_COOKIE_NAME="outreach_console",
        SESSION_COOKIE_PATH=PREFIX,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=urlsplit(config.base_url).scheme == "https",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        WTF_CSRF_FIELD_NAME="csrf_token",
    )
    # LoginManager.init_app would add an after_request hook to every request of the app
    # (the remember-me cookie, which the console does not use): attach it without hooks
    app.login_manager = login_manager  # type: ignore[attr-defined]


@bp.before_request
def _guard() -> Any:
    if request.endpoint in PUBLIC_ENDPOINTS:
        if request.endpoint == "console.static":
            return None
    elif not current_user.is_authenticated:
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        token = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token")
        try:
            validate_csrf(token)
        except ValidationError as exc:
            raise CSRFError(str(exc)) from exc
    return None


@bp.after_request
def _headers(response: Any) -> Any:
    if request.endpoint in ("console.template_preview_html", "console.template_draft_html"):
        response.headers["Content-Security-Policy"] = PREVIEW_CSP
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    else:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.context_processor
def _csrf() -> dict[str, Any]:
    return {"csrf_token": generate_csrf}


@bp.errorhandler(CSRFError)
def _csrf_failed(exc: CSRFError) -> Any:
    return render("error.html", 400, title="Form expired",
                  message="The form was missing its security token or it was not valid. "
                          "Reload the page and try again.")


@bp.errorhandler(403)
def _forbidden(exc: Any) -> Any:
    role = getattr(current_user, "role", None)
    return render("error.html", 403, title="Not allowed",
                  message=f"Your role ({role}) does not allow this." if role
                  else "Your role does not allow this.")


@bp.errorhandler(404)
def _not_found(exc: Any) -> Any:
    return render("error.html", 404, title="Not found", message="There is nothing here.")


@bp.errorhandler(ServiceError)
def _service_error(exc: ServiceError) -> Any:
    titles = {404: "Not found", 409: "Not possible now", 422: "Not valid"}
    return render("error.html", exc.status, title=titles.get(exc.status, "Error"),
                  message=exc.message, fields=exc.fields)


def _safe_next(target: str | None) -> str:
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return url_for("console.dashboard")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(url_for("console.dashboard"))
        return render("login.html", next=request.args.get("next", ""))
    email = request.form.get("email", "")
    next_url = request.form.get("next", "")
    try:
        user = authenticate(store(), email, request.form.get("password", ""), _client())
    except RateLimited as exc:
        minutes = max(1, -(-exc.retry_after // 60))  # rounded up: never sooner than said
        page, status = render("login.html", 429, email=email, next=next_url,
                              error="Too many failed sign-ins. Try again in "
                                    f"{minutes} minute{'' if minutes == 1 else 's'}.")
        return page, status, {"Retry-After": str(exc.retry_after)}
    except Invalid:
        return render("login.html", 200, email=email, next=next_url,
                      error="Wrong email or password.")
    _start_session(user)
    return redirect(_safe_next(next_url))


def _start_session(user: dict[str, Any]) -> None:
    session.clear()  # a new session on sign-in (no fixation), with a new CSRF secret
    login_user(ConsoleUser(user))
    session["epoch"] = session_epoch(store(), user["email"])


def _client() -> str:
    return request.remote_addr or "unknown"


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    if current_user.is_authenticated:
        # on the server too: a copy of this session's cookie no longer works (nor do the
        # user's other sessions: one epoch per user)
        end_sessions(store(), current_user.email)
    logout_user()
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("console.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@requires("account", "write")
def change_password() -> Any:
    """Any signed-in user: change my own password. Every open session of mine ends, this
    one included: the next page is the sign-in, with the new password."""
    if request.method == "GET":
        return render("password.html")
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    errors: dict[str, list[str]] = {}
    if new != request.form.get("confirm_password", ""):
        errors["confirm_password"] = ["The two new passwords differ."]
    try:
        authenticate(store(), current_user.email, current, _client())
    except RateLimited as exc:
        page, status = render("password.html", 429, errors={
            "current_password": ["Too many failed attempts; try again later."]})
        return page, status, {"Retry-After": str(exc.retry_after)}
    except Invalid:
        errors["current_password"] = ["This is not your current password."]
    if not errors:
        try:
            set_password(store(), current_user.email, new)
        except Invalid as exc:
            errors["new_password"] = (exc.fields or {}).get("password", [exc.message])
    if errors:
        return render("password.html", 422, errors=errors)
    logout_user()
    session.clear()
    flash("Your password is changed and every session of yours has ended. "
          "Sign in with the new password.")
    return redirect(url_for("console.login"))
