"""Paging: one cursor walker with a scan budget, and pages of sorted sets whose scores are
unique, increasing sequence numbers.

``walk`` is the only cursor loop: every listing that reads its source a chunk at a time
(a sorted set by score or by rank, an HSCAN or SSCAN, several sources one after another)
gives it a *step* and gets pages, cursors and a bound on the work of one request.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from outreach.errors import Invalid, NotFound
from outreach.store import Store

T = TypeVar("T")

SCAN_BUDGET = 10_000
"""Source rows one request may examine: a filter that matches little returns a shorter page
(with a cursor to go on) rather than reading a million rows in one request."""

Step = Callable[[str, int], "tuple[list[tuple[T, str | None]], str | None, int]"]
"""``step(position, size)``: one chunk of the source from ``position`` (about ``size`` rows):
``(its matching items in order, each with the position right after it or None, the next
chunk's position or None at the end, rows read)``. A source whose rows have no position of
their own (a SCAN) gives None: a cursor then skips the items already returned from the chunk,
which reading the same position again gives in the same order."""


def bad_cursor() -> Invalid:
    return Invalid("Validation failed.", {"cursor": ["Not a valid cursor."]})


def int_position(position: str) -> int:
    """A step's numeric position; a 422 on ``cursor`` when the cursor carried anything else."""
    if not position.isdigit() or len(position) > 20:
        raise bad_cursor()
    return int(position)


def _encode_walk(position: str, skip: int) -> str:
    text = position if skip == 0 else f"{position}~{skip}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_walk(cursor: str | None, start: str) -> tuple[str, int]:
    if not cursor:
        return start, 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_cursor() from exc
    position, _, skip = text.partition("~")
    if not position or len(text) > 64 or (skip and not skip.isdigit()):
        raise bad_cursor()
    return position, int(skip or 0)


def cursor_position(cursor: str | None, start: str = "0") -> str:
    """The position a ``walk`` cursor continues from (``start`` without one)."""
    return _decode_walk(cursor, start)[0]


def walk(step: Step[Any], *, limit: int, cursor: str | None, start: str = "0",
         size: int | None = None, any_left: Callable[[str], bool] | None = None,
         scan_budget: int = SCAN_BUDGET, deadline: float | None = None,
         build: Callable[[list[Any]], list[Any]] | None = None) -> dict[str, Any]:
    """``{"items", "next_cursor"}``: up to ``limit`` items from ``cursor`` (or ``start``).

    The cursor is the position of a chunk and how many of its items were already returned.
    At most ``scan_budget`` source rows are read; a page cut short by it still carries a
    cursor. ``any_left(position)``, when given, tells whether anything follows a page that
    ended exactly at a chunk's end (so the last page has no cursor); without it such a page
    keeps a cursor, whose page may be empty. ``deadline`` (``time.perf_counter()``) ends the
    walk after the chunk that passes it, as the scan budget does. ``build``, when given,
    turns the matches a page keeps into its items (work for the page only, not for every
    match of a chunk)."""
    position, skip = _decode_walk(cursor, start)
    size = size or max(limit, 100)
    items: list[T] = []
    scanned = 0
    while True:
        matches, following, read = step(position, max(1, min(size, scan_budget - scanned)))
        scanned += read
        matches = matches[skip:]
        room = limit - len(items)
        if len(matches) > room:
            items += [item for item, _ in matches[:room]]
            after = matches[room - 1][1] if room else None
            resume = _encode_walk(after, 0) if after is not None else _encode_walk(position, skip + room)
            return {"items": build(items) if build else items, "next_cursor": resume}
        items += [item for item, _ in matches]
        if following is None:
            return {"items": build(items) if build else items, "next_cursor": None}
        position, skip = following, 0
        if (len(items) >= limit or scanned >= scan_budget
                or (deadline is not None and time.perf_counter() > deadline)):
            if any_left is not None and not any_left(position):
                return {"items": build(items) if build else items, "next_cursor": None}
            return {"items": build(items) if build else items, "next_cursor": _encode_walk(position, 0)}


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

    def rows_after(bound: int, num: int) -> list[Any]:
        if newest_first:
            return store.r.zrevrangebyscore(zset_key, f"({bound}" if bound else "+inf", "-inf",
                                            start=0, num=num, withscores=True)
        return store.r.zrangebyscore(zset_key, f"({bound}", "+inf", start=0, num=num,
                                     withscores=True)

    def step(position: str, size: int) -> tuple[list[tuple[T, str | None]], str | None, int]:
        rows = rows_after(int_position(position), size)
        loaded = load([member for member, _ in rows])
        matches = [(item, str(int(score))) for (_, score), item in zip(rows, loaded, strict=True)
                   if item is not None]
        following = str(int(rows[-1][1])) if len(rows) == size else None
        return matches, following, len(rows)

    return walk(step, limit=limit, cursor=cursor, size=max(limit, 50),
                any_left=lambda position: bool(rows_after(int_position(position), 1)))


def walk_by_rank(read: Callable[[int, int], list[str]],
                 load: Callable[[list[str]], Iterable[T | None]], *, limit: int,
                 cursor: str | None, size: int | None = None) -> dict[str, Any]:
    """``walk`` over a source read by rank: ``read(offset, count)`` gives ids in order (a
    ZRANGE / ZREVRANGE / ZRANGEBYSCORE ... LIMIT), ``load`` their items or None (skipped)."""

    def step(position: str, size: int) -> tuple[list[tuple[T, str | None]], str | None, int]:
        offset = int_position(position)
        ids = read(offset, size)
        loaded = load(ids)
        matches = [(item, str(offset + i + 1)) for i, item in enumerate(loaded) if item is not None]
        return matches, (str(offset + len(ids)) if len(ids) == size else None), len(ids)

    return walk(step, limit=limit, cursor=cursor, size=size,
                any_left=lambda position: bool(read(int_position(position), 1)))


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
