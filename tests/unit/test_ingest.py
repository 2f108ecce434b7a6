"""Ingest: deduplication into leads or contacts, merge rules, scores, lists, idempotency."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach.people.ingest import apply_batch
from outreach.people.intake import accept_registration

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
PROFILE = ("first_name", "last_name", "job_title", "company", "phone", "mobile_phone", "street",
           "city", "state", "postal_code", "country", "topic")


def lead_of(env, status: dict) -> dict:
    assert status["status"] == "processed" and status["person"]["type"] == "lead", status
    return env.get(f"/api/v1/leads/{status['person']['id']}").get_json()


# --- merge rules ----------------------------------------------------------------------


def test_new_non_empty_value_replaces_empty_never_erases(env) -> None:
    first = lead_of(env, env.registered(first_name="Ann", company="Acme", city="Paris",
                                        topic="Cloud"))
    second = lead_of(env, env.registered(first_name="Anne", company="", city="   ",
                                         asset="other"))
    assert second["id"] == first["id"]
    assert second["first_name"] == "Anne"
    assert second["company"] == "Acme"
    assert second["city"] == "Paris"
    assert second["topic"] == "Cloud"


def test_consent_once_given_stays(env) -> None:
    lead = lead_of(env, env.registered(consent=False))
    assert lead["consent"] is False
    assert lead_of(env, env.registered(consent=True, asset="b"))["consent"] is True
    assert lead_of(env, env.registered(consent=False, asset="c"))["consent"] is True
    assert lead_of(env, env.registered(asset="d"))["consent"] is True


def test_every_registration_is_kept_in_history(env) -> None:
    for kind, asset in [("white_paper", "a"), ("white_paper", "a"), ("event", "b")]:
        status = env.registered(kind=kind, asset=asset)
    lead = lead_of(env, status)
    assert [(r["kind"], r["asset"]) for r in lead["registrations"]] == [
        ("white_paper", "a"), ("white_paper", "a"), ("event", "b")]
    assert all(ISO.match(r["at"]) for r in lead["registrations"])
    assert ISO.match(lead["created_at"]) and ISO.match(lead["updated_at"])


def test_lead_has_every_field_of_the_contract(env) -> None:
    lead = lead_of(env, env.registered())
    expected = {"id", "email", *PROFILE, "consent", "status", "disqualify_reason", "score",
                "registrations", "created_at", "updated_at"}
    assert expected <= set(lead)
    assert lead["status"] == "new" and lead["disqualify_reason"] is None and lead["score"] == 0


@pytest.mark.parametrize(
    ("sequence", "score"),
    [
        ([("white_paper", "a")], 0),
        ([("white_paper", "a"), ("white_paper", "a")], 0),  # the same asset twice
        ([("white_paper", "a"), ("white_paper", "b")], 10),  # a new asset
        ([("white_paper", "a"), ("event", "e")], 20),  # an event after a white paper
        ([("event", "e"), ("white_paper", "a")], 10),
        ([("event", "e"), ("event", "e")], 0),
        ([("white_paper", "a"), ("event", "e"), ("event", "e"), ("white_paper", "a")], 20),
        ([("event", "a"), ("event", "b"), ("event", "c")], 20),
    ],
)
def test_repeat_registrations_score(env, sequence, score: int) -> None:
    for kind, asset in sequence:
        assert env.register(kind=kind, asset=asset).status_code == 202
        env.drain()  # one at a time
    (lead,) = env.get("/api/v1/leads").get_json()["items"]
    assert lead["score"] == score


def test_scores_the_same_whether_drained_together_or_one_by_one(make_env) -> None:
    sequence = [("white_paper", "a"), ("event", "e"), ("white_paper", "b"), ("event", "e")]
    scores = []
    for one_by_one in (True, False):
        with make_env() as env:
            for kind, asset in sequence:
                env.register(kind=kind, asset=asset)
                if one_by_one:
                    env.drain()
            env.drain()
            scores.append(env.get("/api/v1/leads").get_json()["items"][0]["score"])
    assert scores[0] == scores[1] == 30


def _expected_score(sequence: list[tuple[str, str]], w_repeat: int, w_event: int) -> int:
    score, seen = 0, []
    for kind, asset in sequence:
        if seen and (kind, asset) not in seen:
            score += w_repeat
            if kind == "event" and any(k == "white_paper" for k, _ in seen):
                score += w_event
        seen.append((kind, asset))
    return score


_value = st.one_of(st.none(), st.just(""), st.just("  "), st.sampled_from(["A", "B", " C ", "Dé"]))
_registration = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["white_paper", "event"]),
        "asset": st.sampled_from(["a", "b", "c"]),  # made the kind's below: "wa", "eb"...
        "consent": st.one_of(st.none(), st.booleans()),
        "email": st.sampled_from(["Ann@Example.com", "ann@example.com", " ANN@EXAMPLE.COM"]),
    },
    optional={name: _value for name in ("first_name", "company", "city", "topic", "phone")},
).map(lambda r: {**r, "asset": r["kind"][0] + r["asset"]})  # one kind per slug (issue 17)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_registration, min_size=1, max_size=6), st.sets(st.integers(0, 5)))
def test_merge_model(make_env, registrations: list[dict], drain_after: set[int]) -> None:
    """Whatever the order and batching, the lead is what the merge rules say."""
    with make_env() as env:
        ids = []
        for i, reg in enumerate(registrations):
            body = {k: v for k, v in reg.items() if v is not None}
            response = env.client.post("/api/v1/registrations", json=body)
            assert response.status_code == 202, response.get_json()
            ids.append(response.get_json()["id"])
            if i in drain_after:
                env.drain()
        env.drain()
        (lead,) = env.get("/api/v1/leads").get_json()["items"]

        for name in ("first_name", "company", "city", "phone"):
            given_values = [(r.get(name) or "").strip() for r in registrations]
            expected = next((v for v in reversed(given_values) if v), None)
            assert lead[name] == expected, name
        topics = [(r.get("topic") or "").strip() for r in registrations]
        first = registrations[0]
        default_topic = f"{first['kind']}: {first['asset']}"
        assert lead["topic"] == next((t for t in reversed(topics) if t), default_topic)
        assert lead["consent"] is any(r["consent"] for r in registrations)
        sequence = [(r["kind"], r["asset"]) for r in registrations]
        assert [(r["kind"], r["asset"]) for r in lead["registrations"]] == sequence
        assert lead["score"] == _expected_score(sequence, env.config.score_repeat_registration,
                                                env.config.score_event_after_white_paper)
        # every registration is processed, for this lead, into its asset's lead list
        lists = {}
        for rid, (kind, asset) in zip(ids, sequence, strict=True):
            status = env.get(f"/api/v1/registrations/{rid}").get_json()
            assert status["status"] == "processed"
            assert status["person"] == {"type": "lead", "id": lead["id"]}
            (list_id,) = status["lists"]
            assert lists.setdefault((kind, asset), list_id) == list_id
        all_lists = env.get("/api/v1/lists").get_json()["items"]
        assert len(all_lists) == 2 * len(lists)  # a lead and a contact list per asset
        for list_id in lists.values():
            members = env.get(f"/api/v1/lists/{list_id}/members").get_json()["items"]
            assert [m["id"] for m in members] == [lead["id"]]


# --- lists per asset ------------------------------------------------------------------


def test_each_asset_gets_two_parallel_lists_on_first_registration(env) -> None:
    assert env.get("/api/v1/lists").get_json()["items"] == []
    env.registered(kind="event", asset="summit")
    lists = env.get("/api/v1/lists").get_json()["items"]
    assert len(lists) == 2
    by_type = {item["member_type"]: item for item in lists}
    lead_list, contact_list = by_type["lead"], by_type["contact"]
    assert lead_list["parallel_list_id"] == contact_list["id"]
    assert contact_list["parallel_list_id"] == lead_list["id"]
    for item in lists:
        assert item["asset"] == {"kind": "event", "slug": "summit"}
    assert (lead_list["size"], contact_list["size"]) == (1, 0)

    env.registered(email="bob@example.com", kind="event", asset="summit")
    lists = env.get("/api/v1/lists").get_json()["items"]
    assert len(lists) == 2  # not created again
    assert {item["member_type"]: item["size"] for item in lists} == {"lead": 2, "contact": 0}

    # same slug, other kind: a 422 on kind (issue 17; it made another asset before)
    response = env.register(kind="white_paper", asset="summit")
    assert response.status_code == 422 and list(response.get_json()["error"]["fields"]) == ["kind"]
    assert len(env.get("/api/v1/lists").get_json()["items"]) == 2


def test_repeat_registration_does_not_duplicate_membership(env) -> None:
    a = env.registered()
    b = env.registered()
    assert a["lists"] == b["lists"]
    members = env.get(f"/api/v1/lists/{a['lists'][0]}/members").get_json()["items"]
    assert len(members) == 1


# --- known contacts -------------------------------------------------------------------


def test_a_contacts_address_attaches_to_the_contact_and_its_list(env) -> None:
    created = env.post("/api/v1/contacts", json={"email": "Boss@Example.com", "first_name": "B",
                                                 "company": "Acme"})
    assert created.status_code == 201
    contact = created.get_json()
    # with an API key: an authenticated write replaces a contact's fields (without one they
    # are only proposed, see test_public_door.py)
    status = env.registered(email=" boss@EXAMPLE.com", kind="event", asset="summit",
                            first_name="Bea", company="", consent=True, headers=env.auth)
    assert status["status"] == "processed"
    assert status["person"] == {"type": "contact", "id": contact["id"]}
    (list_id,) = status["lists"]
    the_list = env.get(f"/api/v1/lists/{list_id}").get_json()
    assert the_list["member_type"] == "contact"
    assert the_list["asset"] == {"kind": "event", "slug": "summit"}
    members = env.get(f"/api/v1/lists/{list_id}/members").get_json()["items"]
    assert [(m["id"], m["type"]) for m in members] == [(contact["id"], "contact")]
    lead_list = env.get(f"/api/v1/lists/{the_list['parallel_list_id']}").get_json()
    assert (lead_list["member_type"], lead_list["size"]) == ("lead", 0)
    assert env.get("/api/v1/leads").get_json()["items"] == []  # no lead for a known contact

    after = env.get(f"/api/v1/contacts/{contact['id']}").get_json()
    assert after["first_name"] == "Bea"  # a new value replaces
    assert after["company"] == "Acme"  # an empty one never erases
    assert after["consent"] is True
    env.registered(email="boss@example.com", kind="event", asset="other", consent=False)
    after = env.get(f"/api/v1/contacts/{contact['id']}").get_json()
    assert after["consent"] is True
    assert [(r["kind"], r["asset"]) for r in after["registrations"]] == [
        ("event", "summit"), ("event", "other")]


def test_contact_created_after_a_lead_takes_later_registrations(env) -> None:
    lead = lead_of(env, env.registered(email="ann@example.com"))
    contact = env.post("/api/v1/contacts", json={"email": "ann@example.com"}).get_json()
    status = env.registered(email="ann@example.com", asset="next")
    assert status["person"] == {"type": "contact", "id": contact["id"]}
    assert len(env.get(f"/api/v1/leads/{lead['id']}").get_json()["registrations"]) == 1


# --- idempotency ----------------------------------------------------------------------


def snapshot(store, mask_times: bool = False) -> dict:
    """Everything under the store's prefix, by key, in a comparable form."""
    r = store.r
    out = {}
    for key in r.scan_iter(match=store.keys.tag + ":*"):
        kind = r.type(key)
        if kind == "hash":
            value = r.hgetall(key)
            if mask_times:
                value = {f: v for f, v in value.items() if f not in ("created_at", "updated_at")}
        elif kind == "zset":
            value = r.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = sorted(r.smembers(key))
        elif kind == "string":
            value = r.get(key)
        elif kind == "list":
            value = r.lrange(key, 0, -1)
        elif kind == "stream":
            value = (r.xrange(key), r.xinfo_groups(key))
        else:  # pragma: no cover
            value = kind
        out[key] = value
    return out


