"""Every consent change goes through one service (``consent.change_consent``): it keeps
evidence only when the value changes and never turns pending or withdrawn into none."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from test_console import PASSWORD, csrf_of, sign_in

from outreach.people import consent
from outreach.people import records as people
from outreach.people.imports.run import Options, run_import


def _trail(env: Any, ref: str) -> list[tuple[str, str]]:
    return [(i["how"], i["status"]) for i in consent.consent_items(env.store, ref)]


@pytest.mark.parametrize(("current", "given", "after"), [
    (None, True, "1"), ("0", True, "1"), ("p", True, "1"), ("w", True, "1"), ("1", True, None),
    (None, False, None), ("0", False, None), ("w", False, None),
    ("p", False, "w"), ("1", False, "w"),
])
def test_an_edit_never_silently_turns_pending_or_withdrawn_into_none(current, given, after) -> None:
    assert consent.edited_consent(current, given) == after


def test_service_records_evidence_only_when_the_value_changes(env) -> None:
    env.registered("ann@example.com")
    lead_id = env.store.r.hget(env.store.keys.lead_by_email, "ann@example.com")
    ref, key = f"l:{lead_id}", env.store.keys.lead(lead_id)

    def change(given: bool) -> str | None:
        return consent.change_consent(env.store, ref, given, how="api",
                                      current=env.store.r.hget(key, "consent"),
                                      ip="10.0.0.1", user_agent="curl/8")

    assert change(False) is None  # none stays none: nothing recorded
    assert change(True) == "1" and change(True) is None
    assert change(False) == "w" and change(False) is None
    assert env.store.r.hget(key, "consent") == "w"
    items = consent.consent_items(env.store, ref)
    assert [(i["how"], i["status"], i["ip"], i["user_agent"]) for i in items] == [
        ("api", "given", "10.0.0.1", "curl/8"), ("api", "withdrawn", "10.0.0.1", "curl/8")]
    with pytest.raises(ValueError):
        consent.change_consent(env.store, ref, True, how="complaint", current="w")


def test_patch_lead_keeps_pending_and_records_api_evidence(env) -> None:
    env.store.r.hset(env.store.keys.asset("guide"), mapping={"slug": "guide"})
    env.registered("bea@example.com")
    lead_id = env.store.r.hget(env.store.keys.lead_by_email, "bea@example.com")
    env.store.r.hset(env.store.keys.lead(lead_id), "consent", "p")  # pending confirmation
    # an edit of other fields leaves consent alone
    assert env.patch(f"/api/v1/leads/{lead_id}", json={"city": "Oslo"}).status_code == 200
    assert env.get(f"/api/v1/leads/{lead_id}").get_json()["consent_status"] == "pending"
    # consent false on a pending lead withdraws it (with evidence), never none
    lead = env.client.patch(f"/api/v1/leads/{lead_id}", json={"consent": False},
                            headers={**env.auth, "User-Agent": "Tool/1"}).get_json()
    assert lead["consent_status"] == "withdrawn"
    lead = env.patch(f"/api/v1/leads/{lead_id}", json={"consent": True}).get_json()
    assert lead["consent_status"] == "given"
    env.patch(f"/api/v1/leads/{lead_id}", json={"consent": True})  # unchanged: no evidence
    items = env.get(f"/api/v1/leads/{lead_id}/consent").get_json()["items"]
    assert [(i["how"], i["status"]) for i in items] == [("api", "withdrawn"), ("api", "given")]
    assert items[0]["ip"] == "127.0.0.1" and items[0]["user_agent"] == "Tool/1"


def test_post_contact_records_evidence_and_never_lowers_withdrawn(env) -> None:
    made = env.post("/api/v1/contacts", json={"email": "cy@example.com", "consent": True})
    assert made.status_code == 201
    contact_id = made.get_json()["id"]
    again = env.post("/api/v1/contacts", json={"email": "cy@example.com", "consent": True})
    assert again.status_code == 200
    assert _trail(env, f"c:{contact_id}") == [("api", "given")]
    out = env.post("/api/v1/contacts", json={"email": "cy@example.com", "consent": False})
    assert out.get_json()["consent_status"] == "withdrawn"
    # no consent field, or false again: stays withdrawn, nothing recorded
    for body in ({"email": "cy@example.com", "city": "Rome"},
                 {"email": "cy@example.com", "consent": False}):
        assert env.post("/api/v1/contacts", json=body).get_json()["consent_status"] == "withdrawn"
    assert _trail(env, f"c:{contact_id}") == [("api", "given"), ("api", "withdrawn")]
    none = env.post("/api/v1/contacts", json={"email": "dee@example.com", "consent": False})
    assert none.get_json()["consent_status"] == "none"
    assert _trail(env, f"c:{none.get_json()['id']}") == []


def test_console_edit_touches_consent_only_when_the_box_changed(env) -> None:
    from outreach.platform import users

    users.create_user(env.store, "sales@example.com", "sales", PASSWORD)
    env.registered("eve@example.com", first_name="Eve")
    lead_id = env.store.r.hget(env.store.keys.lead_by_email, "eve@example.com")
    key = env.store.keys.lead(lead_id)
    env.store.r.hset(key, "consent", "p")
    assert sign_in(env, "sales@example.com").status_code == 302
    form = {"first_name": "Eva", "csrf_token": csrf_of(env, f"/console/leads/{lead_id}")}
    # saved with the box as shown (unticked for a pending lead): consent untouched
    assert env.client.post(f"/console/leads/{lead_id}/edit", data=form).status_code == 302
    assert env.store.r.hmget(key, "first_name", "consent") == ["Eva", "p"]
    # ticked: given, recorded as a console change
    response = env.client.post(f"/console/leads/{lead_id}/edit", data={**form, "consent": "on"},
                               headers={"User-Agent": "Browser/9"})
    assert response.status_code == 302
    assert env.store.r.hget(key, "consent") == "1"
    (item,) = consent.consent_items(env.store, f"l:{lead_id}")
    assert (item["how"], item["status"], item["user_agent"]) == ("console", "given", "Browser/9")
    # saved again with the box still ticked: nothing new
    env.client.post(f"/console/leads/{lead_id}/edit", data={**form, "consent": "on"})
    assert len(consent.consent_items(env.store, f"l:{lead_id}")) == 1


def test_contacts_import_keeps_its_consent_evidence(env) -> None:
    env.post("/api/v1/contacts", json={"email": "old@example.com"})
    csv = b"Email,First Name,Opt-in\nnew@example.com,Nia,yes\nold@example.com,Olaf,yes\n"
    report = run_import(env.store, env.config, io.BytesIO(csv),
                        Options(type="contacts", asset="fair", consent="column:Opt-in"))
    assert (report.created, report.updated, report.failed) == (1, 1, 0)
    for email in ("new@example.com", "old@example.com"):
        contact_id = env.store.r.hget(env.store.keys.contact_by_email, email)
        items = consent.consent_items(env.store, f"c:{contact_id}")
        assert [(i["how"], i["status"], i["asset"]) for i in items] == [
            ("import", "given", "fair")], email
    # the same file again: nothing changes, nothing recorded
    run_import(env.store, env.config, io.BytesIO(csv),
               Options(type="contacts", asset="fair", consent="column:Opt-in"))
    contact_id = env.store.r.hget(env.store.keys.contact_by_email, "new@example.com")
    assert len(consent.consent_items(env.store, f"c:{contact_id}")) == 1


def test_a_complaint_withdraws_with_the_documented_vocabulary(env) -> None:
    env.registered("fay@example.com", consent=True)
    lead_id = env.store.r.hget(env.store.keys.lead_by_email, "fay@example.com")
    consent.withdraw_consent_of(env.store, "fay@example.com", how="unsubscribe")
    items = consent.consent_items(env.store, f"l:{lead_id}")
    assert [(i["how"], i["status"]) for i in items][-1] == ("unsubscribe", "withdrawn")
    assert all(i["how"] in consent.HOWS for i in items)
    assert people.get_lead(env.store, lead_id)["consent_status"] == "withdrawn"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", items[-1]["at"])


def test_a_repeated_unsubscribe_records_its_withdrawal_once(cenv) -> None:
    list_id = cenv.leads("gus@example.com")
    cenv.run(cenv.launched([list_id]))
    msg = cenv.messenger.to("gus@example.com")
    url = re.search(r"<(https://mail\.example\.com/u/[^>]+)>", msg["List-Unsubscribe"]).group(1)
    token = url.rsplit("/u/", 1)[1]
    for _ in range(2):  # the mail client's one-click POST, then the person's own click
        assert cenv.client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    lead = cenv.lead_of("gus@example.com")
    assert lead["consent_status"] == "withdrawn"
    assert _trail(cenv, f"l:{lead['id']}") == [("api", "given"), ("unsubscribe", "withdrawn")]
