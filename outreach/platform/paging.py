"""Cursor pagination over sorted sets whose scores are unique, increasing sequence numbers."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from outreach.errors import Invalid, NotFound
from outreach.store import Store

T = TypeVar("T")


def encode_cursor(score: float) -> str:
    return base64.urlsafe_b64encode(repr(int(score)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return int(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("Validation failed.", {"cursor": ["Not a valid cursor."]}) from exc


def page(
    store: Store,
    zset_key: str,
    limit: int,
    cursor: str | None,
    load: Callable[[list[str]], Iterable[T | None]],
    newest_first: bool = False,
) -> dict[str, Any]:
    """Walk ``zset_key`` after ``cursor``; ``load`` turns ids into items or ``None`` (skipped).
    ``newest_first``: highest score first (the cursor then continues below its score)."""
    after = decode_cursor(cursor)
    items: list[T] = []
    last_score: float | None = None
    chunk = max(limit, 50)

    def rows_after(bound: int, num: int) -> list[Any]:
        if newest_first:
            return store.r.zrevrangebyscore(zset_key, f"({bound}" if bound else "+inf", "-inf",
                                            start=0, num=num, withscores=True)
        return store.r.zrangebyscore(zset_key, f"({bound}", "+inf", start=0, num=num,
                                     withscores=True)

    while len(items) < limit:
        rows = rows_after(after, chunk)
        if not rows:
            return {"items": items, "next_cursor": None}
        ids = [member for member, _ in rows]
        for (_, score), item in zip(rows, load(ids), strict=True):
            after = int(score)
            if item is None:
                continue
            items.append(item)
            last_score = score
            if len(items) == limit:
                break
        if len(rows) < chunk and len(items) < limit:
            return {"items": items, "next_cursor": None}
    more = rows_after(int(last_score), 1)  # type: ignore[arg-type]
    return {"items": items, "next_cursor": encode_cursor(last_score) if more else None}


def existing_hash(store: Store, key: str, what: str, item_id: str) -> dict[str, str]:
    """HGETALL of ``key``; 404 ``No <what> '<id>'.`` when there is no such record."""
    h = store.r.hgetall(key)
    if not h:
        raise NotFound(f"No {what} {item_id!r}.")
    return h


def load_hashes(store: Store, key_for: Callable[[str], str], ids: list[str]) -> list[dict[str, str]]:
    """HGETALL of each id's key, in one round trip."""
    pipe = store.r.pipeline(transaction=False)
    for item_id in ids:
        pipe.hgetall(key_for(item_id))
    return pipe.execute()


def page_of_hashes(
    store: Store, zset_key: str, key_for: Callable[[str], str],
    view: Callable[[str, dict[str, str]], T], limit: int, cursor: str | None,
    newest_first: bool = False,
) -> dict[str, Any]:
    """``page`` over ids whose records are hashes: ``view(id, hash)`` for each that exists."""

    def load(ids: list[str]) -> list[T | None]:
        rows = load_hashes(store, key_for, ids)
        return [view(i, h) if h else None for i, h in zip(ids, rows, strict=True)]

    return page(store, zset_key, limit, cursor, load, newest_first)
