"""Marketer API keys: shown once at creation, stored only as a SHA-256 hash.

A key may act for a console user (``outreach api-key create NAME --user EMAIL``): that
user is then the author (``by``) of what the key does, the default owner of its tasks and
``me`` in ``?owner=me``. A key without a user acts as ``api-key:<name>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from outreach.store import Store
from outreach.vocabulary import iso


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


def create_api_key(store: Store, name: str, user: str | None = None) -> str:
    """A new key; ``user``: the (already checked) email of the console user it acts for."""
    key = "ok_" + secrets.token_urlsafe(32)
    digest = _digest(key)
    fields: dict[str, Any] = {"name": name, "created_at": int(time.time()), "digest": digest}
    if user:
        fields["user"] = user
    store.r.hset(store.keys.api_keys, digest, json.dumps(fields))
    return key


def api_key_identity(store: Store, key: str) -> dict[str, Any] | None:
    """``{"name", "user"}`` of a known key (``user`` None when it acts for nobody), else None."""
    if not key:
        return None
    digest = _digest(key)
    raw = store.r.hget(store.keys.api_keys, digest)
    if raw is None:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        record = {}
    stored = record.get("digest") if isinstance(record, dict) else None
    if stored is not None and not hmac.compare_digest(str(stored), digest):
        return None
    return {"name": record.get("name") or "key", "user": record.get("user") or None}


def find_api_keys(store: Store) -> list[dict[str, Any]]:
    """Every key as ``{"id", "name", "user", "created_at"}`` (ISO time), newest first; ``id`` is the
    first 12 hex digits of the stored digest (names a key without revealing it)."""
    found = []
    for digest, raw in store.r.hscan_iter(store.keys.api_keys):
        try:
            record = json.loads(raw)
        except ValueError:
            record = {}
        if not isinstance(record, dict):
            record = {}
        found.append({"id": digest[:12], "name": record.get("name") or "key",
                      "user": record.get("user") or None,
                      "created": int(record.get("created_at") or 0)})
    found.sort(key=lambda k: (-k["created"], k["name"]))
    return [{**k, "created_at": iso(k.pop("created"))} for k in found]


def revoke_api_key_by_id(store: Store, key_id: str) -> str | None:
    """Revokes the key whose digest starts with ``key_id`` (12 hex digits); its name, or
    None when no single key matches."""
    if len(key_id) != 12 or any(c not in "0123456789abcdef" for c in key_id):
        return None
    matches = [(d, raw) for d, raw in store.r.hscan_iter(store.keys.api_keys, match=f"{key_id}*")]
    if len(matches) != 1:
        return None
    digest, raw = matches[0]
    store.r.hdel(store.keys.api_keys, digest)
    try:
        return str(json.loads(raw).get("name") or "key")
    except (ValueError, AttributeError):
        return "key"
