"""The dashboard."""

from __future__ import annotations

from typing import Any

from outreach.web.console.base import bp, config, render, requires, store
from outreach.web.console.dashboard import dashboard as dashboard_data


@bp.route("/")
@requires("dashboard")
def dashboard() -> Any:
    return render("dashboard.html", data=dashboard_data(store(), config()))
