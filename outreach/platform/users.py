"""Console users: who may sign in to ``/console``, with which role.

Users are keyed by their normalised email address. Passwords are stored only as
Argon2id hashes (argon2-cffi's ``PasswordHasher``, whose default type is ID).
Repeated failed sign-ins are throttled per (account, client): ``LOGIN_MAX_FAILURES``
failures within ``LOGIN_WINDOW_SECONDS`` refuse every further attempt, right or wrong,
until the window passes.

Other services use :func:`can_own` to check an ``owner`` field (an active sales or admin
user).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from outreach.errors import Conflict, Invalid, NotFound, RateLimited
from outreach.normalize import InvalidEmail, checked_email
from outreach.store import Store
from outreach.vocabulary import iso

ROLES = ("admin", "marketer", "sales")
OWNER_ROLES = ("admin", "sales")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
LOGIN_MAX_FAILURES = 5
LOGIN_WINDOW_SECONDS = 15 * 60

_hasher = PasswordHasher()
# verified against when the account does not exist, so a wrong address costs as much time
# as a wrong password (no user enumeration by timing)
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def _email(raw: str) -> str:
    try:
        return checked_email(raw)
    except InvalidEmail as exc:
        raise Invalid("Validation failed.", {"email": ["Not a valid email address."]}) from exc


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise Invalid("Validation failed.", {"role": [f"One of: {', '.join(ROLES)}."]})


def _check_password(password: str) -> None:
    if not (MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH):
        raise Invalid("Validation failed.", {"password": [
            f"Between {MIN_PASSWORD_LENGTH} and {MAX_PASSWORD_LENGTH} characters."]})


def user_view(email: str, h: dict[str, str]) -> dict[str, Any]:
    return {
        "email": email,
        "role": h.get("role"),
        "active": h.get("active") == "1",
        "created_at": iso(h.get("created_at")),
        "last_sign_in_at": iso(h.get("last_sign_in_at")),
    }


def generate_password() -> str:
    """A random password (about 128 bits) for ``outreach user create``."""
    return secrets.token_urlsafe(16)


def create_user(store: Store, email: str, role: str, password: str | None = None
                ) -> tuple[dict[str, Any], str]:
    """Create a user; returns (user, password). Without ``password`` one is generated."""
    email = _email(email)
    _check_role(role)
    if password is None:
        password = generate_password()
    _check_password(password)
    keys = store.keys
    record = {"role": role, "active": "1", "password": _hasher.hash(password),
              "created_at": str(int(time.time()))}
    if not store.r.hsetnx(keys.user(email), "role", role):
        raise Conflict(f"A user {email} already exists.")
    _, n = store.next_id("user", "u")
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(keys.user(email), mapping=record)
    pipe.zadd(keys.users, {email: n})
    pipe.execute()
    return user_view(email, record), password


def get_user(store: Store, email: str) -> dict[str, Any]:
    """The user with this address (active or not); 404 when there is none."""
    try:
        normal = checked_email(email)
    except InvalidEmail as exc:
        raise NotFound(f"No user {email!r}.") from exc
    h = store.r.hgetall(store.keys.user(normal))
    if not h or "password" not in h:
        raise NotFound(f"No user {email!r}.")
    return user_view(normal, h)


def find_users(store: Store, *, role: str | None = None, active: bool | None = None
               ) -> list[dict[str, Any]]:
    """Every user in creation order, optionally only of ``role`` / with ``active``.
    (Console users are few: tens, not thousands.)"""
    keys = store.keys
    emails = store.r.zrange(keys.users, 0, -1)
    pipe = store.r.pipeline(transaction=False)
    for email in emails:
        pipe.hgetall(keys.user(email))
    out = []
    for email, h in zip(emails, pipe.execute(), strict=True):
        if not h:
            continue
        user = user_view(email, h)
        if (role is None or user["role"] == role) and (active is None or user["active"] == active):
            out.append(user)
    return out


def can_own(store: Store, email: str) -> bool:
    """Whether ``email`` may be the ``owner`` of a record: an active sales or admin user."""
    try:
        user = get_user(store, email)
    except NotFound:
        return False
    return user["active"] and user["role"] in OWNER_ROLES


def disable_user(store: Store, email: str) -> dict[str, Any]:
    """Disable a user: they can no longer sign in, and their open sessions stop working."""
    user = get_user(store, email)
    store.r.hset(store.keys.user(user["email"]), "active", "0")
    return get_user(store, user["email"])


def set_password(store: Store, email: str, password: str) -> None:
    user = get_user(store, email)
    _check_password(password)
    store.r.hset(store.keys.user(user["email"]), "password", _hasher.hash(password))


def authenticate(store: Store, email: str, password: str, client: str) -> dict[str, Any]:
    """The active user whose password this is.

    Raises ``RateLimited`` (429) once ``LOGIN_MAX_FAILURES`` attempts for this account from
    this ``client`` failed within the window (even for the right password), ``Invalid``
    for a wrong address or password or a disabled user (one message for all three).
    """
    keys = store.keys
    try:
        normal = checked_email(email)
    except InvalidEmail:
        normal = (email or "").strip().lower()[:320]
    throttle = keys.login_failures(normal, client)
    failures = store.r.get(throttle)
    if failures is not None and int(failures) >= LOGIN_MAX_FAILURES:
        wait = store.r.ttl(throttle)
        raise RateLimited("Too many failed sign-ins; try again later.",
                          max(int(wait), 1) if wait and wait > 0 else LOGIN_WINDOW_SECONDS)
    h = store.r.hgetall(keys.user(normal)) if normal else {}
    stored = h.get("password") or _DUMMY_HASH
    try:
        ok = _hasher.verify(stored, password or "") and stored is not _DUMMY_HASH
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or h.get("active") != "1":
        pipe = store.r.pipeline(transaction=True)
        pipe.incr(throttle)
        pipe.expire(throttle, LOGIN_WINDOW_SECONDS, nx=True)
        pipe.execute()
        raise Invalid("Wrong email or password.", {"password": ["Wrong email or password."]})
    updates = {"last_sign_in_at": str(int(time.time()))}
    if _hasher.check_needs_rehash(stored):
        updates["password"] = _hasher.hash(password)
    store.r.hset(keys.user(normal), mapping=updates)
    return user_view(normal, {**h, **updates})


# what each role may do in the console: area -> "read" or "write" (write includes read)
ROLE_ACCESS: dict[str, dict[str, str]] = {
    "admin": {"dashboard": "write", "lists": "write", "templates": "write", "campaigns": "write",
              "forms": "write", "imports": "write", "people": "write", "opportunities": "write",
              "settings": "write"},
    "marketer": {"dashboard": "read", "lists": "write", "templates": "write", "campaigns": "write",
                 "forms": "write", "imports": "write", "people": "read"},
    "sales": {"dashboard": "read", "people": "write", "opportunities": "write", "campaigns": "read"},
}


def allowed(role: str | None, area: str, action: str = "read") -> bool:
    """Whether ``role`` may ``action`` ("read" or "write") in ``area`` (see ``ROLE_ACCESS``)."""
    level = ROLE_ACCESS.get(role or "", {}).get(area)
    return level == "write" or (level == "read" and action == "read")
