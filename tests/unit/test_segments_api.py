"""The segments API: the contract's shapes, validation with the bad node's path, cycles,
404s and 409s, members, preview, explain, and membership kept by the intake path."""

from __future__ import annotations

from typing import Any

import pytest

from outreach.people.segments import build, members, membership
from outreach.platform import refs


def _segment(env: Any, rules: Any, member_type: str = "lead", name: str = "S") -> Any:
    return env.post("/api/v1/segments", json={"name": name, "member_type": member_type,
                                              "rules": rules})


def _built(env: Any, rules: Any, member_type: str = "lead") -> dict[str, Any]:
    response = _segment(env, rules, member_type)
    assert response.status_code == 201, response.get_json()
    segment = response.get_json()
    assert not build.build(env.store, segment["id"])
    return segment


def _members(env: Any, segment_id: str) -> set[str]:
    body = env.get(f"/api/v1/segments/{segment_id}/members").get_json()
    return {m["email"] for m in body["items"]}


@pytest.mark.parametrize(("rules", "path"), [
    ({"all": [{"field": "country", "op": "eq", "value": "DE"},
              {"field": "country", "op": "eq", "value": "FR"},
              {"field": "country", "op": "sounds_like", "value": "DE"}]}, "rules.all.2.op"),
    ({"not": {"field": "nope", "op": "eq", "value": 1}}, "rules.not.field"),
    ({"any": []}, "rules.any"),
    ({"field": "score", "op": "gt", "value": "ten"}, "rules.value"),
    ({"field": "created_at", "op": "gt", "value": "P30D yesterday"}, "rules.value"),
    ({"field": "country", "op": "exists", "value": "yes"}, "rules.value"),
    ({"field": "country", "op": "in", "value": []}, "rules.value"),
    ({"registered": {"within": "30 days"}}, "rules.registered.within"),
    ({"opened": {"campaign": "cp1"}}, "rules.opened.campaign"),
    ({"sent": {}}, "rules.sent.campaign_id"),
    ({"account": {"field": "size", "op": "eq", "value": "x"}}, "rules.account.field"),
    ({"all": [{"in_segment": "sg404"}]}, "rules.all.0.in_segment"),
    ({"field": "country", "op": "eq", "value": "DE", "extra": 1}, "rules.extra"),
    ("country = DE", "rules"),
    ({"all": [{"any": [{"not": {"in_list": ""}}]}]}, "rules.all.0.any.0.not.in_list"),
])
def test_a_malformed_rule_is_a_422_naming_the_bad_node(env, check_error, rules, path) -> None:
    error = check_error(_segment(env, rules), 422, "validation_failed")
    assert path in error["fields"], error
    error = check_error(env.post("/api/v1/segments/preview",
                                 json={"member_type": "lead", "rules": rules}), 422)
    assert path in error["fields"], error


def test_rule_trees_are_bounded(env, check_error) -> None:
    wide = {"any": [{"field": "country", "op": "eq", "value": str(i)} for i in range(150)]}
    error = check_error(_segment(env, wide), 422)
    assert any(key.startswith("rules.any.") for key in error["fields"])
    deep: dict[str, Any] = {"field": "country", "op": "eq", "value": "DE"}
    for _ in range(15):
        deep = {"not": deep}
    check_error(_segment(env, deep), 422)


def test_other_fields_are_checked_too(env, check_error) -> None:
    error = check_error(env.post("/api/v1/segments", json={"name": "", "member_type": "robot",
                                                           "rules": {"in_list": "x"}}), 422)
    assert {"name", "member_type"} <= set(error["fields"])


def test_crud_and_the_contract_shape(env, check_error) -> None:
    rules = {"field": "country", "op": "eq", "value": "de"}
    created = _segment(env, rules)
    assert created.status_code == 201
    body = created.get_json()
    assert {"id", "name", "member_type", "rules", "size", "lag_seconds", "created_at",
            "updated_at"} <= set(body)
    assert body["rules"] == rules and body["size"] == 0 and body["member_type"] == "lead"
    segment_id = body["id"]
    assert env.get(f"/api/v1/segments/{segment_id}").get_json()["name"] == "S"
    assert [s["id"] for s in env.get("/api/v1/segments").get_json()["items"]] == [segment_id]
    patched = env.patch(f"/api/v1/segments/{segment_id}", json={"name": "Germans"}).get_json()
    assert patched["name"] == "Germans" and patched["rules"] == rules
    assert env.client.delete(f"/api/v1/segments/{segment_id}", headers=env.auth).status_code == 204
    for method, path in (("get", ""), ("get", "/members"), ("get", "/members.csv"),
                         ("get", "/explain?email=a@example.com"), ("patch", ""), ("delete", "")):
        response = getattr(env.client, method)(f"/api/v1/segments/{segment_id}{path}",
                                               headers=env.auth, json={"name": "x"})
        check_error(response, 404, "not_found")