def _queue(env, registrations: list[dict], at: int | None = None) -> list:
    """Queue registrations (through intake, or as intake writes them with a fixed time)."""
    for reg in registrations:
        if at is None:
            accept_registration(env.store, env.config, reg, client="test")
        else:
            payload = {**{k: v for k, v in reg.items() if v}, "at": at}
            env.store.r.xadd(env.store.keys.intake_stream, {"d": json.dumps(payload)})
    env.store.ensure_ingest_group()
    keys = env.store.keys
    batch = env.store.r.xreadgroup(keys.ingest_group, "c1", {keys.intake_stream: ">"})
    return batch[0][1] if batch else []


_queued = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["white_paper", "event"]),
        "asset": st.sampled_from(["a", "b"]),
        "email": st.sampled_from(["ann@example.com", "bob@example.com", "boss@example.com"]),
        "consent": st.booleans(),
    },
    optional={"first_name": st.sampled_from(["A", "B", ""]), "city": st.sampled_from(["X", ""])},
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_queued, min_size=1, max_size=8), st.booleans(), st.data())
def test_applying_the_same_batch_twice_changes_nothing(make_env, registrations, with_contact,
                                                       data) -> None:
    with make_env() as env:
        if with_contact:
            env.post("/api/v1/contacts", json={"email": "boss@example.com"})
        entries = _queue(env, registrations)
        assert len(entries) == len(registrations)
        assert apply_batch(env.store, env.config, entries) == len(entries)
        once = snapshot(env.store)
        # the whole batch again, or any part of it (a redelivery after a crash)
        again = data.draw(st.lists(st.sampled_from(entries), max_size=len(entries)))
        apply_batch(env.store, env.config, entries)
        apply_batch(env.store, env.config, again)
        assert snapshot(env.store) == once
        assert env.drain().processed == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_queued, min_size=1, max_size=8), st.data())
