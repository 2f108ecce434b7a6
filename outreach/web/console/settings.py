"""Settings (admin): users and API keys."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for

from outreach.errors import Conflict, Invalid, NotFound
from outreach.platform import apikeys, users
from outreach.platform.settings import effective_settings
from outreach.web.console.base import bp, config, render, requires, store


def _settings(status: int = 200, **extra: Any) -> Any:
    return render("settings.html", status, users=users.find_users(store()), roles=users.ROLES,
                  api_keys=apikeys.find_api_keys(store()), settings=effective_settings(config()),
                  **extra)


@bp.route("/settings")
@requires("settings")
def settings_page() -> Any:
    return _settings()


@bp.route("/settings/users", methods=["POST"])
@requires("settings", "write")
def user_create() -> Any:
    try:
        created, password = users.create_user(store(), request.form.get("email", ""),
                                              request.form.get("role", ""))
    except (Invalid, Conflict) as exc:
        return _settings(422, user_errors=exc.fields or {"email": [exc.message]})
    return _settings(200, new_user=created, new_password=password)


@bp.route("/settings/users/disable", methods=["POST"])
@requires("settings", "write")
def user_disable() -> Any:
    try:
        disabled = users.disable_user(store(), request.form.get("email", ""))
    except NotFound as exc:
        flash(exc.message, "error")
    else:
        keys = [k["name"] for k in apikeys.find_api_keys(store(), user=disabled["email"])]
        flash(f"{disabled['email']} is disabled; their open sessions have ended"
              + (f" and their API keys ({', '.join(keys)}) answer 401." if keys else "."))
    return redirect(url_for("console.settings_page"))


@bp.route("/settings/api-keys", methods=["POST"])
@requires("settings", "write")
def api_key_create() -> Any:
    name = request.form.get("name", "").strip()
    role = request.form.get("role") or apikeys.DEFAULT_ROLE
    try:
        key = apikeys.create_api_key(store(), name, role=role)
    except Invalid as exc:
        return _settings(422, key_errors=exc.fields or {"name": [exc.message]})
    return _settings(200, new_key=key, new_key_name=name, new_key_role=role)


@bp.route("/settings/api-keys/revoke", methods=["POST"])
@requires("settings", "write")
def api_key_revoke() -> Any:
    name = apikeys.revoke_api_key_by_id(store(), request.form.get("id", ""))
    if name is None:
        flash("No such API key (already revoked?).", "error")
    else:
        flash(f"API key {name} is revoked: requests with it now get 401.")
    return redirect(url_for("console.settings_page"))
