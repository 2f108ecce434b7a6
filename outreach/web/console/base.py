"""The console blueprint and what every view shares: the store, role checks, rendering."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, abort, current_app, render_template, request
from flask_login import current_user

from outreach.config import Config
from outreach.paths import STATIC_DIR
from outreach.platform.users import allowed
from outreach.store import Store

bp = Blueprint("console", __name__, url_prefix="/console",
               static_folder=STATIC_DIR / "console", static_url_path="/static")

F = TypeVar("F", bound=Callable[..., Any])


def store() -> Store:
    return current_app.extensions["outreach.store"]


def config() -> Config:
    return current_app.extensions["outreach.config"]


def jobs() -> Any:
    return current_app.extensions["outreach.jobs"]


def can(area: str, action: str = "read") -> bool:
    """Whether the signed-in user's role allows ``action`` in ``area`` (templates use it
    to show only the buttons that would work)."""
    return bool(current_user.is_authenticated) and allowed(current_user.role, area, action)


def requires(area: str, action: str = "read") -> Callable[[F], F]:
    """403 unless the signed-in user's role allows ``action`` in ``area``."""

    def wrap(view: F) -> F:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if not can(area, action):
                abort(403)
            return view(*args, **kwargs)

        checked.console_access = (area, action)  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return wrap


def form_data(*names: str) -> dict[str, Any]:
    """The named fields of the posted form; empty inputs are left out (not cleared)."""
    return {name: request.form[name].strip() for name in names
            if name in request.form and request.form[name].strip() != ""}


def render(template: str, http_status: int = 200, /, **context: Any) -> Any:
    return render_template(f"console/{template}", **context), http_status


@bp.app_template_filter("pct")
def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


@bp.app_template_filter("money")
def _money(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


@bp.app_template_filter("when")
def _when(value: str | None) -> str:
    return (value or "–").replace("T", " ").replace("Z", " UTC")


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"can": can, "current_user": current_user}
