"""API keys: shown once at creation, stored only as a SHA-256 hash, each with a role.

A key either has a role of its own (``outreach api-key create NAME --role marketer``; no
flag: ``admin``) or acts for a console user (``--user EMAIL``): that user is then the
author (``by``) of what the key does, the default owner of its tasks, ``me`` in
``?owner=me``, and the key has the user's role *as it is now* — a role change applies at
once, and a disabled or deleted user's keys are refused (401). A key without a user acts
as ``api-key:<name>``. What a role may do is ``users.ROLE_ACCESS``, for keys as for pages.

``last_used_at`` is written at most once a minute per key (a ``SET NX EX 60`` guard), so a
busy key costs one small extra command per request, not a write.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from outreach.errors import Invalid, NotFound
from outreach.platform.users import ROLES, get_user
from outreach.store import Store
from outreach.vocabulary import iso

DEFAULT_ROLE = "admin"
TOUCH_SECONDS = 60


def _digest(key: str) -> str:
    """The only form a key is stored or looked up in.

    Checking a presented key is a lookup of its SHA-256 digest, never a comparison of the
    key itself: whatever time the lookup's string comparison takes depends on how many
    leading characters of the *digest* match a stored digest, and digests of guesses are
    unrelated to the secret (finding a key from a digest prefix is a preimage search), so
    timing reveals nothing usable about a key. ``api_key_identity`` also compares the
    stored digest with ``hmac.compare_digest`` so that no ``==`` on secret material is left.
    """
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(store: Store, name: str, user: str | None = None,
                   role: str | None = None) -> str:
    """A new key. ``user``: the (already checked) email of the console user it acts for (the
    key then has that user's role); else ``role`` (default ``admin``)."""
    if not name or len(name) > 100:
        raise Invalid("Validation failed.", {"name": ["A name of 1 to 100 characters."]})
    if user and role:
        raise Invalid("Validation failed.", {"role": ["A key acting for a user has the user's role."]})
    if role is not None and role not in ROLES:
        raise Invalid("Validation failed.", {"role": [f"One of: {', '.join(ROLES)}."]})
    key = "ok_" + secrets.token_urlsafe(32)
    digest = _digest(key)
    fields: dict[str, Any] = {"name": name, "created_at": int(time.time()), "digest": digest}
    if user:
        fields["user"] = user
    else:
        fields["role"] = role or DEFAULT_ROLE
    store.r.hset(store.keys.api_keys, digest, json.dumps(fields))
    return key


def _record(raw: str | None) -> dict[str, Any]:
    try:
        record = json.loads(raw) if raw is not None else {}
    except ValueError:
        record = {}
    return record if isinstance(record, dict) else {}


def api_key_identity(store: Store, key: str) -> dict[str, Any] | None:
    """``{"name", "user", "role"}`` of a usable key (``user`` None when it acts for nobody),
    else None: unknown, revoked, or acting for a user who is disabled or gone."""
    if not key:
        return None
    digest = _digest(key)
    keys = store.keys
    raw = store.r.hget(keys.api_keys, digest)
    if raw is None:
        return None
    record = _record(raw)
    stored = record.get("digest")
    if stored is not None and not hmac.compare_digest(str(stored), digest):
        return None
    user = record.get("user") or None
    pipe = store.r.pipeline(transaction=False)
    if user:
        pipe.hmget(keys.user(user), ["role", "active", "password"])
    pipe.set(keys.api_key_touched(digest), "1", nx=True, ex=TOUCH_SECONDS)
    answers = pipe.execute()
    if user:
        role, active, password = answers[0]
        if active != "1" or not password:
            return None
    else:
        role = record.get("role") or DEFAULT_ROLE
    if answers[-1]:  # first use this minute: note it
        store.r.hset(keys.api_keys_used, digest, int(time.time()))
    return {"name": record.get("name") or "key", "user": user, "role": role}


def find_api_keys(store: Store, user: str | None = None) -> list[dict[str, Any]]:
    """Every key (or those acting for ``user``) as ``{"id", "name", "role", "user",
    "created_at", "last_used_at"}`` (ISO times), newest first; ``id`` is the first 12 hex
    digits of the stored digest (names a key without revealing it). A user's key shows the
    user's current role."""
    keys = store.keys
    found = []
    for digest, raw in store.r.hscan_iter(keys.api_keys):
        record = _record(raw)
        if user is not None and record.get("user") != user:
            continue
        found.append({"id": digest[:12], "digest": digest, "name": record.get("name") or "key",
                      "user": record.get("user") or None, "role": record.get("role"),
                      "created": int(record.get("created_at") or 0)})
    used = store.r.hmget(keys.api_keys_used, [k["digest"] for k in found]) if found else []
    roles: dict[str, str | None] = {}
    for k in found:
        if k["user"] and k["user"] not in roles:
            try:
                roles[k["user"]] = get_user(store, k["user"])["role"]
            except NotFound:
                roles[k["user"]] = None
    out = []
    for k, last in zip(found, used, strict=True):
        role = roles.get(k["user"]) if k["user"] else (k["role"] or DEFAULT_ROLE)
        out.append({"id": k["id"], "name": k["name"], "role": role, "user": k["user"],
                    "created": k["created"], "last_used_at": iso(last) if last else None})
    out.sort(key=lambda k: (-k["created"], k["name"]))
    return [{**k, "created_at": iso(k.pop("created"))} for k in out]


def _revoke(store: Store, digests: list[str]) -> None:
    pipe = store.r.pipeline(transaction=True)
    pipe.hdel(store.keys.api_keys, *digests)
    pipe.hdel(store.keys.api_keys_used, *digests)
    pipe.execute()


def revoke_api_key(store: Store, name: str) -> int:
    """Revokes every key called ``name``; how many (NotFound when none)."""
    digests = [d for d, raw in store.r.hscan_iter(store.keys.api_keys)
               if (_record(raw).get("name") or "key") == name]
    if not digests:
        raise NotFound(f"No API key {name!r}.")
    _revoke(store, digests)
    return len(digests)


def revoke_api_key_by_id(store: Store, key_id: str) -> str | None:
    """Revokes the key whose digest starts with ``key_id`` (12 hex digits); its name, or
    None when no single key matches."""
    if len(key_id) != 12 or any(c not in "0123456789abcdef" for c in key_id):
        return None
    matches = [(d, raw) for d, raw in store.r.hscan_iter(store.keys.api_keys, match=f"{key_id}*")]
    if len(matches) != 1:
        return None
    digest, raw = matches[0]
    _revoke(store, [digest])
    return str(_record(raw).get("name") or "key")