def test_membership_follows_registrations_edits_and_windows(env) -> None:
    env.registered("ann@example.com", country="DE")
    env.registered("bob@example.com", country="FR")
    segment = _built(env, {"all": [{"field": "country", "op": "eq", "value": "de"},
                                   {"registered": {"asset": "guide", "within": "-P1D"}}]})
    assert _members(env, segment["id"]) == {"ann@example.com"}
    # a registration through the intake stream moves a person in, with no build
    env.registered("cyd@example.com", country="de")
    assert _members(env, segment["id"]) == {"ann@example.com", "cyd@example.com"}
    assert env.get(f"/api/v1/segments/{segment['id']}").get_json()["size"] == 2
    # an edit moves a person out
    lead_id = env.get("/api/v1/leads?email=cyd@example.com").get_json()["items"][0]["id"]
    assert env.patch(f"/api/v1/leads/{lead_id}", json={"country": "AT"}).status_code == 200
    assert _members(env, segment["id"]) == {"ann@example.com"}
    # the window ends: the beat's tick moves ann out on time
    import time
    assert membership.tick(env.store, now=time.time() + 3600) == 0
    assert membership.tick(env.store, now=time.time() + 2 * 86_400) >= 1
    assert _members(env, segment["id"]) == set()


def test_preview_and_explain(env, check_error) -> None:
    env.registered("ann@example.com", country="DE", company="Acme")
    env.registered("bob@example.com", country="FR")
    rules = {"any": [{"field": "country", "op": "in", "value": ["de", "at"]},
                     {"not": {"field": "company", "op": "exists", "value": False}}]}
    preview = env.post("/api/v1/segments/preview", json={"member_type": "lead", "rules": rules})
    assert preview.status_code == 200
    body = preview.get_json()
    assert body["count"] == 1 and [p["email"] for p in body["sample"]] == ["ann@example.com"]
    assert env.get("/api/v1/segments").get_json()["items"] == []  # nothing saved
    segment = _built(env, rules)
    explained = env.get(f"/api/v1/segments/{segment['id']}/explain?email=ann@example.com").get_json()
    assert explained["member"] is True and explained["since"].endswith("Z")
    paths = {node["path"]: node for node in explained["rules"]}
    assert set(paths) == {"rules", "rules.any.0", "rules.any.1", "rules.any.1.not"}
    assert paths["rules.any.0"] == {"path": "rules.any.0", "value": True,
                                    "because": "country is 'DE'"}
    explained = env.get(f"/api/v1/segments/{segment['id']}/explain?email=bob@example.com").get_json()
    assert explained == {"member": False, "since": None, "rules": explained["rules"]}
    values = {node["path"]: node["value"] for node in explained["rules"]}
    assert values == {"rules": False, "rules.any.0": False, "rules.any.1": False,
                      "rules.any.1.not": True}
    check_error(env.get(f"/api/v1/segments/{segment['id']}/explain?email=zed@example.com"), 404)
    check_error(env.get(f"/api/v1/segments/{segment['id']}/explain?email=nope"), 422)
    csv = env.get(f"/api/v1/segments/{segment['id']}/members.csv").get_data(as_text=True)
    assert "ann@example.com" in csv and "bob@example.com" not in csv


def test_in_segment_cycles_are_refused_and_a_named_segment_is_kept(env, check_error) -> None:
    first = _built(env, {"field": "country", "op": "eq", "value": "de"})
    second = _built(env, {"in_segment": first["id"]})
    error = check_error(env.patch(f"/api/v1/segments/{first['id']}",
                                  json={"rules": {"all": [{"in_segment": second["id"]}]}}), 422)
    assert "rules.all.0.in_segment" in error["fields"]
    error = check_error(env.patch(f"/api/v1/segments/{first['id']}",
                                  json={"rules": {"in_segment": first["id"]}}), 422)
    assert "rules.in_segment" in error["fields"]
    check_error(env.client.delete(f"/api/v1/segments/{first['id']}", headers=env.auth), 409,
                "conflict")
    env.registered("ann@example.com", country="DE")
    assert _members(env, second["id"]) == {"ann@example.com"}
    assert env.client.delete(f"/api/v1/segments/{second['id']}", headers=env.auth).status_code == 204
    assert env.client.delete(f"/api/v1/segments/{first['id']}", headers=env.auth).status_code == 204
    # nothing of the memberships is left: no field in the member's hash, no bitmap
    assert not members.segments_of(env.store.r.hgetall(env.store.keys.person("l:ld1")))
    assert not env.store.r.exists(env.store.keys.segment_leads(first["id"]),
                                  env.store.keys.segment_leads(second["id"]))