def test_batch_boundaries_do_not_matter(make_env, registrations, data) -> None:
    states = []
    cuts = sorted(data.draw(st.sets(st.integers(1, len(registrations)), max_size=3)))
    for split in (False, True):
        with make_env() as env:
            entries = _queue(env, registrations, at=1_790_000_000)
            # scores are scaled to the decay's epoch, which starts at the first use: the
            # same one in both worlds
            env.store.r.hset(env.store.keys.score_decay, mapping={
                "epoch": "1789000000.0", "half_life": repr(env.config.score_half_life_days * 86400)})
            bounds = [0, *cuts, len(entries)] if split else [0, len(entries)]
            for start, end in zip(bounds, bounds[1:], strict=False):
                apply_batch(env.store, env.config, entries[start:end])
            state = snapshot(env.store, mask_times=True)
            tag = env.store.keys.tag
            # the same registration ids are stream ids of two different streams: compare by order
            regs = {}
            for key in [k for k in state if k.startswith(f"{tag}:regs:")]:
                regs.update(state.pop(key))
            state = {k.removeprefix(tag): v for k, v in state.items()
                     if not k.endswith(":apikeys") and not k.endswith(":intake")}
            states.append((state, [regs[e[0]] for e in entries]))
    assert states[0] == states[1]


