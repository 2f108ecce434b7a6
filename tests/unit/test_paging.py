"""The one cursor walker (platform/paging.walk) against a brute-force answer: following the
cursors gives exactly the matching items, in order, each once, whatever the page size,
the chunk size, the filter and the scan budget."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.people.suppressions import find_suppressions
from outreach.platform import paging


def _follow(fetch: Any, limit: int) -> list[Any]:
    items, cursor, pages = [], None, 0
    while True:
        found = fetch(cursor, limit)
        assert len(found["items"]) <= limit
        items += found["items"]
        cursor = found["next_cursor"]
        pages += 1
        assert pages < 500
        if cursor is None:
            return items


@settings(max_examples=80, deadline=None)
@given(values=st.lists(st.integers(0, 9), max_size=60), limit=st.integers(1, 12),
       size=st.integers(1, 15), budget=st.integers(1, 40), keep=st.sets(st.integers(0, 9)))
def test_walk_by_rank_gives_every_match_once_in_order(values, limit, size, budget, keep) -> None:
    def read(offset: int, count: int) -> list[str]:
        return [str(i) for i in range(offset, min(offset + count, len(values)))]

    def load(ids: list[str]) -> list[int | None]:
        return [values[int(i)] if values[int(i)] in keep else None for i in ids]

    def fetch(cursor: str | None, limit: int) -> dict[str, Any]:
        def step(position: str, chunk: int) -> Any:
            offset = paging.int_position(position)
            ids = read(offset, chunk)
            matches = [(v, str(offset + i + 1)) for i, v in enumerate(load(ids)) if v is not None]
            return matches, (str(offset + len(ids)) if len(ids) == chunk else None), len(ids)
        return paging.walk(step, limit=limit, cursor=cursor, size=size, scan_budget=budget)

    assert _follow(fetch, limit) == [v for v in values if v in keep]
    by_rank = _follow(lambda c, n: paging.walk_by_rank(read, load, limit=n, cursor=c, size=size),
                      limit)
    assert by_rank == [v for v in values if v in keep]


@settings(max_examples=25, deadline=None)
@given(count=st.integers(0, 40), erased=st.integers(0, 12), limit=st.integers(1, 9),
       reason=st.sampled_from([None, "unsubscribed", "hard_bounce", "erased"]))
def test_suppressions_page_by_scan_with_skips(make_env, count, erased, limit, reason) -> None:
    with make_env() as env:
        keys = env.store.keys
        expected = []
        for i in range(count):
            value = "unsubscribed" if i % 3 else f"bounced:cp{i}"
            env.store.r.hset(keys.suppressed, f"p{i}@example.com", value)
            if reason in (None, "unsubscribed" if i % 3 else "hard_bounce"):
                expected.append(f"p{i}@example.com")
        digests = [f"{i:064x}" for i in range(erased)]
        if digests:
            env.store.r.sadd(keys.erased, *digests)
        found = _follow(lambda c, n: find_suppressions(env.store, reason=reason, limit=n, cursor=c),
                        limit)
        addresses = [f["email"] for f in found if f["email"]]
        assert sorted(addresses) == sorted(expected) and len(addresses) == len(set(addresses))
        hashes = [f["email_hash"] for f in found if f["reason"] == "erased"]
        assert sorted(hashes) == (sorted(digests) if reason in (None, "erased") else [])


def test_a_cursor_that_is_not_one_is_a_422(env) -> None:
    import pytest

    from outreach.errors import Invalid

    for bad in ("zz", "!!", "eA", paging._encode_walk("x1", 0), paging._encode_walk("a1", 0) + "~"):
        with pytest.raises(Invalid):
            find_suppressions(env.store, cursor=bad)
