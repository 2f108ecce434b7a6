"""Ingest re-evaluates a batch at once (``membership.settle``): for what each registration
changed, with the facts of everyone loaded in a few pipelined round trips and the moves of
everyone in one transaction, so the round trips do not grow with the people in the batch;
and the memberships equal a brute-force evaluation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from outreach.people import ingest
from outreach.people.segments import build, members, membership
from outreach.people.segments.evaluate import evaluate
from outreach.people.segments.facts import load
from outreach.platform import refs

RULES = [
    {"field": "country", "op": "eq", "value": "DE"},
    {"registered": {"asset": "guide"}},
    {"field": "score", "op": "gte", "value": 5},
    {"all": [{"field": "company", "op": "contains", "value": "acme"},
             {"field": "status", "op": "eq", "value": "new"}]},
    {"not": {"field": "email_domain", "op": "eq", "value": "example.org"}},
]


def _saved(env: Any) -> list[tuple[str, dict[str, Any]]]:
    saved = []
    for i, tree in enumerate(RULES):
        response = env.post("/api/v1/segments", json={"name": f"S{i}", "member_type": "lead",
                                                      "rules": tree})
        assert response.status_code == 201, response.get_json()
        saved.append((response.get_json()["id"], tree))
    first = saved[0][0]
    nested = {"any": [{"in_segment": first}, {"field": "city", "op": "eq", "value": "Nowhere"}]}
    response = env.post("/api/v1/segments", json={"name": "N", "member_type": "lead",
                                                  "rules": nested})
    saved.append((response.get_json()["id"], nested))
    for segment_id, _ in saved:
        assert not build.build(env.store, segment_id)
    return saved


def _queue(env: Any, registrations: list[dict[str, Any]]) -> None:
    for data in registrations:
        env.store.r.xadd(env.store.keys.intake_stream, {"d": json.dumps(data)})


def _brute_force(env: Any, segment_id: str, tree: dict[str, Any],
                 answers: dict[str, set[str]]) -> set[str]:
    out = set()
    for lead_id in env.store.r.zrange(env.store.keys.leads, 0, -1):
        ref = refs.lead_ref(lead_id)
        facts = load(env.store, ref, [tree])
        assert facts is not None
        facts.segments = {s: 0.0 for s, members in answers.items() if ref in members}
        if membership.eligible("lead", facts) and evaluate(tree, facts, membership.time.time()).value:
            out.add(ref)
    return out


def _trips_for_batches(env: Any, monkeypatch: Any, round_trips: Any,
                       people: int) -> tuple[int, int]:
    """Round trips of draining ``people`` new leads as one batch, then their repeat
    registrations (new field values, a new asset) as another."""
    saved = _saved(env)
    _queue(env, [{"email": "warm@example.com", "kind": "white_paper", "asset": "other"}])
    env.drain()  # the first drain stores the score decay: not what is counted
    emails = [f"p{i}@example.com" for i in range(people)]
    trips = round_trips(env.store)
    counted = []
    for batch in ([{"email": e, "kind": "white_paper", "asset": "other", "country": "FR",
                    "company": "Beta"} for e in emails],
                  [{"email": e, "kind": "white_paper", "asset": "guide", "country": "DE",
                    "company": "Acme"} for e in emails]):
        _queue(env, batch)
        trips.count = 0
        env.drain()
        counted.append(trips.count)
    first, second = counted
    monkeypatch.undo()
    answers: dict[str, set[str]] = {}
    for segment_id, tree in saved:
        answers[segment_id] = _brute_force(env, segment_id, tree, answers)
        assert set().union(*members.pages(env.store, segment_id)) == answers[segment_id], tree
    # every segment moved the repeat registrants in (the nested one through the first)
    for segment_id, _ in saved[:4] + saved[5:]:
        assert {refs.lead_ref(env.store.r.hget(env.store.keys.lead_by_email, e))
                for e in emails} <= answers[segment_id]
    assert env.store.r.scard(env.store.keys.segment_dirty) == 0
    return first, second


def test_an_ingest_batch_is_settled_in_round_trips_independent_of_its_size(
        make_env, monkeypatch, round_trips) -> None:
    with make_env(ingest_batch_size=500) as env:
        small = _trips_for_batches(env, monkeypatch, round_trips, 3)
    with make_env(ingest_batch_size=500) as env:
        large = _trips_for_batches(env, monkeypatch, round_trips, 60)
    assert small == large
    # the drain's own commands (read, script, ack, pending...) and, per round of moves: the
    # readers, the definitions, WATCH, the facts (at most three), the transaction
    assert max(large) <= 30


def test_the_repeat_registration_re_evaluates_only_the_segments_reading_what_it_changed(
        env, monkeypatch) -> None:
    saved = _saved(env)
    _queue(env, [{"email": "ann@example.com", "kind": "white_paper", "asset": "guide"}])
    env.drain()
    evaluated: list[set[str]] = []
    real = membership._batch_round

    def spy(store: Any, batch: dict[str, dict[str, Any]], *args: Any) -> Any:
        evaluated.append({s for segments in batch.values() for s in segments})
        return real(store, batch, *args)

    monkeypatch.setattr(membership, "_batch_round", spy)
    # the same asset again, only a new city: nothing any segment reads but the score
    # (unchanged: no new asset), the updated_at and the regs history
    _queue(env, [{"email": "ann@example.com", "kind": "white_paper", "asset": "guide",
                  "city": "Berlin"}])
    env.drain()
    by_rule = {json.dumps(tree): s for s, tree in saved}
    assert by_rule[json.dumps(RULES[0])] not in evaluated[0]  # country: not written
    assert by_rule[json.dumps(RULES[1])] in evaluated[0]  # registered: the regs history


@pytest.mark.parametrize("chunk", [64, 3])
def test_a_person_changed_during_the_batch_is_done_again_and_the_rest_in_halves(
        env, monkeypatch, chunk) -> None:
    """Another worker changes one person between the batch's WATCH and its transaction: the
    transaction (of the whole batch; with ``chunk`` 3, the one of the three people holding
    them) fails as a whole, its halves are done again, and every answer is on the newest
    data (the changed person's too)."""
    from outreach.people.segments import facts as facts_module

    monkeypatch.setattr(membership, "WATCH_CHUNK", chunk)

    saved = _saved(env)
    emails = [f"p{i}@example.com" for i in range(8)]
    _queue(env, [{"email": e, "kind": "white_paper", "asset": "other", "country": "FR"}
                 for e in emails])
    env.drain()
    real = facts_module.load_many
    raced: list[int] = []

    def load_many(store: Any, people: list[str], *args: Any, **kwargs: Any) -> Any:
        loaded = real(store, people, *args, **kwargs)
        if not raced and len(people) > 1:  # another worker: p3's company is Beta after all
            raced.append(len(people))
            lead_id = store.r.hget(store.keys.lead_by_email, "p3@example.com")
            store.r.hset(store.keys.lead(lead_id), "company", "Beta")
        return loaded

    monkeypatch.setattr(membership, "load_many", load_many)
    _queue(env, [{"email": e, "kind": "white_paper", "asset": "guide", "company": "Acme"}
                 for e in emails])
    env.drain()
    monkeypatch.undo()
    assert raced == [8]
    answers: dict[str, set[str]] = {}
    for segment_id, tree in saved:
        answers[segment_id] = _brute_force(env, segment_id, tree, answers)
        assert set().union(*members.pages(env.store, segment_id)) == answers[segment_id], tree
    p3 = refs.lead_ref(env.store.r.hget(env.store.keys.lead_by_email, "p3@example.com"))
    acme = answers[saved[3][0]]  # company contains acme: the batch had loaded p3's Acme
    assert p3 not in acme and len(acme) == 7
    assert env.store.r.scard(env.store.keys.segment_dirty) == 0


def _members_match_brute_force(env: Any, saved: list[tuple[str, dict[str, Any]]]) -> None:
    answers: dict[str, set[str]] = {}
    for segment_id, tree in saved:
        answers[segment_id] = _brute_force(env, segment_id, tree, answers)
        assert set().union(*members.pages(env.store, segment_id)) == answers[segment_id], tree


def test_the_drain_task_hands_settling_to_another_task(env, monkeypatch) -> None:
    """The worker's drain applies the stream and hands its people to
    ``outreach.ingest.settle`` (the worker processes settle them side by side): until that
    task runs they are marked dirty and no segment has them; once it runs every segment is
    right."""
    from tasks import ingest as ingest_tasks

    saved = _saved(env)
    handed: list[tuple[list[str], dict[str, Any]]] = []
    monkeypatch.setattr(ingest_tasks.settle, "apply_async",
                        lambda args, **options: handed.append((args[0], options)))
    _queue(env, [{"email": f"p{i}@example.com", "kind": "white_paper", "asset": "guide",
                  "country": "DE"} for i in range(5)])
    ingest.drain(env.store, env.config, "test-consumer", settle=ingest_tasks.settle_elsewhere)
    assert len(handed) == 1 and len(handed[0][0]) == 5
    assert handed[0][1]["queue"] == "ingest"
    assert env.store.r.scard(env.store.keys.segment_dirty) == 5
    assert members.count(env.store, saved[0][0], refs.LEAD) == 0
    with env.app.app_context():
        ingest_tasks.settle.run(handed[0][0])
    _members_match_brute_force(env, saved)
    assert members.count(env.store, saved[0][0], refs.LEAD) == 5
    assert env.store.r.scard(env.store.keys.segment_dirty) == 0


def test_a_drain_whose_broker_refuses_the_hand_over_settles_the_batch_itself(
        env, monkeypatch) -> None:
    from kombu.exceptions import OperationalError

    from tasks import ingest as ingest_tasks

    saved = _saved(env)

    def refuse(*args: Any, **options: Any) -> None:
        raise OperationalError("broker down")

    monkeypatch.setattr(ingest_tasks.settle, "apply_async", refuse)
    _queue(env, [{"email": f"p{i}@example.com", "kind": "white_paper", "asset": "guide",
                  "country": "DE"} for i in range(3)])
    ingest.drain(env.store, env.config, "test-consumer", settle=ingest_tasks.settle_elsewhere)
    _members_match_brute_force(env, saved)
    assert members.count(env.store, saved[0][0], refs.LEAD) == 3
    assert env.store.r.scard(env.store.keys.segment_dirty) == 0


def _held(env: Any, monkeypatch: Any, **limits: Any) -> tuple[list[list[str]], list[int]]:
    """Drain 10 new people and then 2 of them again (batches of 4), handing what the drain
    holds to a spy that notes each hand-over and how many registrations were applied by
    then; returns (the hand-overs, applied counts)."""
    for name, value in limits.items():
        monkeypatch.setattr(ingest, name, value)
    emails = [f"p{i}@example.com" for i in range(10)]
    _queue(env, [{"email": e, "kind": "white_paper", "asset": "other", "country": "FR"}
                 for e in emails])
    _queue(env, [{"email": e, "kind": "white_paper", "asset": "guide", "company": "Acme"}
                 for e in emails[:2]])
    handed: list[list[str]] = []
    applied: list[int] = []

    def spy(store: Any, reported: list[str]) -> None:
        handed.append(list(reported))
        applied.append(len(store.r.hgetall(store.keys.lead_by_email)))
        ingest.settle_touched(store, reported)

    result = ingest.drain(env.store, env.config, "test-consumer", settle=spy)
    assert result.processed == 12
    return handed, applied


def test_a_drain_holds_its_people_until_the_stream_is_empty_and_hands_each_once(
        make_env, monkeypatch) -> None:
    """Settling waits for the stream (the registrations reach their lists first); then
    everyone the batches changed is handed over once, with all that changed about them,
    ``SETTLE_CHUNK`` people a hand-over; the segments equal brute force."""
    with make_env(ingest_batch_size=4) as env:
        saved = _saved(env)
        handed, applied = _held(env, monkeypatch, SETTLE_CHUNK=3)
        assert [len(chunk) for chunk in handed] == [3, 3, 3, 1]
        assert applied == [10, 10, 10, 10]  # nothing settled before the last batch was in
        refs_handed = [entry.partition("\t")[0] for chunk in handed for entry in chunk]
        assert len(refs_handed) == len(set(refs_handed)) == 10
        p0 = refs.lead_ref(env.store.r.hget(env.store.keys.lead_by_email, "p0@example.com"))
        tokens = next(entry.partition("\t")[2].split() for chunk in handed for entry in chunk
                      if entry.startswith(p0 + "\t"))
        # created by the first registration, then a new asset and a company by the repeat
        assert {membership.ANY, "field:regs", "field:company"} <= set(tokens)
        _members_match_brute_force(env, saved)
        assert members.count(env.store, saved[1][0], refs.LEAD) == 2  # registered: guide
        assert env.store.r.scard(env.store.keys.segment_dirty) == 0


@pytest.mark.parametrize(("limits", "hand_overs"), [
    ({"SETTLE_AFTER": 0.0}, 3),  # held too long: after every batch
    ({"SETTLE_HOLD": 5}, 2),  # too many held: after the second batch (8), then the rest
])
def test_a_drain_that_keeps_finding_entries_hands_over_what_it_holds_on_the_way(
        make_env, monkeypatch, limits, hand_overs) -> None:
    with make_env(ingest_batch_size=4) as env:
        saved = _saved(env)
        handed, applied = _held(env, monkeypatch, **limits)
        assert len(handed) == hand_overs
        assert applied[0] < 10
        _members_match_brute_force(env, saved)
        assert env.store.r.scard(env.store.keys.segment_dirty) == 0


def test_a_drain_that_dies_holding_people_leaves_them_to_the_beat(
        make_env, monkeypatch) -> None:
    """The store fails on the third batch: the two batches applied were held, not yet
    settled; their people stay marked dirty, and the beat's tick settles them."""
    import redis

    with make_env(ingest_batch_size=4) as env:
        saved = _saved(env)
        real = ingest.apply_batch
        calls: list[int] = []

        def failing(store: Any, *args: Any, **kwargs: Any) -> int:
            calls.append(1)
            if len(calls) == 3:
                raise redis.ConnectionError("store gone")
            return real(store, *args, **kwargs)

        monkeypatch.setattr(ingest, "apply_batch", failing)
        handed: list[list[str]] = []
        _queue(env, [{"email": f"p{i}@example.com", "kind": "white_paper", "asset": "guide",
                      "country": "DE"} for i in range(10)])
        with pytest.raises(redis.ConnectionError):
            ingest.drain(env.store, env.config, "test-consumer",
                         settle=lambda store, reported: handed.append(reported))
        assert handed == []
        assert env.store.r.scard(env.store.keys.segment_dirty) == 8
        assert members.count(env.store, saved[0][0], refs.LEAD) == 0
        membership.tick(env.store)
        _members_match_brute_force(env, saved)
        assert members.count(env.store, saved[0][0], refs.LEAD) == 8
        assert env.store.r.scard(env.store.keys.segment_dirty) == 0
