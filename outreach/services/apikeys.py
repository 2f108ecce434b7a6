"""Marketer API keys: shown once at creation, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import json
import secrets
import time

from outreach.store import Store


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(store: Store, name: str) -> str:
    key = "ok_" + secrets.token_urlsafe(32)
    record = json.dumps({"name": name, "created_at": int(time.time())})
    store.r.hset(store.keys.api_keys, _digest(key), record)
    return key


def check_api_key(store: Store, key: str) -> bool:
    return bool(key) and bool(store.r.hexists(store.keys.api_keys, _digest(key)))


def revoke_api_key(store: Store, key: str) -> bool:
    return bool(store.r.hdel(store.keys.api_keys, _digest(key)))
