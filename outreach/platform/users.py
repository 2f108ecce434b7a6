"""Console users: who may sign in to ``/console``, with which role.

Users are keyed by their normalised email address. Passwords are stored only as
Argon2id hashes (argon2-cffi's ``PasswordHasher``, whose default type is ID).

Failed sign-ins are counted three ways, all before any password hash is computed:
- per client address (an IPv6 /64, an IPv4 address): ``CLIENT_MAX_FAILURES`` failures
  within ``CLIENT_WINDOW_SECONDS`` refuse every further attempt from it (429), so random
  addresses cannot make the server compute Argon2 hashes without end;
- per (account, client): ``LOGIN_MAX_FAILURES`` failures within ``LOGIN_WINDOW_SECONDS``
  refuse that account from that client, right password or wrong;
- per account across clients: after ``ACCOUNT_SLOW_AFTER`` failures within the window,
  attempts for that account are paced (one every few seconds, growing to
  ``ACCOUNT_MAX_PACE_SECONDS``): an attack from many addresses is slowed, and the owner can
  still sign in after a short wait — it never locks.

Sessions end on the server: each user record has a session ``epoch`` that a console
session carries; sign-out, a password change, a role change and a disable move it on, and
a session with an older epoch is signed out on its next request.

Other services use :func:`can_own` to check an ``owner`` field (an active sales or admin
user).
"""

from __future__ import annotations

import ipaddress
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
CLIENT_MAX_FAILURES = 20
CLIENT_WINDOW_SECONDS = 10 * 60
ACCOUNT_SLOW_AFTER = 10
ACCOUNT_MAX_PACE_SECONDS = 30

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


def _end_sessions(pipe: Any, store: Store, email: str) -> None:
    pipe.hincrby(store.keys.user(email), "epoch", 1)


def disable_user(store: Store, email: str) -> dict[str, Any]:
    """Disable a user: they can no longer sign in, their open sessions end and their API
    keys are refused."""
    user = get_user(store, email)
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(store.keys.user(user["email"]), "active", "0")
    _end_sessions(pipe, store, user["email"])
    pipe.execute()
    return get_user(store, user["email"])


def enable_user(store: Store, email: str) -> dict[str, Any]:
    """Enable a disabled user again (with their password and role as they were)."""
    user = get_user(store, email)
    store.r.hset(store.keys.user(user["email"]), "active", "1")
    return get_user(store, user["email"])


def set_role(store: Store, email: str, role: str) -> dict[str, Any]:
    """Change a user's role (and their keys'); their open sessions end."""
    user = get_user(store, email)
    _check_role(role)
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(store.keys.user(user["email"]), "role", role)
    _end_sessions(pipe, store, user["email"])
    pipe.execute()
    return get_user(store, user["email"])


def set_password(store: Store, email: str, password: str) -> None:
    """A new password; every open session of the user ends."""
    user = get_user(store, email)
    _check_password(password)
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(store.keys.user(user["email"]), "password", _hasher.hash(password))
    _end_sessions(pipe, store, user["email"])
    pipe.execute()


def end_sessions(store: Store, email: str) -> None:
    """End every open console session of the user (sign-out)."""
    pipe = store.r.pipeline(transaction=True)
    _end_sessions(pipe, store, email)
    pipe.execute()


def session_epoch(store: Store, email: str) -> int:
    """The user's current session epoch (a session made under another one is over)."""
    return int(store.r.hget(store.keys.user(email), "epoch") or 0)


def session_user(store: Store, email: str, epoch: Any) -> dict[str, Any] | None:
    """The user a console session belongs to, if it is still good: the user exists, is
    active, and the session's ``epoch`` is the user's current one. One read."""
    h = store.r.hgetall(store.keys.user(email)) if email else {}
    if not h or "password" not in h or h.get("active") != "1":
        return None
    if str(epoch) != str(int(h.get("epoch") or 0)):
        return None
    return user_view(email, h)


