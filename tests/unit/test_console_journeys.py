"""The journeys console over HTTP (Flask test client): the editor as plain form posts (add,
remove, move, save), errors next to the named step, versions on an active journey, the
controls behind a confirmation, the diagram, and a person's journeys on the lead page."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_console import PASSWORD, csrf_of, sign_in

from outreach.platform import users
from outreach.web.console import journey_form


@pytest.fixture
def marketer(cenv: Any) -> Any:
    users.create_user(cenv.store, "marketer@example.com", "marketer", PASSWORD)
    users.create_user(cenv.store, "sales@example.com", "sales", PASSWORD)
    cenv.leads("ann@example.com", asset="guide", first_name="Ann")
    cenv.template_id = cenv.template(name="Welcome")
    sign_in(cenv, "marketer@example.com")
    cenv.csrf = csrf_of(cenv)
    return cenv


def hidden_fields(page: str) -> dict[str, str]:
    """Every named input and select of the editor as the browser would post it."""
    out: dict[str, str] = {}
    for m in re.finditer(r'<input[^>]*name="([^"]+)"[^>]*?(?:value="([^"]*)")?[^>]*>', page):
        tag = m.group(0)
        if 'type="checkbox"' in tag or 'name="csrf_token"' in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        out[m.group(1)] = html.unescape(value.group(1)) if value else ""
    for m in re.finditer(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="([^"]*)"\s*selected', m.group(2))
        first = re.search(r'<option value="([^"]*)"', m.group(2))
        out[m.group(1)] = html.unescape((chosen or first).group(1)) if (chosen or first) else ""
    return out


def post_editor(env: Any, path: str, page: str, **changes: str) -> Any:
    data = {**hidden_fields(page), **changes, "csrf_token": env.csrf}
    data.pop("action", None)  # the hidden default button is not pressed
    data.update({k: v for k, v in changes.items() if k == "action"})
    return env.client.post(path, data=data)


@given(st.integers(1, 90 * 24 * 60), st.sampled_from(tuple(journey_form.UNITS)))
def test_a_wait_round_trips_through_the_form(amount: int, unit: str) -> None:
    iso = journey_form.to_iso(str(amount), unit)
    seconds = amount * journey_form.UNITS[unit]
    if seconds > 90 * 86400:
        assert iso is None
        return
    back = journey_form.from_iso(iso)
    assert int(back[0]) * journey_form.UNITS[back[1]] == seconds


def test_the_editor_builds_saves_and_activates_a_journey(marketer: Any) -> None:
    env = marketer
    page = env.client.get("/console/journeys/new").get_data(as_text=True)
    for kind in ("send", "wait", "send", "branch", "task", "exit"):
        response = post_editor(env, "/console/journeys/new", page, add=kind)
        assert response.status_code == 200
        page = response.get_data(as_text=True)
    assert page.count('class="step-card') == 6
    # the second send goes away; the branch's "opened" named the last send: cleared
    response = post_editor(env, "/console/journeys/new", page, remove="2")
    page = response.get_data(as_text=True)
    assert page.count('class="step-card') == 5 and "Removed step 3 (send-3)" in page
    # the task moves up above the branch, and back down
    page = post_editor(env, "/console/journeys/new", page, up="3").get_data(as_text=True)
    assert page.index('value="task-5"') < page.index('value="branch-4"')
    page = post_editor(env, "/console/journeys/new", page, down="2").get_data(as_text=True)
    assert page.index('value="branch-4"') < page.index('value="task-5"')
    # saving with a branch that goes nowhere: 422, the message beside step 3 (the branch)
    response = post_editor(env, "/console/journeys/new", page, name="Nurture", action="save")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.search(r'id="step-2".*?id="steps-2-error"[^>]*>[^<]*branch-4', page, re.S), page
    response = post_editor(env, "/console/journeys/new", page, name="Nurture", action="save",
                           **{"steps-2-cond_step": "send-1", "steps-2-then": "task-5",
                              "steps-2-else": "exit-6", "steps-1-wait_amount": "3",
                              "steps-1-wait_unit": "days"})
    assert response.status_code == 302, response.get_data(as_text=True)[-2000:]
    journey_id = response.headers["Location"].rsplit("/", 1)[1]
    shown = env.get(f"/api/v1/journeys/{journey_id}").get_json()
    assert [s["id"] for s in shown["steps"]] == ["send-1", "wait-2", "branch-4", "task-5", "exit-6"]
    assert shown["steps"][1]["duration"] == "P3D"
    assert shown["steps"][2]["if"] == {"opened": {"step": "send-1"}}
    assert shown["status"] == "draft"
    # activate: a confirmation first, then done
    path = f"/console/journeys/{journey_id}/activate"
    confirm = env.client.post(path, data={"csrf_token": env.csrf})
    assert b"Yes, activate" in confirm.data
    assert env.get(f"/api/v1/journeys/{journey_id}").get_json()["status"] == "draft"
    done = env.client.post(path, data={"csrf_token": env.csrf, "confirm": "yes"})
    assert done.status_code == 302
    assert env.get(f"/api/v1/journeys/{journey_id}").get_json()["status"] == "active"
    # the page draws the flow: a box per step, then/else labelled edges
    page = env.client.get(f"/console/journeys/{journey_id}").get_data(as_text=True)
    assert page.count('class="flow-step') == 5
    assert ">then</text>" in page and ">else</text>" in page
    # saving the active journey makes version 2 and says so
    edit = env.client.get(f"/console/journeys/{journey_id}/edit").get_data(as_text=True)
    assert "Save as version 2" in edit
    saved = post_editor(env, f"/console/journeys/{journey_id}/edit", edit, action="save",
                        **{"steps-3-subject": "Call them today"})
    assert saved.status_code == 302
    assert env.get(f"/api/v1/journeys/{journey_id}").get_json()["version"] == 2


def test_activation_names_the_bad_step_in_the_editor(marketer: Any) -> None:
    env = marketer
    made = env.post("/api/v1/journeys", json={
        "name": "Broken", "trigger": {"type": "manual"},
        "steps": [{"id": "a", "type": "send", "template_id": env.template_id},
                  {"id": "b", "type": "send", "template_id": "tp404"}]})
    journey_id = made.get_json()["id"]
    response = env.client.post(f"/console/journeys/{journey_id}/activate",
                               data={"csrf_token": env.csrf, "confirm": "yes"})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert re.search(r'id="step-1".*?id="steps-1-error"[^>]*>[^<]*tp404', page, re.S)
    assert env.get(f"/api/v1/journeys/{journey_id}").get_json()["status"] == "draft"


def test_a_rule_the_form_cannot_show_is_kept(marketer: Any) -> None:
    env = marketer
    rule = {"field": "company", "op": "eq", "value": "Acme"}
    made = env.post("/api/v1/journeys", json={
        "name": "Rules", "trigger": {"type": "manual"},
        "steps": [{"id": "a", "type": "branch", "if": rule, "then": "b", "else": "c"},
                  {"id": "b", "type": "exit"}, {"id": "c", "type": "qualify"}],
        "settings": {"goal": rule}})
    assert made.status_code == 201, made.get_json()
    journey_id = made.get_json()["id"]
    edit = env.client.get(f"/console/journeys/{journey_id}/edit").get_data(as_text=True)
    assert post_editor(env, f"/console/journeys/{journey_id}/edit", edit,
                       action="save").status_code == 302
    shown = env.get(f"/api/v1/journeys/{journey_id}").get_json()
    assert shown["steps"][0]["if"] == rule and shown["settings"]["goal"] == rule


def test_the_lead_page_shows_the_persons_journeys(marketer: Any) -> None:
    env = marketer
    made = env.post("/api/v1/journeys", json={
        "name": "Welcome flow", "trigger": {"type": "manual"},
        "steps": [{"id": "hello", "type": "send", "template_id": env.template_id}]})
    journey_id = made.get_json()["id"]
    assert env.post(f"/api/v1/journeys/{journey_id}/activate").status_code == 200
    page = env.client.get(f"/console/journeys/{journey_id}").get_data(as_text=True)
    assert "Enroll people" in page  # a manual journey
    enrolled = env.client.post(f"/console/journeys/{journey_id}/enroll",
                               data={"csrf_token": env.csrf,
                                     "emails": "ann@example.com, nobody@example.com"},
                               follow_redirects=True).get_data(as_text=True)
    assert "Enrolled 1." in enrolled and "nobody@example.com (unknown person)" in enrolled
    lead_id = env.lead_of("ann@example.com")["id"]
    page = env.client.get(f"/console/leads/{lead_id}").get_data(as_text=True)
    section = page[page.index('id="person-journeys"'):]
    assert "Welcome flow" in section and "version 1" in section and "entered" in section
    listing = env.client.get(f"/console/journeys/{journey_id}?status=active").get_data(as_text=True)
    assert "ann@example.com" in listing
    none = env.client.get(f"/console/journeys/{journey_id}?status=done").get_data(as_text=True)
    assert "ann@example.com" not in none
    # qualified, Ann is a contact: her contact page shows the journey she entered as a lead
    qualified = env.post(f"/api/v1/leads/{lead_id}/qualify", json={})
    assert qualified.status_code == 200, qualified.get_json()
    contact_id = env.lead_of("ann@example.com")["contact_id"]
    page = env.client.get(f"/console/contacts/{contact_id}").get_data(as_text=True)
    assert "Welcome flow" in page[page.index('id="person-journeys"'):]
    # stopped (after the confirmation): everyone leaves, and it is no longer edited
    stop = f"/console/journeys/{journey_id}/stop"
    assert b"Yes, stop" in env.client.post(stop, data={"csrf_token": env.csrf}).data
    assert env.client.post(stop, data={"csrf_token": env.csrf, "confirm": "yes"}).status_code == 302
    shown = env.get(f"/api/v1/journeys/{journey_id}").get_json()
    assert shown["status"] == "stopped"
    page = env.client.get(f"/console/contacts/{contact_id}").get_data(as_text=True)
    assert "stopped" in page[page.index('id="person-journeys"'):]
    assert env.client.get(f"/console/journeys/{journey_id}/edit").status_code == 302


def test_sales_reads_journeys_but_cannot_change_them(marketer: Any) -> None:
    env = marketer
    made = env.post("/api/v1/journeys", json={
        "name": "Read only", "trigger": {"type": "manual"},
        "steps": [{"id": "hello", "type": "send", "template_id": env.template_id}]})
    journey_id = made.get_json()["id"]
    env.client.post("/console/logout", data={"csrf_token": env.csrf})
    sign_in(env, "sales@example.com")
    csrf = csrf_of(env)
    assert b"Read only" in env.client.get("/console/journeys").data
    page = env.client.get(f"/console/journeys/{journey_id}").data
    assert b"Activate" not in page and b"New journey" not in page
    response = env.client.post(f"/console/journeys/{journey_id}/activate",
                               data={"csrf_token": csrf, "confirm": "yes"})
    assert response.status_code == 403
    assert env.get(f"/api/v1/journeys/{journey_id}").get_json()["status"] == "draft"


def test_the_diagram_draws_each_edge_once_and_fits_a_phone() -> None:
    steps = [{"id": "a", "type": "send", "template_id": "t"},
             {"id": "w", "type": "wait", "duration": "P2D"},
             {"id": "b", "type": "branch", "if": {"opened": {"step": "a"}}, "within": "P1D",
              "then": "t", "else": "c"},
             {"id": "c", "type": "send", "template_id": "t", "next": "x"},
             {"id": "t", "type": "task", "subject": "Call"},
             {"id": "x", "type": "exit"}]
    stats = {"steps": {"a": {"entered": 3, "done": 3, "waiting": 0, "sent": 3, "opened": 1}}}
    names = {"templates": {"t": "Welcome"}, "lists": {}, "segments": {}}
    flow = journey_form.diagram({"steps": steps}, stats, names)
    assert [b["id"] for b in flow["boxes"]] == ["a", "w", "b", "c", "t", "x"]
    assert flow["boxes"][0]["line3"] == "sent 3 · opened 1 · clicked 0"
    assert flow["boxes"][0]["text"] == "Send “Welcome”"
    # a->w, w->b straight; b: then (jump to t), else (straight to c); c->x jump; t->x straight
    assert sorted(e["label"] for e in flow["edges"]) == ["", "", "", "", "else", "then"]
    assert sum(1 for e in flow["edges"] if e.get("jump")) == 2
    assert flow["width"] <= 358  # a phone's content width: drawn at full size, text readable
    # two jumps into one box arrive at different heights
    steps[2]["then"] = "x"
    flow = journey_form.diagram({"steps": steps}, stats, names)
    ends = [e["d"].split(" V")[1].split(" ")[0] for e in flow["edges"] if e.get("jump")]
    assert len(ends) == len(set(ends)) == 2