def test_drain_twice_processes_once(env) -> None:
    env.register()
    env.register(email="bob@example.com")
    assert env.drain().processed == 2
    before = snapshot(env.store)
    assert env.drain().processed == 0
    assert snapshot(env.store) == before


# --- the stream: malformed entries, crashed consumers ---------------------------------


@pytest.mark.parametrize("payload", [
    "not json",
    json.dumps([1, 2]),
    json.dumps({"kind": "event", "asset": "x"}),
    json.dumps({"kind": "event", "asset": "x", "email": "nope"}),
    json.dumps({"kind": "webinar", "asset": "x", "email": "a@example.com"}),
    json.dumps({"kind": "event", "asset": "", "email": "a@example.com"}),
    json.dumps({"kind": "event", "asset": "a:b;c", "email": "a@example.com"}),
    json.dumps({"kind": "event", "asset": 5, "email": "a@example.com"}),
    json.dumps({"kind": "event", "asset": "x\n", "email": "a@example.com"}),
    json.dumps({"kind": "event", "asset": "x", "email": 5}),
    json.dumps({"kind": ["event"], "asset": "x", "email": "a@example.com"}),
    json.dumps({"kind": "event", "asset": "x", "email": "a@example.com", "at": "soon"}),
    json.dumps({"kind": "event", "asset": "x", "email": "a@example.com", "at": [1]}),
])
def test_malformed_entries_are_rejected_without_blocking_the_stream(env, payload: str) -> None:
    keys = env.store.keys
    bad = env.store.r.xadd(keys.intake_stream, {"d": payload})
    good = env.register(email="good@example.com").get_json()["id"]
    result = env.drain()
    assert result.processed == 2
    assert env.get(f"/api/v1/registrations/{bad}").get_json()["status"] == "rejected"
    assert env.get(f"/api/v1/registrations/{good}").get_json()["status"] == "processed"
    assert env.store.r.xlen(keys.intake_stream) == 0
    (lead,) = env.get("/api/v1/leads").get_json()["items"]
    assert lead["email"] == "good@example.com"


