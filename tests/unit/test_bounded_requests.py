"""Request paths do bounded work (issue 18): the audience count runs on a click, in Redis,
cached; an account's contacts come from its index; list members are added one script per
chunk; retry-failed is a job (tests/unit/test_outbox.py)."""

from __future__ import annotations

from typing import Any

from outreach.campaigns import audience
from outreach.people import lists
from outreach.platform import paging


def test_the_draft_campaign_page_counts_the_audience_only_on_a_click(cenv) -> None:
    from outreach.platform.users import create_user

    campaign_id = cenv.campaign([cenv.leads("a@example.com", "b@example.com")])
    create_user(cenv.store, "m@example.com", "marketer", "correct horse battery")
    import re

    login = cenv.client.get("/console/login").data
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', login).group(1).decode()
    cenv.client.post("/console/login", data={"email": "m@example.com",
                                              "password": "correct horse battery",
                                              "csrf_token": csrf})
    page = cenv.client.get(f"/console/campaigns/{campaign_id}").get_data(as_text=True)
    assert 'hx-trigger="click"' in page and 'hx-trigger="load' not in page


def test_the_audience_count_is_kept_in_redis_and_cached(cenv, monkeypatch) -> None:
    list_a = cenv.leads("a@example.com", "b@example.com", "c@example.com")
    list_b = cenv.manual_list("a@example.com", "b@example.com")
    cenv.store.r.hset(cenv.store.keys.suppressed, "c@example.com", "unsubscribed")
    campaign_id = cenv.campaign([list_a, list_b])
    counted = audience.campaign_audience(cenv.store, campaign_id)
    assert counted == {"members": 5, "addresses": 3, "sendable": 2, "suppressed": 1,
                       "no_consent": 0, "disqualified": 0}
    assert not list(cenv.store.r.scan_iter(cenv.store.keys.audience_seen("*")))
    # cached: a second look does not walk the lists again
    monkeypatch.setattr(audience, "audience_of_lists", _never)
    assert audience.campaign_audience(cenv.store, campaign_id) == counted


def _never(*_: Any, **__: Any) -> Any:
    raise AssertionError("walked the lists again")


def test_list_members_are_added_one_script_per_chunk(cenv, monkeypatch) -> None:
    emails = [f"p{i}@example.com" for i in range(7)]
    cenv.leads(*emails)
    list_id = cenv.manual_list()
    monkeypatch.setattr(lists, "CHUNK", 3)
    calls: list[str] = []
    real = cenv.store.run

    def spy(script: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(script)
        return real(script, *args, **kwargs)

    monkeypatch.setattr(cenv.store, "run", spy)
    added = lists.add_members(cenv.store, list_id, [*emails, "who@example.com", emails[0]])
    assert added == {"added": 7, "already_members": 1, "unknown": ["who@example.com"]}
    assert calls == ["add_members"] * 3
    lead = cenv.lead_of("p3@example.com")
    assert list_id in cenv.store.r.hget(cenv.store.keys.lead(lead["id"]), "lists").split(",")
    again = lists.add_members(cenv.store, list_id, emails[:2])
    assert again == {"added": 0, "already_members": 2, "unknown": []}


def test_an_accounts_contacts_are_listed_from_its_index(env, monkeypatch) -> None:
    account = {"id": "acx1"}
    env.store.r.hset(env.store.keys.account("acx1"), mapping={"name": "Acme"})
    for n in range(3):
        assert env.post("/api/v1/contacts", json={
            "email": f"c{n}@example.com", "account_id": account["id"]}).status_code in (200, 201)
    env.post("/api/v1/contacts", json={"email": "other@example.com"})
    walked: list[str] = []
    real = paging.page

    def spy(store, zset_key, *args, **kwargs):
        walked.append(zset_key)
        return real(store, zset_key, *args, **kwargs)

    from outreach.people import records

    monkeypatch.setattr(records, "page", spy)
    items = env.get(f"/api/v1/contacts?account_id={account['id']}").get_json()["items"]
    assert sorted(c["email"] for c in items) == ["c0@example.com", "c1@example.com",
                                                 "c2@example.com"]
    assert walked == [env.store.keys.account_contacts(account["id"])]


def _contacts_file(emails: list[str]) -> bytes:
    return ("Email,First Name,Company\n" + "".join(
        f"{email},N{i},C{i}\n" for i, email in enumerate(emails))).encode()


def test_the_contacts_import_makes_one_round_trip_per_chunk(env, monkeypatch, round_trips) -> None:
    import io

    from outreach.people.imports import run

    monkeypatch.setattr(run, "BATCH", 10)
    known = [f"k{i}@example.com" for i in range(15)]
    for email in known[:5]:
        env.post("/api/v1/contacts", json={"email": email, "first_name": "Old"})
    emails = known + [f"new{i}@example.com" for i in range(15)]  # 30 rows: 3 chunks
    trips = round_trips(env.store)
    report = run.run_import(env.store, env.config, io.BytesIO(_contacts_file(emails)),
                            run.Options(type="contacts", asset="fair", kind="event"))
    assert report.as_dict() == {"rows": 30, "created": 25, "updated": 5, "unchanged": 0,
                                "failed": 0}
    # the ingest script once per chunk, and nothing per person (and, once a minute per
    # process, the check of the score decay: at first use it stores it, two round trips)
    assert trips.count <= 3 * 2 + 2
    monkeypatch.undo()
    contacts = {c["email"]: c for c in env.get("/api/v1/contacts?limit=100").get_json()["items"]}
    assert set(contacts) == set(emails)
    assert contacts["k0@example.com"]["first_name"] == "N0"  # an import replaces fields
    assert contacts["new3@example.com"]["company"] == "C18"
    assert env.get("/api/v1/leads").get_json()["items"] == []  # contacts, never leads


def test_list_members_are_added_in_a_round_trip_per_chunk(cenv, monkeypatch, round_trips) -> None:
    emails = [f"p{i}@example.com" for i in range(9)]
    cenv.leads(*emails)
    list_id = cenv.manual_list()
    monkeypatch.setattr(lists, "CHUNK", 3)
    trips = round_trips(cenv.store)
    added = lists.add_members(cenv.store, list_id, emails)
    assert added == {"added": 9, "already_members": 0, "unknown": []}
    # the list, a script per chunk, the segments' readers, the dirty marks cleared
    assert trips.count <= 1 + 3 + 1 + 1