def test_no_saved_segment_no_extra_work_on_ingest(env) -> None:
    """With no segment saved the ingest script names nobody (so the drain makes no further
    round trip); with one saved it names the people it changed, with what changed (a new
    lead: everything; a repeat registration: what it wrote)."""
    calls: list[Any] = []
    original = membership.evaluate_changes
    try:
        membership.evaluate_changes = lambda *a, **k: calls.append(a) or 0  # type: ignore[assignment]
        env.registered("ann@example.com")
        assert calls == []
        _segment(env, {"field": "country", "op": "exists", "value": True})
        env.registered("bob@example.com")
        assert calls and calls[0][1] == {"l:ld2": {membership.ANY}}
        env.registered("bob@example.com", asset="other-guide", country="FR")
        changed = calls[1][1]["l:ld2"]
        assert {"field:regs", "field:updated_at", "field:country", "field:score"} <= changed
        assert membership.ANY not in changed and "field:status" not in changed
        assert any(token.startswith("list:") for token in changed)
    finally:
        membership.evaluate_changes = original  # type: ignore[assignment]


def test_sends_owner_changes_and_erasure_move_people(cenv) -> None:
    from outreach.people.segments import catalog
    from outreach.platform.users import create_user
    from outreach.privacy.erasure import erase_person
    from outreach.sales.owners import set_owner

    list_id = cenv.leads("ann@example.com", "bob@example.com")
    campaign_id = cenv.launched([list_id], cenv.template())
    sent = catalog.create_segment(cenv.store, "got it", "lead", {"sent": {"campaign_id": campaign_id}})
    owned = catalog.create_segment(cenv.store, "mine", "lead",
                                   {"field": "owner", "op": "exists", "value": True})
    for segment in (sent, owned):
        assert not build.build(cenv.store, segment["id"])
    assert members.size(cenv.store, sent["id"]) == 0
    assert cenv.run(campaign_id)["stats"]["sent"] == 2
    assert _members(cenv, sent["id"]) == {"ann@example.com", "bob@example.com"}
    lead_id = cenv.get("/api/v1/leads?email=ann@example.com").get_json()["items"][0]["id"]
    create_user(cenv.store, "sam@example.com", "sales", "password-1234")
    set_owner(cenv.store, "lead", lead_id, "sam@example.com", "test")
    assert _members(cenv, owned["id"]) == {"ann@example.com"}
    erase_person(cenv.store, "ann@example.com")
    assert _members(cenv, sent["id"]) == {"bob@example.com"}
    assert _members(cenv, owned["id"]) == set()
    # the erased lead's bits are cleared too (their hash, with its fields, is gone)
    number = refs.person_number(f"l:{lead_id}")
    assert number is not None
    for segment in (sent, owned):
        assert cenv.store.r.getbit(cenv.store.keys.segment_leads(segment["id"]), number[1]) == 0
    assert members.size(cenv.store, sent["id"]) == 1


def test_people_a_dead_worker_left_are_settled_by_the_beat(env, monkeypatch) -> None:
    segment = _built(env, {"field": "country", "op": "eq", "value": "de"})

    def killed(*_args: Any, **_kwargs: Any) -> int:
        raise SystemExit("SIGKILL")

    monkeypatch.setattr(membership, "evaluate_changes", killed)
    with pytest.raises(SystemExit):
        env.registered("ann@example.com", country="DE")
    monkeypatch.undo()
    assert env.store.r.smembers(env.store.keys.segment_dirty) == {"l:ld1"}
    assert _members(env, segment["id"]) == set()
    membership.tick(env.store)
    assert _members(env, segment["id"]) == {"ann@example.com"}
    assert env.store.r.smembers(env.store.keys.segment_dirty) == set()


def test_a_contact_without_an_account_and_old_histories(env) -> None:
    from outreach.people.segments import catalog

    created = env.post("/api/v1/contacts", json={"email": "cy@example.com", "country": "DE"})
    assert created.status_code in (200, 201), created.get_json()
    contact_id = created.get_json()["id"]
    # a history entry in the older format names its asset itself
    env.store.r.hset(env.store.keys.contact(contact_id), "regs", "w:guide:" + "tpmt56")
    segment = catalog.create_segment(env.store, "s", "contact", {"all": [
        {"not": {"account": {"field": "name", "op": "exists", "value": True}}},
        {"registered": {"asset": "guide"}}]})
    assert not build.build(env.store, segment["id"])
    assert _members(env, segment["id"]) == {"cy@example.com"}