def test_entry_without_payload_is_rejected(env) -> None:
    rid = env.store.r.xadd(env.store.keys.intake_stream, {"other": "1"})
    env.drain()
    assert env.get(f"/api/v1/registrations/{rid}").get_json()["status"] == "rejected"


def test_entries_left_by_a_dead_consumer_are_taken_over(make_env) -> None:
    with make_env(ingest_claim_idle_ms=0) as env:
        rid = env.register().get_json()["id"]
        keys = env.store.keys
        env.store.ensure_ingest_group()
        # a worker reads the entry and dies before applying it
        read = env.store.r.xreadgroup(keys.ingest_group, "dead", {keys.intake_stream: ">"})
        assert read[0][1][0][0] == rid
        assert env.drain().processed == 1
        assert env.get(f"/api/v1/registrations/{rid}").get_json()["status"] == "processed"
        assert env.store.r.xpending(keys.intake_stream, keys.ingest_group)["pending"] == 0


def test_entries_of_a_live_consumer_are_left_alone(make_env) -> None:
    with make_env(ingest_claim_idle_ms=10**9) as env:
        rid = env.register().get_json()["id"]
        keys = env.store.keys
        env.store.ensure_ingest_group()
        env.store.r.xreadgroup(keys.ingest_group, "busy", {keys.intake_stream: ">"})
        result = env.drain()
        assert result.processed == 0
        assert result.recheck_in > 0
        assert env.get(f"/api/v1/registrations/{rid}").get_json()["status"] == "accepted"


def test_drain_processes_more_than_one_batch(make_env) -> None:
    with make_env(ingest_batch_size=3) as env:
        for i in range(10):
            env.register(email=f"p{i}@example.com")
        assert env.drain().processed == 10
        assert len(env.get("/api/v1/leads").get_json()["items"]) == 10


def test_a_large_batch_is_applied_and_acknowledged(make_env):
    with make_env(ingest_batch_size=5000) as env:
        for i in range(1200):
            assert env.register(f"bulk{i}@example.com").status_code == 202
        assert env.drain().processed == 1200
        assert env.store.r.xlen(env.store.keys.intake_stream) == 0
        assert env.store.r.zcard(env.store.keys.leads) == 1200


def test_processing_results_are_kept_per_day_for_the_configured_time(make_env) -> None:
    with make_env(registration_status_days=7) as env:
        ids = [env.register(email=f"p{n}@example.com").get_json()["id"] for n in range(3)]
        env.drain()
        keys = {env.store.keys.registrations(i) for i in ids}
        assert all(key.startswith(env.store.keys.tag + ":regs:") for key in keys)
        for key in keys:
            assert 6 * 86_400 < env.store.r.ttl(key) <= 7 * 86_400
        assert env.get(f"/api/v1/registrations/{ids[0]}").get_json()["status"] == "processed"
        counted = env.store.r.hget(env.store.keys.metrics, "registrations_processed")
        assert counted == "3"
        metrics = env.client.get("/metrics").get_data(as_text=True)
        assert "outreach_registrations_processed_total 3" in metrics
        # once the day's results are gone the id is unknown, not an error
        env.store.r.delete(*keys)
        assert env.get(f"/api/v1/registrations/{ids[0]}").status_code == 404


def test_results_land_in_the_day_of_the_registration_id(env) -> None:
    keys = env.store.keys
    assert keys.registrations("86399999-0") == keys.registrations("0-5")
    assert keys.registrations("86400000-0") != keys.registrations("86399999-0")


