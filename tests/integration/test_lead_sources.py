"""Imports and double opt-in with the real parts: Redis, `outreach worker`, an SMTP server."""

from __future__ import annotations

import io
import re

from .conftest import wait_for
from .test_campaigns import _campaign, _lead_list, _wait_status

FILE = (
    "\ufeffE-mail;First Name;Company;Opt In\r\n"
    "ann@example.com;Ann;Acme;yes\r\n"
    "bad-address;Bob;X;no\r\n"
    "\"carl@example.org\";\"Carl\nthe second\";Z;yes\r\n"
    " ANN@EXAMPLE.COM ;Ann;Acme;yes\r\n"
    "dora@example.com;Dora;D;no\r\n"
).encode("utf-8")


def _upload(service, content: bytes, **fields: str) -> str:
    response = service.client.post("/api/v1/imports", headers=service.auth, data={
        "file": (io.BytesIO(content), "expo.csv"), **fields}, content_type="multipart/form-data")
    assert response.status_code == 202, response.get_json()
    return response.get_json()["id"]


def test_an_import_end_to_end_through_a_worker(make_service):
    service = make_service()
    service.start_worker()
    service.register(kind="white_paper", asset="guide", email="Dora@Example.com",
                     first_name="Dora")
    wait_for(lambda: service.processed_count() == 1, message="the registration processed")
    import_id = _upload(service, FILE, type="leads", asset="expo-2026", kind="event",
                        source="trade_show", consent="column:Opt In")
    job = wait_for(lambda: (j := service.get(f"/api/v1/imports/{import_id}"))["status"]
                   in ("done", "failed") and j, message="the import done")
    assert {k: job[k] for k in ("status", "rows", "created", "updated", "unchanged", "failed",
                                "progress")} == {
        "status": "done", "rows": 5, "created": 2, "updated": 1, "unchanged": 1, "failed": 1,
        "progress": 1.0}
    errors = service.client.get(f"/api/v1/imports/{import_id}/errors.csv", headers=service.auth)
    assert errors.get_data(as_text=True).splitlines() == [
        "line,reason,field", "3,Not a valid email address.,email"]
    leads = {lead["email"]: lead for lead in service.all_items("/api/v1/leads")}
    assert sorted(leads) == ["ann@example.com", "carl@example.org", "dora@example.com"]
    assert leads["carl@example.org"]["first_name"] == "Carl\nthe second"
    assert leads["dora@example.com"]["source"] == "web_form"
    assert leads["dora@example.com"]["latest_source"] == "trade_show"
    assert leads["ann@example.com"]["consent_status"] == "given"
    members = {m["email"] for m in service.all_items(
        f"/api/v1/lists/{_lead_list(service, 'expo-2026')}/members")}
    assert members == {"ann@example.com", "carl@example.org", "dora@example.com"}
    # the same file again: nothing changes
    again_id = _upload(service, FILE, type="leads", asset="expo-2026", kind="event",
                       source="trade_show", consent="column:Opt In")
    again = wait_for(lambda: (j := service.get(f"/api/v1/imports/{again_id}"))["status"]
                     == "done" and j, message="the second import done")
    assert (again["created"], again["updated"], again["unchanged"], again["failed"]) == (0, 0, 4, 1)
    assert {lead["email"]: lead for lead in service.all_items("/api/v1/leads")} == leads


def test_double_opt_in_with_a_real_smtp_server(make_service):
    service = make_service()
    service.start_worker()
    service.post("/api/v1/assets", {"slug": "guide", "kind": "white_paper", "title": "The Guide",
                                    "form": {"double_opt_in": True}}, status=201)
    service.register(kind="white_paper", asset="guide", email="Ann@Example.com", consent=True)
    wait_for(lambda: service.processed_count() == 1, message="the registration processed")
    message = wait_for(lambda: next((m for m in service.smtp.messages
                                     if m.rcpt_tos == ["ann@example.com"]), None),
                       message="the confirmation email")
    body = message.message.get_body(("plain",)).get_content()
    path = re.search(r"http://outreach\.test(/c/\S+)", body).group(1)
    (lead,) = service.all_items("/api/v1/leads")
    assert lead["consent_status"] == "pending" and lead["consent"] is False
    # a campaign launched now skips her
    list_id = _lead_list(service, "guide")
    service.smtp.clear()
    first = _campaign(service, [list_id])
    service.post(f"/api/v1/campaigns/{first}/launch", status=200)
    assert _wait_status(service, first, "sent")["stats"]["sent"] == 0
    assert service.smtp.messages == []
    # the scanner's GET confirms nothing; the button's POST does
    assert service.client.get(path).status_code == 200
    assert service.all_items("/api/v1/leads")[0]["consent_status"] == "pending"
    # a mail client's one-click POST confirms nothing either
    assert service.client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert service.all_items("/api/v1/leads")[0]["consent_status"] == "pending"
    assert message.message["List-Unsubscribe"] is None
    assert service.client.post(path, data={"confirm": "yes"},
                               headers={"User-Agent": "Firefox"}).status_code == 200
    (lead,) = service.all_items("/api/v1/leads")
    assert lead["consent_status"] == "given"
    evidence = service.get(f"/api/v1/leads/{lead['id']}/consent")["items"]
    # a JSON post without an Origin (not a browser): "api"
    assert [(e["how"], e["status"]) for e in evidence] == [("api", "pending"),
                                                          ("confirmation", "given")]
    assert evidence[1]["user_agent"] == "Firefox"
    second = _campaign(service, [list_id])
    service.post(f"/api/v1/campaigns/{second}/launch", status=200)
    assert _wait_status(service, second, "sent")["stats"]["sent"] == 1
    assert service.smtp.count_by_recipient() == {"ann@example.com": 1}
    # tampered: refused with a page that says so
    bad = service.client.post(path[:-3] + "xyz")
    assert bad.status_code == 400 and "not valid" in bad.get_data(as_text=True)
