"""Marketer API keys: shown once at creation, stored only as a SHA-256 hash.

A key may act for a console user (``outreach api-key create NAME --user EMAIL``): that
user is then the author (``by``) of what the key does, the default owner of its tasks and
``me`` in ``?owner=me``. A key without a user acts as ``api-key:<name>``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

from outreach.store import Store


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(store: Store, name: str, user: str | None = None) -> str:
    """A new key; ``user``: the (already checked) email of the console user it acts for."""
    key = "ok_" + secrets.token_urlsafe(32)
    fields: dict[str, Any] = {"name": name, "created_at": int(time.time())}
    if user:
        fields["user"] = user
    store.r.hset(store.keys.api_keys, _digest(key), json.dumps(fields))
    return key


def api_key_identity(store: Store, key: str) -> dict[str, Any] | None:
    """``{"name", "user"}`` of a known key (``user`` None when it acts for nobody), else None."""
    if not key:
        return None
    raw = store.r.hget(store.keys.api_keys, _digest(key))
    if raw is None:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        record = {}
    return {"name": record.get("name") or "key", "user": record.get("user") or None}


def check_api_key(store: Store, key: str) -> bool:
    return api_key_identity(store, key) is not None


def revoke_api_key(store: Store, key: str) -> bool:
    return bool(store.r.hdel(store.keys.api_keys, _digest(key)))
