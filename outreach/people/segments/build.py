"""Building a new or edited segment: every lead, then every contact, evaluated a page at a
time from a position kept on the segment (``build_position``, ``build_done``), so a build
survives a crash of its worker and reports its progress. A page is evaluated at once
(``membership.evaluate_many``: its facts in a few round trips, its moves in a few
transactions). Changes that happen meanwhile are already evaluated by ``touch`` (the segment
is indexed from the moment it is saved)."""

from __future__ import annotations

import time

from redis.exceptions import WatchError

from outreach.people.segments.membership import evaluate_many
from outreach.platform import refs
from outreach.store import Store

PAGE = 500


def build_page(store: Store, segment_id: str, page: int = PAGE, now: float | None = None) -> bool:
    """Evaluate the next page of people for ``segment_id``; ``True`` while more is left."""
    keys = store.keys
    key = keys.segment(segment_id)
    state, position, done, generation = store.r.hmget(
        key, "build_state", "build_position", "build_done", "build_generation")
    if state != "building":
        store.r.zrem(keys.segment_builds, segment_id)
        return False
    if position == "l:0" and not int(done or 0):
        store.r.hset(key, "build_total", store.r.zcard(keys.leads) + store.r.zcard(keys.contacts))
    kind, _, after = (position or "l:0").partition(":")
    source = keys.leads if kind == "l" else keys.contacts
    rows = store.r.zrangebyscore(source, f"({after}", "+inf", start=0, num=page, withscores=True)
    person_ref = refs.lead_ref if kind == "l" else refs.contact_ref
    evaluate_many(store, {person_ref(person_id): {segment_id} for person_id, _ in rows}, now,
                  every_due=True)
    if len(rows) == page:
        following = f"{kind}:{int(rows[-1][1])}"
    elif kind == "l":
        following = "c:0"
    else:
        following = ""
    with store.r.pipeline(transaction=True) as pipe:
        # an edit meanwhile restarted the build (a new generation): leave its position alone
        pipe.watch(key)
        if pipe.hget(key, "build_generation") != generation:
            pipe.unwatch()
            return True
        again = pipe.hget(key, "build_again")
        pipe.multi()
        pipe.hincrby(key, "build_done", len(rows))
        if following:
            pipe.hset(key, "build_position", following)
        elif again:  # asked for again while under way: once more from the start
            pipe.hset(key, mapping={"build_position": "l:0", "build_done": 0, "build_total": 0})
            pipe.hincrby(key, "build_generation", 1)
            pipe.hdel(key, "build_again")
            following = "l:0"
        else:
            pipe.hset(key, mapping={"build_state": "ready", "build_position": "",
                                    "built_at": int(time.time() if now is None else now)})
            pipe.zrem(keys.segment_builds, segment_id)
        try:
            pipe.execute()
        except WatchError:
            return True
    return bool(following)


def build(store: Store, segment_id: str, time_budget: float = 20.0, now: float | None = None) -> bool:
    """Pages of ``segment_id`` until done or the budget is spent; ``True`` while more is left."""
    deadline = time.monotonic() + time_budget
    while build_page(store, segment_id, now=now):
        if time.monotonic() > deadline:
            return True
    return False


def pending_builds(store: Store) -> list[str]:
    """The segments whose build is under way (the beat carries each on)."""
    return list(store.r.zrange(store.keys.segment_builds, 0, -1))