def test_history_entries_name_the_asset_by_its_list_and_stay_short(env) -> None:
    slug = "a-white-paper-with-a-long-descriptive-slug-2026"
    status = env.registered(asset=slug)
    lead_key = env.store.keys.lead(status["person"]["id"])
    entry = env.store.r.hget(lead_key, "regs")
    assert slug not in entry and len(entry) < 16
    assert lead_of(env, status)["registrations"][0]["asset"] == slug
    listed = env.get(f"/api/v1/leads?list={status['lists'][0]}").get_json()["items"]
    assert listed[0]["registrations"][0]["asset"] == slug


def test_histories_written_in_earlier_formats_still_read_and_score(env) -> None:
    status = env.registered(asset="guide")
    lead_key = env.store.keys.lead(status["person"]["id"])
    # an entry of the first format and one of the second, for the same asset and another
    env.store.r.hset(lead_key, "regs", "white_paper:old-paper:1790000000;w:guide:tlpwu8")
    env.registered(asset="guide")  # the same asset again: no repeat score
    lead = lead_of(env, status)
    assert lead["score"] == 0
    assert [(r["kind"], r["asset"]) for r in lead["registrations"]] == [
        ("white_paper", "old-paper"), ("white_paper", "guide"), ("white_paper", "guide")]
    assert lead["registrations"][0]["at"] == "2026-09-21T14:13:20Z"
    env.registered(kind="event", asset="summit")  # an event after (old-format) white papers
    assert lead_of(env, status)["score"] == 20


def test_registrations_of_reads_every_entry_format() -> None:
    from outreach.people.records import registrations_of

    history = "white_paper:old:1790000000;e:summit:tlpwu8;w1a:tlpwu8"
    assert registrations_of(history, {"ls1a": "guide"}) == [
        {"kind": "white_paper", "asset": "old", "at": "2026-09-21T14:13:20Z"},
        {"kind": "event", "asset": "summit", "at": "2026-09-21T14:13:20Z"},
        {"kind": "white_paper", "asset": "guide", "at": "2026-09-21T14:13:20Z"},
    ]


def test_lead_created_once_per_new_lead_only_when_subscribed(env) -> None:
    import io

    from outreach.people.imports.run import Options, run_import
    from outreach.platform import webhooks

    def events() -> list[dict]:
        keys = env.store.keys
        out = []
        for delivery_id in env.store.r.zrange(keys.webhook_due, 0, -1):
            h = env.store.r.hgetall(keys.webhook_delivery(delivery_id))
            out.append({**json.loads(h["body"]), "webhook_id": h["webhook_id"]})
        return out

    regs = [{"kind": "white_paper", "asset": "guide", "email": e}
            for e in ("ann@example.com", "bob@example.com", "ANN@example.com")]
    # nobody subscribed: the script answers a count, no event is made
    entries = _queue(env, regs[:1])
    assert apply_batch(env.store, env.config, entries) == 1 and events() == []
    hook = env.post("/api/v1/webhooks", json={"url": "https://93.184.215.14/in",
                                              "events": ["lead.created"]})
    env.post("/api/v1/webhooks", json={"url": "https://93.184.215.14/x", "events": ["lead.qualified"]})
    assert hook.status_code == 201, hook.get_json()  # a literal public address: no DNS
    entries = _queue(env, regs)
    assert apply_batch(env.store, env.config, entries) == 3
    apply_batch(env.store, env.config, entries)  # redelivered: creates nothing, announces nothing
    got = events()
    assert [e["data"]["lead"]["email"] for e in got] == ["bob@example.com"]
    assert got[0]["type"] == "lead.created" and got[0]["webhook_id"] == hook.get_json()["id"]
    assert got[0]["data"]["lead"]["registrations"][0]["asset"] == "guide"
    # an import announces the leads it creates, not the ones it updates
    csv = b"Email\nbob@example.com\ncy@example.com\n"
    run_import(env.store, env.config, io.BytesIO(csv), Options(asset="fair"))
    assert [e["data"]["lead"]["email"] for e in events()] == ["bob@example.com", "cy@example.com"]
    assert len({e["id"] for e in events()}) == 2
    assert webhooks.subscribers(env.store, "lead.created") == [hook.get_json()["id"]]
