"""People have a time zone (``timezone``, IANA): the API edits it on leads and contacts
(422 for a name that is not one), imports map it for contacts too, the console shows and
edits it on the lead and contact pages, and forms carry the browser's zone without needing
a script."""

from __future__ import annotations

import io
import re

import pytest
from test_console import PASSWORD, csrf_of, sign_in

from outreach.people.imports.run import Options, run_import
from outreach.platform import users


def _lead(env, email: str = "ann@example.com", **fields) -> dict:
    assert env.register(email, consent=True, **fields).status_code == 202
    env.drain()
    (lead,) = env.get("/api/v1/leads", query_string={"email": email}).get_json()["items"]
    return lead


def _contact(env, email: str = "cy@example.com", **fields) -> dict:
    response = env.post("/api/v1/contacts", json={"email": email, **fields})
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


# ---------------------------------------------------------------- the API


def test_patch_a_leads_time_zone(env, check_error) -> None:
    lead = _lead(env, timezone="Europe/Paris")
    assert lead["timezone"] == "Europe/Paris"
    path = f"/api/v1/leads/{lead['id']}"
    patched = env.patch(path, json={"timezone": "America/New_York"}).get_json()
    assert patched["timezone"] == "America/New_York"
    assert env.get(path).get_json()["timezone"] == "America/New_York"
    for bad in ("Mars/Olympus_Mons", "EST 5", "+02:00", " Europe/Paris", 5, ["UTC"]):
        fields = check_error(env.patch(path, json={"timezone": bad}), 422)["fields"]
        assert set(fields) == {"timezone"}, bad
    assert env.get(path).get_json()["timezone"] == "America/New_York"  # a bad edit changes nothing
    assert env.patch(path, json={"timezone": None}).get_json()["timezone"] is None
    env.patch(path, json={"timezone": "Asia/Kolkata"})
    assert env.patch(path, json={"timezone": ""}).get_json()["timezone"] is None


def test_patch_a_contacts_time_zone(env, check_error) -> None:
    contact = _contact(env, timezone="Australia/Lord_Howe")
    assert contact["timezone"] == "Australia/Lord_Howe"
    path = f"/api/v1/contacts/{contact['id']}"
    patched = env.patch(path, json={"timezone": "Pacific/Kiritimati", "city": "London"})
    assert patched.status_code == 200, patched.get_json()
    assert (patched.get_json()["timezone"], patched.get_json()["city"]) == (
        "Pacific/Kiritimati", "London")
    assert env.get(path).get_json()["timezone"] == "Pacific/Kiritimati"
    fields = check_error(env.patch(path, json={"timezone": "Europe/Atlantis"}), 422)["fields"]
    assert set(fields) == {"timezone"}
    check_error(env.patch("/api/v1/contacts/ct404", json={"timezone": "UTC"}), 404)
    check_error(env.post("/api/v1/contacts", json={"email": "dee@example.com",
                                                   "timezone": "Nowhere"}), 422)
    assert env.patch(path, json={"timezone": None}).get_json()["timezone"] is None


def test_an_owner_and_a_bad_zone_change_nothing(env, check_error) -> None:
    users.create_user(env.store, "sam@example.com", "sales", PASSWORD)
    contact = _contact(env)
    path = f"/api/v1/contacts/{contact['id']}"
    check_error(env.patch(path, json={"owner": "sam@example.com", "timezone": "Bad/Zone"}), 422)
    assert env.get(path).get_json()["owner"] is None
    both = env.patch(path, json={"owner": "sam@example.com", "timezone": "Europe/Berlin"})
    assert (both.get_json()["owner"], both.get_json()["timezone"]) == ("sam@example.com",
                                                                      "Europe/Berlin")


def test_a_contact_import_maps_the_time_zone(env) -> None:
    content = (b"Email,First Name,Time Zone\n"
               b"eve@example.com,Eve,America/Chicago\n"
               b"fay@example.com,Fay,(GMT-05:00) Eastern Time\n")
    report = run_import(env.store, env.config, io.BytesIO(content),
                        Options(type="contacts", asset="crm"))
    assert (report.created, report.failed) == (2, 0), report.errors
    assert report.unknown == {("timezone", "(GMT-05:00) Eastern Time"): 1}
    items = {c["email"]: c for c in env.get("/api/v1/contacts").get_json()["items"]}
    assert items["eve@example.com"]["timezone"] == "America/Chicago"
    assert items["fay@example.com"]["timezone"] is None


# ---------------------------------------------------------------- the console


@pytest.fixture
def console(env):
    users.create_user(env.store, "sally@example.com", "sales", PASSWORD)
    users.create_user(env.store, "mia@example.com", "marketer", PASSWORD)
    return env