def client_block(address: str) -> str:
    """The unit a client is counted in: an IPv4 address as it is, an IPv6 address's /64
    (one subscriber's whole network), an IPv4-mapped IPv6 address as its IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def _refused(wait: Any, default: int) -> RateLimited:
    seconds = max(int(wait), 1) if wait and int(wait) > 0 else default
    return RateLimited("Too many failed sign-ins; try again later.", seconds)


def authenticate(store: Store, email: str, password: str, client: str) -> dict[str, Any]:
    """The active user whose password this is.

    Raises ``RateLimited`` (429, with the seconds to wait) when the client address, this
    account from this client, or (for a while) this account has had too many failures — all
    checked before any hash is computed — and ``Invalid`` for a wrong address or password or
    a disabled user (one message for all three).
    """
    keys = store.keys
    try:
        normal = checked_email(email)
    except InvalidEmail:
        normal = (email or "").strip().lower()[:320]
    block = client_block(client or "unknown")
    by_client = keys.login_client_failures(block)
    throttle = keys.login_failures(normal, block)
    by_account = keys.login_account_failures(normal)
    pace = keys.login_account_pace(normal)
    pipe = store.r.pipeline(transaction=False)
    pipe.get(by_client)
    pipe.ttl(by_client)
    pipe.get(throttle)
    pipe.ttl(throttle)
    pipe.get(by_account)
    pipe.pttl(pace)
    client_failures, client_ttl, failures, wait, account_failures, pace_ms = pipe.execute()
    if client_failures is not None and int(client_failures) >= CLIENT_MAX_FAILURES:
        raise _refused(client_ttl, CLIENT_WINDOW_SECONDS)
    if failures is not None and int(failures) >= LOGIN_MAX_FAILURES:
        raise _refused(wait, LOGIN_WINDOW_SECONDS)
    account_failures = int(account_failures or 0)
    if account_failures >= ACCOUNT_SLOW_AFTER:
        # a much-attacked account: one attempt per pace interval, from whichever client
        if pace_ms is not None and pace_ms > 0:
            raise RateLimited("Too many failed sign-ins for this account; try again in a "
                              "moment.", max(1, -(-int(pace_ms) // 1000)))
        seconds = min(ACCOUNT_MAX_PACE_SECONDS, 1 + account_failures - ACCOUNT_SLOW_AFTER)
        if not store.r.set(pace, "1", nx=True, ex=seconds):
            raise RateLimited("Too many failed sign-ins for this account; try again in a "
                              "moment.", seconds)
    h = store.r.hgetall(keys.user(normal)) if normal else {}
    stored = h.get("password") or _DUMMY_HASH
    try:
        ok = _hasher.verify(stored, password or "") and stored is not _DUMMY_HASH
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or h.get("active") != "1":
        pipe = store.r.pipeline(transaction=True)
        for key, window in ((by_client, CLIENT_WINDOW_SECONDS), (throttle, LOGIN_WINDOW_SECONDS),
                            (by_account, LOGIN_WINDOW_SECONDS)):
            pipe.incr(key)
            pipe.expire(key, window, nx=True)
        pipe.execute()
        raise Invalid("Wrong email or password.", {"password": ["Wrong email or password."]})
    updates = {"last_sign_in_at": str(int(time.time()))}
    if _hasher.check_needs_rehash(stored):
        updates["password"] = _hasher.hash(password)
    store.r.hset(keys.user(normal), mapping=updates)
    return user_view(normal, {**h, **updates})


# What each role may do, in the console and through the API alike: area -> "read" or
# "write" (write includes read). Every console view (``requires``) and every API route
# (``web/api/auth.access``) names one area and action of this table.
#   dashboard: the dashboard and the funnel        lists: marketing lists and their members
#   templates, campaigns (suppressions are a campaign matter), forms (assets and their
#   form rules), imports (CSV imports; exports read the area they export)
#   people: leads, contacts, accounts, activities, tasks, qualify/disqualify
#   opportunities: opportunities, the pipeline and the conversion run
#   privacy: erasure of a person         settings: users, API keys, webhooks (admin only)
#   account: one's own sign-in (change my password): every role
ROLE_ACCESS: dict[str, dict[str, str]] = {
    "admin": {"dashboard": "write", "lists": "write", "templates": "write", "campaigns": "write",
              "forms": "write", "imports": "write", "people": "write", "opportunities": "write",
              "privacy": "write", "settings": "write", "account": "write"},
    "marketer": {"dashboard": "read", "lists": "write", "templates": "write", "campaigns": "write",
                 "forms": "write", "imports": "write", "people": "read", "privacy": "write",
                 "account": "write"},
    "sales": {"dashboard": "read", "people": "write", "opportunities": "write", "campaigns": "read",
              "account": "write"},
}
AREAS = tuple(sorted({area for table in ROLE_ACCESS.values() for area in table}))


def allowed(role: str | None, area: str, action: str = "read") -> bool:
    """Whether ``role`` may ``action`` ("read" or "write") in ``area`` (see ``ROLE_ACCESS``)."""
    level = ROLE_ACCESS.get(role or "", {}).get(area)
    return level == "write" or (level == "read" and action == "read")
