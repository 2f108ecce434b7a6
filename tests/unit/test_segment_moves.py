"""Membership moves are announced with the move itself: ``segment.entered``/``exited``
webhooks for subscribers (none for a segment's first build, none twice for a repeated
re-evaluation), and entries in the ``segment_moves`` stream for segments something listens
to, read by consumer groups that get a dead consumer's entries again."""

from __future__ import annotations

import json
from typing import Any

from outreach.people.segments import build, membership, moves

GERMANY = {"field": "country", "op": "eq", "value": "DE"}


def _events(env: Any, event: str) -> list[dict[str, Any]]:
    keys = env.store.keys
    out = []
    for delivery_id in env.store.r.zrange(keys.webhook_due, 0, -1):
        h = env.store.r.hgetall(keys.webhook_delivery(delivery_id))
        if h.get("event") == event:
            out.append(json.loads(h["body"]))
    return out


def _segment(env: Any, rules: Any) -> str:
    response = env.post("/api/v1/segments", json={"name": "S", "member_type": "lead",
                                                  "rules": rules})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _lead_id(env: Any, email: str) -> str:
    return env.get(f"/api/v1/leads?email={email}").get_json()["items"][0]["id"]


def test_webhooks_announce_moves_after_the_first_build_once(env) -> None:
    hook = env.post("/api/v1/webhooks", json={"url": "https://93.184.215.14/in",
                                              "events": ["segment.entered", "segment.exited"]})
    assert hook.status_code == 201, hook.get_json()
    env.registered("ann@example.com", country="DE")
    segment_id = _segment(env, GERMANY)
    assert not build.build(env.store, segment_id)
    assert _events(env, "segment.entered") == []  # the first build announces nothing
    env.registered("bob@example.com", country="DE")
    entered = _events(env, "segment.entered")
    assert [e["data"] for e in entered] == [{"segment_id": segment_id, "person": {
        "type": "lead", "id": _lead_id(env, "bob@example.com"), "email": "bob@example.com"}}]
    ref = f"l:{_lead_id(env, 'bob@example.com')}"
    membership.touch(env.store, ref, [membership.ANY])  # a repeated re-evaluation: no event
    assert len(_events(env, "segment.entered")) == 1
    assert env.patch(f"/api/v1/leads/{_lead_id(env, 'ann@example.com')}",
                     json={"country": "FR"}).status_code == 200
    exited = _events(env, "segment.exited")
    assert [e["data"]["person"]["email"] for e in exited] == ["ann@example.com"]


def test_the_stream_carries_moves_of_listened_segments_to_each_group(env) -> None:
    segment_id = _segment(env, GERMANY)
    other_id = _segment(env, {"field": "country", "op": "eq", "value": "FR"})
    for s in (segment_id, other_id):
        build.build(env.store, s)
    env.registered("ann@example.com", country="DE")
    assert env.store.r.xlen(env.store.keys.segment_moves) == 0  # nobody listens yet
    moves.listen(env.store, [segment_id])
    env.registered("bob@example.com", country="DE")
    env.registered("cy@example.com", country="FR")  # a segment nobody listens to
    got = moves.claim(env.store, "journeys", "w1")
    assert [(f["segment_id"], f["move"]) for _, f in got] == [(segment_id, "in")]
    assert got[0][1]["ref"] == f"l:{_lead_id(env, 'bob@example.com')}"
    # a second group reads the same entries; the stream is kept until both have them
    later = moves.claim(env.store, "other", "w1")
    assert [entry_id for entry_id, _ in later] == [got[0][0]]
    moves.done(env.store, "journeys", [got[0][0]])
    assert env.store.r.xlen(env.store.keys.segment_moves) == 1
    moves.done(env.store, "other", [later[0][0]])
    assert env.store.r.xlen(env.store.keys.segment_moves) == 0
    moves.listen(env.store, [segment_id], -1)
    assert not env.store.r.hexists(env.store.keys.segment_move_listeners, segment_id)


def test_a_dead_consumers_entries_are_claimed_again(env, monkeypatch) -> None:
    segment_id = _segment(env, GERMANY)
    build.build(env.store, segment_id)
    moves.listen(env.store, [segment_id])
    env.registered("bob@example.com", country="DE")
    assert len(moves.claim(env.store, "journeys", "dead")) == 1  # never acknowledged
    assert moves.claim(env.store, "journeys", "w2") == []  # not idle long enough yet
    monkeypatch.setattr(moves, "CLAIM_IDLE_MS", 0)
    again = moves.claim(env.store, "journeys", "w2")
    assert [f["move"] for _, f in again] == ["in"]
    moves.done(env.store, "journeys", [entry_id for entry_id, _ in again])
    assert moves.claim(env.store, "journeys", "w3") == []


def test_moves_of_several_people_settled_together_are_each_announced_once(env) -> None:
    """One settling transaction announces every person's moves (entered and exited, one
    event each, with the right person), the stream's entries too."""
    hook = env.post("/api/v1/webhooks", json={"url": "https://93.184.215.14/in",
                                              "events": ["segment.entered", "segment.exited"]})
    assert hook.status_code == 201, hook.get_json()
    germans = [f"de{i}@example.com" for i in range(3)]
    french = [f"fr{i}@example.com" for i in range(3)]
    for email in germans:
        env.registered(email, country="DE")
    for email in french:
        env.registered(email, country="FR")
    segment_id = _segment(env, GERMANY)
    build.build(env.store, segment_id)
    moves.listen(env.store, [segment_id])
    people = {email: f"l:{_lead_id(env, email)}" for email in germans + french}
    pipe = env.store.r.pipeline()
    for email, ref in people.items():  # everyone moves to the other country at once
        pipe.hset(env.store.keys.lead(ref[2:]), "country", "FR" if email in germans else "DE")
    pipe.execute()
    assert membership.touch_many(env.store, list(people.values()), ["field:country"]) == 6
    entered = sorted(e["data"]["person"]["email"] for e in _events(env, "segment.entered"))
    exited = sorted(e["data"]["person"]["email"] for e in _events(env, "segment.exited"))
    assert (entered, exited) == (french, germans)
    ids = [e["id"] for e in _events(env, "segment.entered") + _events(env, "segment.exited")]
    assert len(set(ids)) == 6
    got = moves.claim(env.store, "journeys", "w1")
    assert sorted((f["ref"], f["move"]) for _, f in got) == sorted(
        (people[email], "in" if email in french else "out") for email in people)
