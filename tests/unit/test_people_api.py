"""Marketer API for people: auth, leads (filters, pagination, PATCH), contacts."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach.platform.apikeys import revoke_api_key_by_id

MARKETER_GETS = [
    "/api/v1/leads",
    "/api/v1/leads/ld1",
    "/api/v1/contacts",
    "/api/v1/contacts/ct1",
    "/api/v1/lists",
    "/api/v1/lists/ls1",
    "/api/v1/lists/ls1/members",
    "/api/v1/registrations/1-0",
]


def make_leads(env, n: int, **fields) -> list[str]:
    for i in range(n):
        assert env.register(email=f"p{i}@example.com", **fields).status_code == 202
    env.drain()
    return [f"p{i}@example.com" for i in range(n)]


def walk(env, path: str, limit: int, **query) -> tuple[list[dict], int]:
    """Every item of a paginated listing, and how many pages that took."""
    items, cursor, pages = [], None, 0
    while True:
        params = {"limit": limit, **query}
        if cursor:
            params["cursor"] = cursor
        response = env.get(path, query_string=params)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= limit
        pages += 1
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages
        assert body["items"], "a page with a cursor after it is never empty"
        assert pages < 1000


@pytest.fixture(scope="module")
def read_only_env(make_env):
    """One app for the tests that only read (and find nothing)."""
    with make_env() as env:
        yield env


# --- authentication -------------------------------------------------------------------


@pytest.mark.parametrize("path", MARKETER_GETS)
@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Bearer wrong",
                                    "Basic dXNlcjpwYXNz", "Token ok_x"])
def test_marketer_endpoints_need_a_valid_bearer_key(read_only_env, check_error, path: str,
                                                     header) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = read_only_env.client.get(path, headers=headers)
    check_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), [
    ("post", "/api/v1/contacts"), ("patch", "/api/v1/leads/ld1"), ("post", "/api/v1/lists"),
    ("post", "/api/v1/lists/ls1/members"),
])
def test_marketer_writes_need_a_key(env, check_error, method: str, path: str) -> None:
    response = getattr(env.client, method)(path, json={"email": "a@example.com"})
    check_error(response, 401)


def test_bearer_scheme_is_case_insensitive_and_key_is_trimmed(env) -> None:
    response = env.client.get("/api/v1/leads",
                              headers={"Authorization": f"bearer   {env.api_key}  "})
    assert response.status_code == 200


def test_revoked_key_is_refused(env, check_error) -> None:
    assert env.get("/api/v1/leads").status_code == 200
    assert revoke_api_key_by_id(env.store, hashlib.sha256(env.api_key.encode()).hexdigest()[:12])
    check_error(env.get("/api/v1/leads"), 401)


def test_public_endpoints_need_no_key(env) -> None:
    assert env.client.get("/healthz").status_code == 200
    assert env.client.get("/api/openapi.json").status_code == 200
    assert env.register().status_code == 202


# --- unknown ids ----------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/api/v1/leads/ld999", "/api/v1/leads/nope", "/api/v1/contacts/ct999",
    "/api/v1/lists/ls999", "/api/v1/lists/ls999/members", "/api/v1/registrations/123-4",
    "/api/v1/nothing-here", "/api/v1/leads/%ED%A0%80", "/api/v1/leads/%FF",
])
def test_unknown_ids_are_404_in_the_error_shape(read_only_env, check_error, path: str) -> None:
    check_error(read_only_env.get(path), 404, "not_found")


def test_unknown_ids_on_writes_are_404(env, check_error) -> None:
    check_error(env.patch("/api/v1/leads/ld999", json={"first_name": "x"}), 404)
    check_error(env.post("/api/v1/lists/ls999/members", json={"emails": ["a@example.com"]}), 404)


def test_unknown_list_filter_is_404(env, check_error) -> None:
    check_error(env.get("/api/v1/leads", query_string={"list": "ls999"}), 404)


# --- leads: reading, filtering, pagination --------------------------------------------


def test_lead_by_id(env) -> None:
    make_leads(env, 1, first_name="Pat")
    (lead,) = env.get("/api/v1/leads").get_json()["items"]
    assert env.get(f"/api/v1/leads/{lead['id']}").get_json() == lead


def test_filter_by_email_is_normalised(env) -> None:
    make_leads(env, 3)
    found = env.get("/api/v1/leads", query_string={"email": "  P1@EXAMPLE.com"}).get_json()
    assert [lead["email"] for lead in found["items"]] == ["p1@example.com"]
    assert found["next_cursor"] is None
    for missing in ("nobody@example.com", "not an email"):
        body = env.get("/api/v1/leads", query_string={"email": missing}).get_json()
        assert body == {"items": [], "next_cursor": None}


def test_filter_by_list(env) -> None:
    env.register(email="a@example.com", asset="one")
    env.register(email="b@example.com", asset="two")
    env.register(email="c@example.com", asset="one")
    status = env.registered(email="a@example.com", asset="one")
    env.drain()
    list_id = status["lists"][0]
    body = env.get("/api/v1/leads", query_string={"list": list_id}).get_json()
    assert sorted(lead["email"] for lead in body["items"]) == ["a@example.com", "c@example.com"]
    both = env.get("/api/v1/leads", query_string={"list": list_id,
                                                  "email": "b@example.com"}).get_json()
    assert both["items"] == []
    contact_list = env.get(f"/api/v1/lists/{list_id}").get_json()["parallel_list_id"]
    assert env.get("/api/v1/leads", query_string={"list": contact_list}).get_json()["items"] == []


def _set_status(env, email: str, status: str) -> str:
    """What qualify/disqualify leave behind (they are tested with their own services)."""
    keys = env.store.keys
    lead_id = env.store.r.hget(keys.lead_by_email, email)
    env.store.r.hset(keys.lead(lead_id), mapping={"status": status})
    env.store.r.zadd(keys.leads_by_status(status), {lead_id: env.store.r.zscore(keys.leads,
                                                                                lead_id)})
    return lead_id


def test_filter_by_status(env, check_error) -> None:
    emails = make_leads(env, 6)
    _set_status(env, emails[1], "disqualified")
    _set_status(env, emails[4], "qualified")
    new, _ = walk(env, "/api/v1/leads", 2, status="new")
    assert [lead["email"] for lead in new] == [emails[i] for i in (0, 2, 3, 5)]
    disqualified = env.get("/api/v1/leads", query_string={"status": "disqualified"}).get_json()
    assert [lead["email"] for lead in disqualified["items"]] == [emails[1]]
    by_email = env.get("/api/v1/leads", query_string={"status": "new", "email": emails[1]})
    assert by_email.get_json()["items"] == []
    check_error(env.get("/api/v1/leads", query_string={"status": "lost"}), 422)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 13), limit=st.integers(1, 6))
def test_pagination_walks_every_lead_once_in_order(make_env, n: int, limit: int) -> None:
    with make_env() as env:
        emails = make_leads(env, n)
        items, pages = walk(env, "/api/v1/leads", limit)
        assert [lead["email"] for lead in items] == emails
        assert pages == max(1, -(-n // limit))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statuses=st.lists(st.sampled_from(["new", "qualified", "disqualified"]), max_size=12),
       limit=st.integers(1, 5), wanted=st.sampled_from(["new", "qualified", "disqualified"]))
def test_filtered_pagination(make_env, statuses: list[str], limit: int, wanted: str) -> None:
    with make_env() as env:
        emails = make_leads(env, len(statuses))
        for email, status in zip(emails, statuses, strict=True):
            if status != "new":
                _set_status(env, email, status)
        items, pages = walk(env, "/api/v1/leads", limit, status=wanted)
        expected = [e for e, s in zip(emails, statuses, strict=True) if s == wanted]
        assert [lead["email"] for lead in items] == expected
        assert all(lead["status"] == wanted for lead in items)
        # full pages, then at most one more (possibly empty) page that ends the walk
        assert pages <= -(-len(expected) // limit) + 1


def test_pagination_defaults_and_bounds(env, check_error) -> None:
    make_leads(env, 3)
    body = env.get("/api/v1/leads").get_json()
    assert len(body["items"]) == 3 and body["next_cursor"] is None
    assert env.get("/api/v1/leads", query_string={"limit": 500}).status_code == 200
    for bad in ({"limit": 501}, {"limit": 0}, {"limit": -1}, {"limit": "ten"},
                {"cursor": "%%%"}, {"cursor": "bm90IGEgbnVtYmVy"}):
        fields = check_error(env.get("/api/v1/leads", query_string=bad), 422)["fields"]
        assert set(fields) == set(bad)


def test_cursor_past_the_end(env) -> None:
    make_leads(env, 2)
    first = env.get("/api/v1/leads", query_string={"limit": 1}).get_json()
    second = env.get("/api/v1/leads", query_string={"limit": 1, "cursor": first["next_cursor"]})
    assert second.get_json()["next_cursor"] is None
    assert len(second.get_json()["items"]) == 1


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30))
def test_any_cursor_is_a_page_or_a_422(fuzz_people, cursor: str) -> None:
    response = fuzz_people.get("/api/v1/leads", query_string={"cursor": cursor, "limit": 2})
    assert response.status_code in (200, 422), response.get_data(as_text=True)


@pytest.fixture(scope="module")
def fuzz_people(make_env):
    with make_env() as env:
        make_leads(env, 3)
        yield env


# --- PATCH a lead ---------------------------------------------------------------------


def test_patch_lead(env, check_error) -> None:
    make_leads(env, 1, first_name="Pat", company="Acme", city="Lyon")
    (lead,) = env.get("/api/v1/leads").get_json()["items"]
    response = env.patch(f"/api/v1/leads/{lead['id']}", json={
        "first_name": " Patricia ", "company": "", "job_title": "CEO", "consent": True,
        "status": "qualified", "score": 1000, "unknown": 1,
    })
    assert response.status_code == 200
    patched = response.get_json()
    assert patched["first_name"] == "Patricia"
    assert patched["company"] is None  # an explicit edit may clear a field
    assert patched["city"] == "Lyon"  # fields not sent are left alone
    assert patched["job_title"] == "CEO"
    assert patched["consent"] is True
    assert patched["status"] == "new" and patched["score"] == 0  # not editable here
    assert env.get(f"/api/v1/leads/{lead['id']}").get_json() == patched
    assert env.patch(f"/api/v1/leads/{lead['id']}", json={"consent": False}).get_json()[
        "consent"] is False
    fields = check_error(env.patch(f"/api/v1/leads/{lead['id']}",
                                   json={"first_name": "x" * 201, "email": "bad"}), 422)["fields"]
    assert set(fields) == {"first_name", "email"}


def test_patch_lead_email(env, check_error) -> None:
    make_leads(env, 2)
    first, second = env.get("/api/v1/leads").get_json()["items"]
    moved = env.patch(f"/api/v1/leads/{first['id']}", json={"email": " New@Example.com "})
    assert moved.status_code == 200 and moved.get_json()["email"] == "new@example.com"
    assert env.get("/api/v1/leads", query_string={"email": "new@example.com"}).get_json()[
        "items"][0]["id"] == first["id"]
    assert env.get("/api/v1/leads", query_string={"email": first["email"]}).get_json()[
        "items"] == []
    # a later registration with the new address finds the same lead
    status = env.registered(email="NEW@example.com", asset="later")
    assert status["person"]["id"] == first["id"]
    # the same address as now (in any case) is no change; another lead's is a conflict
    assert env.patch(f"/api/v1/leads/{first['id']}",
                     json={"email": "NEW@EXAMPLE.COM"}).status_code == 200
    check_error(env.patch(f"/api/v1/leads/{first['id']}", json={"email": second["email"]}),
                409, "conflict")
    assert env.get(f"/api/v1/leads/{first['id']}").get_json()["email"] == "new@example.com"


@pytest.mark.parametrize(("body", "content_type", "status"), [
    ("{", "application/json", 400),
    ("[]", "application/json", 400),
    ("first_name=x", "application/x-www-form-urlencoded", 415),
])
def test_patch_lead_bad_bodies(env, check_error, body, content_type, status) -> None:
    make_leads(env, 1)
    response = env.client.patch("/api/v1/leads/ld1", data=body, content_type=content_type,
                                headers=env.auth)
    check_error(response, status)


# --- contacts -------------------------------------------------------------------------


def test_create_then_update_contact(env, check_error) -> None:
    created = env.post("/api/v1/contacts", json={"email": " Boss@Example.com ", "first_name": "B",
                                                 "company": "Acme", "consent": True})
    assert created.status_code == 201
    contact = created.get_json()
    assert contact["email"] == "boss@example.com"
    assert (contact["first_name"], contact["company"], contact["consent"]) == ("B", "Acme", True)
    assert "account_id" in contact

    updated = env.post("/api/v1/contacts", json={"email": "BOSS@example.com", "first_name": "Bea",
                                                 "company": "", "city": "  ", "consent": None})
    assert updated.status_code == 200
    again = updated.get_json()
    assert again["id"] == contact["id"]
    assert again["first_name"] == "Bea"
    assert again["company"] == "Acme"  # empty never erases
    assert again["city"] is None  # nor is a blank value stored
    assert again["consent"] is True  # null: unchanged
    assert env.get(f"/api/v1/contacts/{contact['id']}").get_json() == again

    listing = env.get("/api/v1/contacts").get_json()
    assert [c["id"] for c in listing["items"]] == [contact["id"]]
    by_email = env.get("/api/v1/contacts", query_string={"email": "boss@EXAMPLE.com"}).get_json()
    assert [c["id"] for c in by_email["items"]] == [contact["id"]]


def test_contact_validation(env, check_error) -> None:
    assert set(check_error(env.post("/api/v1/contacts", json={}), 422)["fields"]) == {"email"}
    fields = check_error(env.post("/api/v1/contacts", json={"email": "x", "phone": "1" * 41}),
                         422)["fields"]
    assert set(fields) == {"email", "phone"}
    fields = check_error(env.post("/api/v1/contacts", json={"email": "a@example.com",
                                                            "account_id": "ac999"}), 422)["fields"]
    assert set(fields) == {"account_id"}
    check_error(env.post("/api/v1/contacts", json={"email": "a@example.com",
                                                   "first_name": "\ud800"}), 422)
    assert env.get("/api/v1/contacts").get_json()["items"] == []


def test_contacts_pagination(env) -> None:
    for i in range(7):
        assert env.post("/api/v1/contacts", json={"email": f"c{i}@example.com"}).status_code == 201
    items, pages = walk(env, "/api/v1/contacts", 3)
    assert [c["email"] for c in items] == [f"c{i}@example.com" for i in range(7)]
    assert pages == 3
