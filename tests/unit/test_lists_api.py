"""Marketer API for marketing lists: asset lists, manual pairs, members."""

from __future__ import annotations

import pytest


def test_manual_list_pair(env) -> None:
    response = env.post("/api/v1/lists", json={"name": "VIPs", "member_type": "lead"})
    assert response.status_code == 201
    first = response.get_json()
    assert first["name"] == "VIPs"
    assert first["member_type"] == "lead"
    assert first["asset"] is None
    assert first["size"] == 0
    second = env.get(f"/api/v1/lists/{first['parallel_list_id']}").get_json()
    assert second["member_type"] == "contact"
    assert second["parallel_list_id"] == first["id"]
    assert second["asset"] is None
    listed = env.get("/api/v1/lists").get_json()
    assert [item["id"] for item in listed["items"]] == [first["id"], second["id"]]
    assert listed["next_cursor"] is None


@pytest.mark.parametrize("body", [
    {}, {"name": "x"}, {"member_type": "lead"}, {"name": "", "member_type": "lead"},
    {"name": "x", "member_type": "deal"}, {"name": "x" * 201, "member_type": "lead"},
])
def test_list_validation(env, check_error, body) -> None:
    check_error(env.post("/api/v1/lists", json=body), 422)
    assert env.get("/api/v1/lists").get_json()["items"] == []


def test_add_members_by_email(env, check_error) -> None:
    for email in ("a@example.com", "b@example.com"):
        env.register(email=email)
    env.drain()
    env.post("/api/v1/contacts", json={"email": "boss@example.com"})
    leads_list = env.post("/api/v1/lists", json={"name": "Hot", "member_type": "lead"}).get_json()
    path = f"/api/v1/lists/{leads_list['id']}/members"

    response = env.post(path, json={"emails": [" A@Example.com", "b@example.com",
                                               "a@example.com", "boss@example.com",
                                               "nobody@example.com"]})
    assert response.status_code == 200
    assert response.get_json() == {"added": 2, "already_members": 1,
                                   "unknown": ["boss@example.com", "nobody@example.com"]}
    again = env.post(path, json={"emails": ["b@example.com"]}).get_json()
    assert again == {"added": 0, "already_members": 1, "unknown": []}

    members = env.get(path).get_json()
    assert [(m["email"], m["type"]) for m in members["items"]] == [
        ("a@example.com", "lead"), ("b@example.com", "lead")]
    assert env.get(f"/api/v1/lists/{leads_list['id']}").get_json()["size"] == 2

    contacts_path = f"/api/v1/lists/{leads_list['parallel_list_id']}/members"
    added = env.post(contacts_path, json={"emails": ["boss@example.com", "a@example.com"]})
    assert added.get_json() == {"added": 1, "already_members": 0, "unknown": ["a@example.com"]}
    (member,) = env.get(contacts_path).get_json()["items"]
    assert (member["email"], member["type"]) == ("boss@example.com", "contact")


@pytest.mark.parametrize("body", [
    {}, {"emails": []}, {"emails": "a@example.com"}, {"emails": [1]},
    {"emails": ["a@example.com", "not an address"]},
])
def test_add_members_validation(env, check_error, body) -> None:
    env.registered()
    the_list = env.post("/api/v1/lists", json={"name": "L", "member_type": "lead"}).get_json()
    response = env.post(f"/api/v1/lists/{the_list['id']}/members", json=body)
    fields = check_error(response, 422)["fields"]
    assert all(name.split(".")[0] == "emails" for name in fields)  # "emails.0": the first item
    assert env.get(f"/api/v1/lists/{the_list['id']}").get_json()["size"] == 0


def test_asset_list_members_in_registration_order(env) -> None:
    for i in range(5):
        env.register(email=f"p{i}@example.com", kind="event", asset="summit")
    env.register(email="p0@example.com", kind="event", asset="summit")  # no second membership
    env.drain()
    lead_list = next(item for item in env.get("/api/v1/lists").get_json()["items"]
                     if item["member_type"] == "lead")
    assert lead_list["size"] == 5
    pages, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = env.get(f"/api/v1/lists/{lead_list['id']}/members", query_string=query).get_json()
        pages.append([m["email"] for m in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [["p0@example.com", "p1@example.com"], ["p2@example.com", "p3@example.com"],
                     ["p4@example.com"]]
    member = env.get(f"/api/v1/lists/{lead_list['id']}/members").get_json()["items"][0]
    assert {"id", "type", "email", "consent"} <= set(member)


def test_lists_pagination(env, check_error) -> None:
    for i in range(4):
        env.post("/api/v1/lists", json={"name": f"L{i}", "member_type": "contact"})
    ids, cursor = [], None
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = env.get("/api/v1/lists", query_string=query).get_json()
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(ids) == len(set(ids)) == 8
    check_error(env.get("/api/v1/lists", query_string={"limit": 501}), 422)
    check_error(env.get("/api/v1/lists/ls1/members", query_string={"limit": 501}), 422)
