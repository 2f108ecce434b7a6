"""The public door (issue 17, item 2): a registration without an API key updates an
unqualified lead, never a contact's or a qualified lead's fields (it proposes them on the
timeline, and sales accepts with one click); its source, kind and asset are checked."""

from __future__ import annotations

from typing import Any

import pytest
from test_console import csrf_of, sign_in

from outreach.platform import users


def _contact(env: Any, **fields: Any) -> dict[str, Any]:
    response = env.post("/api/v1/contacts", json={"email": "cto@bigco.com", "first_name": "Carol",
                                                  "company": "BigCo", **fields})
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def _proposals(env: Any, plural: str, record_id: str) -> list[dict[str, Any]]:
    items = env.get(f"/api/v1/{plural}/{record_id}/timeline").get_json()["items"]
    return [i for i in items if i["type"] == "proposed_update"]


def test_unauthenticated_registration_never_changes_a_contact(env) -> None:
    contact = _contact(env)
    status = env.registered("CTO@bigco.com", first_name="Mallory", company="Evil Inc",
                            phone="+1 555 0100", consent=True)
    assert status["person"] == {"type": "contact", "id": contact["id"]}
    after = env.get(f"/api/v1/contacts/{contact['id']}").get_json()
    assert (after["first_name"], after["company"], after.get("phone")) == ("Carol", "BigCo", None)
    assert [r["asset"] for r in after["registrations"]] == ["guide"]  # kept in the history
    [proposal] = _proposals(env, "contacts", contact["id"])
    assert proposal["kind"] == "event"
    assert proposal["fields"] == {"first_name": "Mallory", "company": "Evil Inc",
                                  "phone": "+1 555 0100"}
    assert proposal["accepted"] is False


def test_same_values_propose_nothing(env) -> None:
    contact = _contact(env)
    env.registered("cto@bigco.com", first_name="Carol", company="BigCo")
    assert _proposals(env, "contacts", contact["id"]) == []


def test_an_unqualified_lead_is_still_updated(env) -> None:
    env.registered("ann@example.com", first_name="Ann", company="Acme")
    env.registered("ann@example.com", first_name="Anne", company="Acme 2")
    lead = env.get("/api/v1/leads/ld1").get_json()
    assert (lead["first_name"], lead["company"]) == ("Anne", "Acme 2")
    assert _proposals(env, "leads", "ld1") == []


def test_a_qualified_lead_is_not_changed_and_its_contact_gets_the_proposal(env) -> None:
    env.registered("ann@example.com", first_name="Ann", company="Acme")
    qualified = env.post("/api/v1/leads/ld1/qualify", json={}).get_json()
    contact_id = qualified.get("contact_id") or qualified["contact"]["id"]
    # a qualified lead whose contact has another address: the lead path of the script
    env.store.r.hdel(env.store.keys.contact_by_email, "ann@example.com")
    env.registered("ann@example.com", first_name="Mallory", job_title="CEO")
    lead = env.get("/api/v1/leads/ld1").get_json()
    assert (lead["first_name"], lead.get("job_title")) == ("Ann", None)
    contact = env.get(f"/api/v1/contacts/{contact_id}").get_json()
    assert contact["first_name"] == "Ann"
    [proposal] = _proposals(env, "contacts", contact_id)
    assert proposal["fields"] == {"first_name": "Mallory", "job_title": "CEO"}


def test_with_an_api_key_the_intake_replaces_fields(env) -> None:
    contact = _contact(env)
    response = env.register("cto@bigco.com", first_name="Caroline", headers=env.auth)
    assert response.status_code == 202
    env.drain()
    assert env.get(f"/api/v1/contacts/{contact['id']}").get_json()["first_name"] == "Caroline"
    assert _proposals(env, "contacts", contact["id"]) == []


def test_a_bad_key_is_401(env, check_error) -> None:
    check_error(env.register(headers={"Authorization": "Bearer nope"}), 401)
    check_error(env.register(headers={"Authorization": "Basic eDp5"}), 401)


