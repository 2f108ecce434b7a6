"""How memberships are stored (people/segments/members.py): bitmaps by person number and a
``s:<segment>`` field in each member's hash. Pages across bitmap chunks, sizes after moves,
a deleted segment and an erased person leave nothing behind, and nobody sees the fields."""

from __future__ import annotations

from typing import Any

import pytest

from outreach.campaigns import sources
from outreach.people.segments import build, catalog, members, membership
from outreach.platform import refs
from outreach.store.names.segments import segment_since_field

CHUNK_BITS = members.CHUNK * 8
DE = {"field": "country", "op": "eq", "value": "de"}


def _built(env: Any, rules: Any, member_type: str = "lead") -> dict[str, Any]:
    segment = catalog.create_segment(env.store, "S", member_type, rules)
    assert not build.build(env.store, segment["id"])
    return segment


def _lead_numbered(env: Any, n: int, email: str, **fields: Any) -> str:
    """Register ``email`` as lead number ``n`` (the id counter set just below it)."""
    env.store.r.hset(env.store.keys.sequences, "lead", n - 1)
    env.registered(email, **fields)
    lead_id = env.store.r.hget(env.store.keys.lead_by_email, email)
    assert refs.person_number(refs.lead_ref(lead_id)) == (refs.LEAD, n)
    return lead_id


