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


def check_api_key(store: Store, key: str) -> bool:
    return api_key_identity(store, key) is not None


def revoke_api_key(store: Store, key: str) -> bool:
    return bool(store.r.hdel(store.keys.api_keys, _digest(key)))