@pytest.mark.parametrize("source", ["web_form", "event", "referral"])
def test_public_sources(env, source) -> None:
    assert env.register(source=source).status_code == 202


@pytest.mark.parametrize("source", ["trade_show", "business_card", "import", "api", "manual"])
def test_other_sources_need_a_key(env, check_error, source) -> None:
    assert list(check_error(env.register(source=source), 422)["fields"]) == ["source"]
    assert env.register(source=source, headers=env.auth).status_code == 202


def test_kind_must_be_the_assets(env, check_error) -> None:
    assert env.post("/api/v1/assets", json={"slug": "summit", "kind": "event",
                                            "title": "Summit"}).status_code == 201
    assert list(check_error(env.register(asset="summit", kind="white_paper"), 422)["fields"]) \
        == ["kind"]
    check_error(env.register(asset="summit", kind="white_paper", headers=env.auth), 422)
    assert env.register(asset="summit", kind="event").status_code == 202


def test_unknown_asset_is_a_422_without_a_key(make_env, check_error) -> None:
    with make_env(intake_create_assets="0") as env:
        assert list(check_error(env.register(asset="bot-made-this"), 422)["fields"]) == ["asset"]
        assert env.register(asset="bot-made-this", headers=env.auth).status_code == 202
        env.drain()
        # the asset exists now (the keyed registration made it): the public may post to it
        assert env.register(asset="bot-made-this").status_code == 202
        assert env.post("/api/v1/assets", json={"slug": "made", "kind": "white_paper",
                                                "title": "Made"}).status_code == 201
        assert env.register(asset="made").status_code == 202


def test_unknown_assets_only_by_default_in_dev(make_env) -> None:
    from outreach.config import Config
    from outreach.startup import dev_config

    assert Config().intake_creates_assets is False
    assert dev_config(Config()).intake_creates_assets is True
    assert dev_config(Config(intake_create_assets="0")).intake_creates_assets is False
    assert Config.from_env({"OUTREACH_INTAKE_CREATE_ASSETS": "1"}).intake_creates_assets is True


def test_sales_accepts_a_proposal_in_the_console_with_one_click(env) -> None:
    contact = _contact(env)
    env.registered("cto@bigco.com", first_name="Caroline", company="BigCo Ltd")
    [proposal] = _proposals(env, "contacts", contact["id"])
    users.create_user(env.store, "sales@example.com", "sales", "correct horse battery")
    sign_in(env, "sales@example.com")
    page = env.client.get(f"/console/contacts/{contact['id']}")
    action = f"/console/contacts/{contact['id']}/proposals/{proposal['id']}/accept"
    assert action.encode() in page.data
    response = env.client.post(action, data={"csrf_token": csrf_of(env)})
    assert response.status_code == 302
    after = env.get(f"/api/v1/contacts/{contact['id']}").get_json()
    assert (after["first_name"], after["company"]) == ("Caroline", "BigCo Ltd")
    items = env.get(f"/api/v1/contacts/{contact['id']}/timeline").get_json()["items"]
    done = [i for i in items if i["type"] == "proposed_update_accepted"]
    assert done and done[0]["by"] == "sales@example.com"
    assert done[0]["changes"]["first_name"] == {"from": "Carol", "to": "Caroline"}
    assert _proposals(env, "contacts", contact["id"])[0]["accepted"] is True
    # a second click changes nothing
    env.client.post(action, data={"csrf_token": csrf_of(env)})
    items = env.get(f"/api/v1/contacts/{contact['id']}/timeline").get_json()["items"]
    assert len([i for i in items if i["type"] == "proposed_update_accepted"]) == 1


def test_import_is_an_authenticated_write(env) -> None:
    from outreach.people.ingest import apply_rows

    contact = _contact(env)
    apply_rows(env.store, env.config, [{"email": "cto@bigco.com", "kind": "white_paper",
                                        "asset": "guide", "first_name": "Imported",
                                        "consent": False}])
    assert env.get(f"/api/v1/contacts/{contact['id']}").get_json()["first_name"] == "Imported"
