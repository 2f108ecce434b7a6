"""Segments in the console over HTTP (Flask test client): the rule builder's form round trip
(no JavaScript: structural buttons and Count re-render, Save creates), errors next to the bad
node, the live preview fragment, the segment page (members, chart, explain) and delete (409
shown when another segment uses it). The browser tests drive the same pages with htmx."""

from __future__ import annotations

import re
from typing import Any

import pytest
from test_console import PASSWORD, sign_in, token

from outreach.people.segments import build, history
from outreach.platform import users
from outreach.web.console import segment_form


@pytest.fixture
def marketer(env: Any) -> Any:
    for email, country in (("ann@example.com", "DE"), ("bob@example.com", "FR"),
                           ("cy@example.com", "DE")):
        assert env.register(email, consent=True, company="Acme", country=country).status_code == 202
    env.drain()
    users.create_user(env.store, "m@example.com", "marketer", PASSWORD)
    users.create_user(env.store, "s@example.com", "sales", PASSWORD)
    sign_in(env, "m@example.com")
    return env


def _form(page: bytes) -> dict[str, Any]:
    """The builder form's fields as a browser would post them (inputs, selected options)."""
    html = page.decode()
    data: dict[str, list[str]] = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        if name:
            value = re.search(r'value="([^"]*)"', tag)
            data.setdefault(name.group(1), []).append(value.group(1) if value else "")
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]*selected', body) or re.search(
            r'<option value="([^"]*)"', body)
        data[name] = [chosen.group(1) if chosen else ""]
    return {k: v if len(v) > 1 else v[0] for k, v in data.items()}


def _post(env: Any, path: str, data: dict[str, Any]) -> Any:
    return env.client.post(path, data=data)


def test_build_a_segment_without_javascript(marketer: Any) -> None:
    env = marketer
    page = env.client.get("/console/segments/new")
    assert page.status_code == 200
    data = _form(page.data)
    assert data["kind:r"] == "all" and data["kind:r.0"] == "field"
    data.update({"name": "Germans", "field:r.0": "country", "op:r.0": "eq", "value:r.0": "de"})
    # add a second condition, then count, then save
    again = _post(env, "/console/segments/new", {**data, "action": "add:r"})
    assert again.status_code == 200 and b'name="kind:r.1"' in again.data
    data = _form(again.data)
    data.update({"kind:r.1": "field", "field:r.1": "company", "op:r.1": "starts_with",
                 "value:r.1": "ac"})
    counted = _post(env, "/console/segments/new", {**data, "action": "count"})
    assert counted.status_code == 200
    assert re.search(rb'id="preview-count">2<', counted.data)
    saved = _post(env, "/console/segments/new", {**_form(counted.data), "action": "save"})
    assert saved.status_code == 302
    segment_id = saved.headers["Location"].rsplit("/", 1)[1]
    assert not build.build(env.store, segment_id)
    shown = env.client.get(f"/console/segments/{segment_id}")
    assert shown.status_code == 200 and b'id="segment-size">2<' in shown.data
    assert b"ann@example.com" in shown.data and b"bob@example.com" not in shown.data
    explained = env.client.get(f"/console/segments/{segment_id}?email=bob@example.com")
    assert b"is not a member" in explained.data and b"country is &#39;FR&#39;" in explained.data
    listing = env.client.get("/console/segments")
    assert b"Germans" in listing.data


def test_errors_are_shown_next_to_the_bad_node(marketer: Any) -> None:
    env = marketer
    data = _form(env.client.get("/console/segments/new").data)
    data.update({"name": "x", "field:r.0": "score", "op:r.0": "gt", "value:r.0": "lots"})
    response = _post(env, "/console/segments/new", {**data, "action": "save"})
    assert response.status_code == 422
    node = re.search(rb'id="errors-r-0"[^>]*>(.*?)</div>', response.data, re.S)
    assert node and b"A number." in node.group(1)
    assert env.store.r.zcard(env.store.keys.segments) == 0
    # the live preview puts the same error on the node, out of band
    live = _post(env, "/console/segments/preview", data)
    assert live.status_code == 200 and b'hx-swap-oob="true"' in live.data
    assert re.search(rb'id="errors-r-0"[^>]*hx-swap-oob="true">.*A number\.', live.data, re.S)


def test_the_live_preview_counts_and_samples(marketer: Any) -> None:
    env = marketer
    data = _form(env.client.get("/console/segments/new").data)
    data.update({"field:r.0": "country", "op:r.0": "in", "value:r.0": "DE, FR"})
    live = _post(env, "/console/segments/preview", data)
    assert b'id="preview-count">3<' in live.data and b"cy@example.com" in live.data
    # a change of kind re-renders the builder with that kind's inputs
    data["kind:r.0"] = "registered"
    builder = _post(env, "/console/segments/builder", data)
    assert builder.status_code == 200 and b'name="asset:r.0"' in builder.data


def test_every_rule_kind_round_trips_through_the_form() -> None:
    rules = {"all": [
        {"field": "country", "op": "in", "value": ["DE", "FR"]},
        {"field": "score", "op": "gte", "value": 5},
        {"field": "email", "op": "exists", "value": True},
        {"registered": {"asset": "guide", "kind": "white_paper", "within": "-P30D"}},
        {"opened": {"campaign_id": "cp1"}}, {"clicked": {"url_contains": "pricing"}},
        {"sent": {"campaign_id": "cp2", "within": "-P7D"}},
        {"not": {"in_list": "ls1"}}, {"any": [{"in_segment": "sg1"},
                                               {"account": {"field": "domain", "op": "eq",
                                                            "value": "acme.com"}}]}]}
    assert segment_form.to_rules(segment_form.from_rules(rules)) == rules


def test_delete_asks_first_and_shows_a_409(marketer: Any) -> None:
    env = marketer
    first = env.post("/api/v1/segments", json={"name": "a", "member_type": "lead", "rules": {
        "field": "country", "op": "eq", "value": "DE"}}).get_json()["id"]
    env.post("/api/v1/segments", json={"name": "b", "member_type": "lead",
                                       "rules": {"in_segment": first}})
    confirm = env.client.get(f"/console/segments/{first}/delete")
    assert confirm.status_code == 200 and b"Yes, delete" in confirm.data
    refused = env.client.post(f"/console/segments/{first}/delete",
                              data={"csrf_token": token(confirm.data)})
    assert refused.status_code == 409 and b'id="delete-conflict"' in refused.data
    assert env.store.r.exists(env.store.keys.segment(first))


def test_the_size_history_is_sampled_once_an_hour_and_charted(marketer: Any) -> None:
    env = marketer
    segment_id = env.post("/api/v1/segments", json={"name": "a", "member_type": "lead", "rules": {
        "field": "country", "op": "eq", "value": "DE"}}).get_json()["id"]
    assert not build.build(env.store, segment_id)
    assert history.sample(env.store, now=7200.0)
    assert not history.sample(env.store, now=7300.0)  # the same hour: nothing
    assert history.sample(env.store, now=10800.0)
    points = history.series(env.store, segment_id, now=11000.0)
    assert [p["size"] for p in points] == [2, 2, 2]
    page = env.client.get(f"/console/segments/{segment_id}")
    assert b"<polyline" in page.data and b"Members over time" in page.data


def test_sales_cannot_see_segments(marketer: Any) -> None:
    env = marketer
    env.client.post("/console/logout", data={"csrf_token": token(env.client.get("/console/").data)})
    sign_in(env, "s@example.com")
    assert env.client.get("/console/segments").status_code == 403
    assert b"/console/segments" not in env.client.get("/console/").data