def _api_pages(env: Any, segment_id: str, limit: int) -> list[str]:
    emails: list[str] = []
    cursor = None
    for _ in range(50):
        query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        body = env.get(f"/api/v1/segments/{segment_id}/members{query}").get_json()
        assert len(body["items"]) <= limit
        emails += [item["email"] for item in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            return emails
    raise AssertionError("paging did not end")


def test_person_numbers_round_trip_and_other_ids_have_none() -> None:
    assert refs.person_number("l:ld1z") == (refs.LEAD, 71)
    assert refs.person_number("c:ct0") == (refs.CONTACT, 0)
    assert refs.ref_of_number(refs.LEAD, 71) == "l:ld1z"
    for n in (1, 35, 36, 65_535, 65_536, 10**9):
        assert refs.person_number(refs.ref_of_number(refs.CONTACT, n)) == (refs.CONTACT, n)
    for odd in ("l:x1", "l:ld", "l:ld01", "l:LD1", "l:ld1-", "c:ld1", "x:ld1", "ld1", ""):
        assert refs.person_number(odd) is None, odd


def test_a_ref_without_a_number_cannot_be_a_member(env) -> None:
    pipe = env.store.r.pipeline(transaction=True)
    assert not members.add(env.store, pipe, "sg1", "l:x1", 1)
    assert not members.queue_check(env.store, pipe, "sg1", "l:x1")
    assert len(pipe) == 0


def test_members_page_across_chunks_in_creation_order(env) -> None:
    """Leads on both sides of a chunk's edge and past what one scan reads, a contact: every
    page size gives everyone once, leads then contacts, each in creation order."""
    numbers = [1, CHUNK_BITS - 1, CHUNK_BITS, CHUNK_BITS + 1,
               (members.MAX_CHUNKS + 3) * CHUNK_BITS + 7]
    emails = [f"p{n}@example.com" for n in numbers]
    for n, email in zip(numbers, emails, strict=True):
        _lead_numbered(env, n, email, country="DE")
    created = env.post("/api/v1/contacts", json={"email": "cy@example.com", "country": "DE"})
    assert created.status_code in (200, 201), created.get_json()
    segment = _built(env, DE, "any")
    expected = [*emails, "cy@example.com"]
    assert env.get(f"/api/v1/segments/{segment['id']}").get_json()["size"] == 6
    for limit in (1, 2, 5, 50):
        assert _api_pages(env, segment["id"], limit) == expected, limit
    csv = env.get(f"/api/v1/segments/{segment['id']}/members.csv").get_data(as_text=True)
    assert [line.split(",")[2] for line in csv.splitlines()[1:]] == expected
    # a campaign's audience pages the same bitmaps from a numeric position
    seen: list[str] = []
    after, done = 0, False
    while not done:
        groups, after, done, read = sources.source_page(env.store, ("segment", segment["id"]),
                                                        after, 2)
        assert read <= 2
        seen += [f"{kind}:{person_id}" for kind, ids in groups for person_id in ids]
    leads = [env.store.r.hget(env.store.keys.lead_by_email, e) for e in emails]
    assert seen == [f"lead:{i}" for i in leads] + [f"contact:{created.get_json()['id']}"]


def test_size_follows_moves_and_a_leaver_keeps_no_field(env) -> None:
    for email in ("ann@example.com", "bob@example.com", "cyd@example.com"):
        env.registered(email, country="DE")
    segment = _built(env, DE)
    assert members.size(env.store, segment["id"]) == 3
    bob = env.store.r.hget(env.store.keys.lead_by_email, "bob@example.com")
    bob_key = env.store.keys.person(refs.lead_ref(bob))
    assert set(members.segments_of(env.store.r.hgetall(bob_key))) == {segment["id"]}
    assert env.patch(f"/api/v1/leads/{bob}", json={"country": "AT"}).status_code == 200
    assert members.size(env.store, segment["id"]) == 2
    assert env.get(f"/api/v1/segments/{segment['id']}").get_json()["size"] == 2
    assert members.segments_of(env.store.r.hgetall(bob_key)) == {}
    assert env.patch(f"/api/v1/leads/{bob}", json={"country": "DE"}).status_code == 200
    assert members.size(env.store, segment["id"]) == 3
    assert members.segments_of(env.store.r.hgetall(bob_key)).keys() == {segment["id"]}


def test_a_deleted_segment_leaves_no_field_bit_or_due_entry(env, monkeypatch) -> None:
    real = members.delete  # two members a page: the walk goes on after cleared bits
    monkeypatch.setattr(members, "delete", lambda store, segment_id: real(store, segment_id, 2))
    emails = [f"p{i}@example.com" for i in range(5)]
    for email in emails:
        env.registered(email, country="DE")
    segment = _built(env, {"all": [DE, {"registered": {"asset": "guide", "within": "-P1D"}}]})
    other = _built(env, DE)
    assert env.store.r.zcard(env.store.keys.segment_due) == 5
    assert env.client.delete(f"/api/v1/segments/{segment['id']}",
                             headers=env.auth).status_code == 204
    for email in emails:
        lead_id = env.store.r.hget(env.store.keys.lead_by_email, email)
        h = env.store.r.hgetall(env.store.keys.person(refs.lead_ref(lead_id)))
        assert set(members.segments_of(h)) == {other["id"]}
    assert not env.store.r.exists(env.store.keys.segment_leads(segment["id"]),
                                  env.store.keys.segment_contacts(segment["id"]))
    assert not [d for d in env.store.r.zrange(env.store.keys.segment_due, 0, -1)
                if d.startswith(f"{segment['id']}|")]
    assert members.size(env.store, other["id"]) == 5


def test_an_erased_person_leaves_no_bit_even_when_the_worker_died(env, monkeypatch) -> None:
    from outreach.people.segments import dirty

    env.registered("ann@example.com", country="DE")
    env.registered("bob@example.com", country="DE")
    first, second = _built(env, DE), _built(env, {"field": "email", "op": "exists",
                                                 "value": True})
    ann = env.store.r.hget(env.store.keys.lead_by_email, "ann@example.com")
    _, n = refs.person_number(refs.lead_ref(ann)) or ("", -1)
    monkeypatch.setattr(dirty, "touch_many", lambda *a, **k: 0)  # dies before re-evaluating
    env.erase("ann@example.com")
    monkeypatch.undo()
    assert members.size(env.store, first["id"]) == 2  # still there until the beat
    membership.tick(env.store)
    for segment in (first, second):
        assert env.store.r.getbit(env.store.keys.segment_leads(segment["id"]), n) == 0
        assert members.size(env.store, segment["id"]) == 1


@pytest.mark.parametrize("path", ["/api/v1/leads/{lead}", "/api/v1/leads?email=ann@example.com"])
def test_nobody_sees_the_membership_fields(env, path) -> None:
    env.registered("ann@example.com", country="DE")
    segment = _built(env, DE)
    lead_id = env.store.r.hget(env.store.keys.lead_by_email, "ann@example.com")
    assert env.store.r.hget(env.store.keys.person(refs.lead_ref(lead_id)),
                            segment_since_field(segment["id"]))
    text = env.get(path.format(lead=lead_id)).get_data(as_text=True)
    assert f"s:{segment['id']}" not in text
    members_page = env.get(f"/api/v1/segments/{segment['id']}/members").get_data(as_text=True)
    assert f"s:{segment['id']}" not in members_page


def test_the_beat_moves_many_people_at_once_and_drops_a_deleted_segments_entries(env) -> None:
    """The due pairs of a tick are evaluated together (``evaluate_many``): every window that
    ended moves its person out, a pair whose window has not ended stays, and the entries of a
    segment whose record is gone (deleted while its entries were still being cleared) go."""
    import time

    emails = [f"p{i}@example.com" for i in range(12)]
    for email in emails:
        env.registered(email, country="DE")
    short = _built(env, {"all": [DE, {"registered": {"asset": "guide", "within": "-P1D"}}]})
    long = _built(env, {"registered": {"asset": "guide", "within": "-P7D"}})
    gone = _built(env, {"registered": {"asset": "guide", "within": "-P2D"}})
    keys = env.store.keys
    env.store.r.delete(keys.segment(gone["id"]))  # its record only: the entries remain
    env.store.r.zrem(keys.segments, gone["id"])
    assert env.store.r.zcard(keys.segment_due) == 36
    assert membership.tick(env.store, now=time.time() + 3 * 86_400, limit=100) == 24
    assert members.size(env.store, short["id"]) == 0
    assert members.size(env.store, long["id"]) == 12
    left = env.store.r.zrange(keys.segment_due, 0, -1)
    assert sorted(entry.partition("|")[0] for entry in left) == [long["id"]] * 12