def test_the_lead_page_shows_and_edits_the_time_zone(console) -> None:
    lead = _lead(console, timezone="Europe/Paris")
    sign_in(console, "sally@example.com")
    page = console.client.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    assert re.search(r'<input id="f-timezone" name="timezone" value="Europe/Paris" '
                     r'list="zone-names"', page)
    assert '<datalist id="zone-names"><option value="UTC"><option value="Africa/Abidjan">' in page
    assert page.count('name="timezone"') == 1
    form = {"csrf_token": csrf_of(console, f"/console/leads/{lead['id']}"), "consent": "on",
            "email": lead["email"], "timezone": "Asia/Tokyo"}
    saved = console.client.post(f"/console/leads/{lead['id']}/edit", data=form)
    assert saved.status_code == 302
    assert console.get(f"/api/v1/leads/{lead['id']}").get_json()["timezone"] == "Asia/Tokyo"
    bad = console.client.post(f"/console/leads/{lead['id']}/edit",
                              data={**form, "timezone": "Asia/Atlantis"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert 'id="timezone-error">Not an IANA time zone name' in html
    assert 'aria-invalid="true"' in html
    assert console.get(f"/api/v1/leads/{lead['id']}").get_json()["timezone"] == "Asia/Tokyo"
    console.client.post(f"/console/leads/{lead['id']}/edit", data={**form, "timezone": ""})
    assert console.get(f"/api/v1/leads/{lead['id']}").get_json()["timezone"] is None


def test_the_contact_page_shows_and_edits_the_time_zone(console) -> None:
    contact = _contact(console)
    sign_in(console, "sally@example.com")
    path = f"/console/contacts/{contact['id']}"
    page = console.client.get(path).get_data(as_text=True)
    assert '<dd id="contact-timezone">UTC (the default)</dd>' in page
    form = {"csrf_token": csrf_of(console, path), "timezone": "America/Sao_Paulo"}
    saved = console.client.post(f"{path}/edit", data=form)
    assert saved.status_code == 302 and saved.headers["Location"].endswith(path)
    page = console.client.get(path).get_data(as_text=True)
    assert '<dd id="contact-timezone">America/Sao_Paulo</dd>' in page
    assert 'value="America/Sao_Paulo" list="zone-names"' in page
    bad = console.client.post(f"{path}/edit", data={**form, "timezone": "Sao Paulo"})
    assert bad.status_code == 422 and "Not an IANA time zone name" in bad.get_data(as_text=True)
    assert console.get(f"/api/v1/contacts/{contact['id']}").get_json()["timezone"] == \
        "America/Sao_Paulo"


def test_people_read_only_see_the_zone_but_no_form(console) -> None:
    contact = _contact(console, timezone="Europe/Berlin")
    lead = _lead(console)
    sign_in(console, "mia@example.com")  # marketers read people
    page = console.client.get(f"/console/contacts/{contact['id']}").get_data(as_text=True)
    assert '<dd id="contact-timezone">Europe/Berlin</dd>' in page and 'name="timezone"' not in page
    page = console.client.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
    assert '<dd id="lead-timezone">UTC (the default)</dd>' in page
    token = csrf_of(console, f"/console/contacts/{contact['id']}")
    refused = console.client.post(f"/console/contacts/{contact['id']}/edit",
                                  data={"csrf_token": token, "timezone": "UTC"})
    assert refused.status_code == 403
    assert console.get(f"/api/v1/contacts/{contact['id']}").get_json()["timezone"] == \
        "Europe/Berlin"


# ---------------------------------------------------------------- forms


SUMMIT = {"slug": "summit", "kind": "event", "title": "Summit", "form": {"fields": ["company"]}}


def test_a_form_without_script_posts_no_zone_and_with_one_keeps_it(env) -> None:
    assert env.post("/api/v1/assets", json=SUMMIT).status_code == 201
    form = {"kind": "event", "asset": "summit", "thanks": "1", "_t": "1", "consent": "true"}
    # no script: the disabled field is not posted
    plain = env.client.post("/api/v1/registrations", data={**form, "email": "a@example.com"})
    assert plain.status_code == 303
    # the script filled it in: kept
    filled = env.client.post("/api/v1/registrations", data={
        **form, "email": "b@example.com", "timezone": "Europe/Lisbon"})
    assert filled.status_code == 303
    env.drain()
    zones = {lead["email"]: lead["timezone"] for lead in env.get("/api/v1/leads").get_json()["items"]}
    assert zones == {"a@example.com": None, "b@example.com": "Europe/Lisbon"}
    # a browser's zone this server does not know: the page comes back without the field, so
    # sending it again works
    odd = env.client.post("/api/v1/registrations", data={
        **form, "email": "c@example.com", "timezone": "America/Ciudad_Juarez_2"})
    assert odd.status_code == 422
    assert 'name="timezone"' not in odd.get_data(as_text=True)
    # an error elsewhere keeps the zone the script found
    again = env.client.post("/api/v1/registrations", data={
        **form, "email": "not an address", "timezone": "Europe/Lisbon"})
    assert again.status_code == 422
    assert ('<input type="hidden" name="timezone" value="Europe/Lisbon" data-outreach-timezone '
            'disabled>') in again.get_data(as_text=True)


def test_the_embed_snippet_carries_the_zone_field_disabled(env) -> None:
    asset = env.post("/api/v1/assets", json=SUMMIT).get_json()
    snippet = asset["embed_snippet"]
    assert '<input type="hidden" name="timezone" value="" data-outreach-timezone disabled>' in snippet
    script = env.client.get("/embed/v1/form.js").get_data(as_text=True)
    assert "resolvedOptions().timeZone" in script and "input.disabled" in script


def test_a_zone_edit_moves_the_person_in_a_segment_on_it(env) -> None:
    from outreach.people.segments import build

    contact = _contact(env, timezone="Europe/Paris")
    lead = _lead(env, "lou@example.com")
    created = env.post("/api/v1/segments", json={
        "name": "Berlin", "member_type": "any",
        "rules": {"field": "timezone", "op": "eq", "value": "Europe/Berlin"}}).get_json()
    assert not build.build(env.store, created["id"])

    def members() -> set[str]:
        body = env.get(f"/api/v1/segments/{created['id']}/members").get_json()
        return {m["email"] for m in body["items"]}

    assert members() == set()
    env.patch(f"/api/v1/contacts/{contact['id']}", json={"timezone": "Europe/Berlin"})
    env.patch(f"/api/v1/leads/{lead['id']}", json={"timezone": "Europe/Berlin"})
    assert members() == {"cy@example.com", "lou@example.com"}
    env.patch(f"/api/v1/contacts/{contact['id']}", json={"timezone": None})
    assert members() == {"lou@example.com"}
