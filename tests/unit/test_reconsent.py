"""A person who opts back in is mailable: a confirmed opt-in lifts an unsubscribe (or an
erasure) with its evidence; a plain form post never does; a link clicked before the
registration was ingested is recorded and applied at ingest."""

from __future__ import annotations

import pytest

from outreach.people.consent import confirmation_url

DOI = {"slug": "guide", "kind": "white_paper", "title": "The Guide",
       "form": {"double_opt_in": True, "consent_text": "Send me the newsletter."}}
PLAIN = {"slug": "plain", "kind": "white_paper", "title": "Plain"}


@pytest.fixture
def doi(cenv):
    cenv.mails = []
    cenv.app.extensions["outreach.consent_mail"] = lambda *args: cenv.mails.append(args)
    assert cenv.post("/api/v1/assets", json=DOI).status_code == 201
    assert cenv.post("/api/v1/assets", json=PLAIN).status_code == 201
    return cenv


def _confirm(env, email: str) -> int:
    token = confirmation_url(env.config, email, "guide", 1).rsplit("/c/", 1)[1]
    return env.client.post(f"/c/{token}", data={"confirm": "yes"}).status_code


def _unsubscribed(env, email: str) -> None:
    from outreach.people.suppressions import suppress

    env.registered(email, asset="plain", consent=True)
    lead = env.lead_of(email)
    env.store.r.hset(env.store.keys.lead(lead["id"]), "consent", "w")
    suppress(env.store, email, "unsubscribed")


def test_a_confirmed_opt_in_lifts_an_unsubscribe(doi) -> None:
    env = doi
    _unsubscribed(env, "ann@example.com")
    # a plain form post never lifts it
    env.registered("ann@example.com", asset="plain", consent=True)
    assert env.get("/api/v1/suppressions/ann@example.com").status_code == 200
    # the double opt-in form: pending, the link is mailed, the click lifts the suppression
    env.registered("ann@example.com", consent=True)
    from outreach.people.consent import confirmation_not_needed

    assert confirmation_not_needed(env.store, "ann@example.com") is None
    assert _confirm(env, "ann@example.com") == 200
    assert env.get("/api/v1/suppressions/ann@example.com").status_code == 404
    lead = env.lead_of("ann@example.com")
    assert lead["consent"] is True
    items = env.get(f"/api/v1/leads/{lead['id']}/consent").get_json()["items"]
    assert (items[-1]["how"], items[-1]["status"]) == ("confirmation", "given")
    sent = env.run(env.launched([env.asset_list("guide", "lead")]))
    assert sent["stats"]["sent"] == 1 and env.messenger.recipients == ["ann@example.com"]


def test_an_old_link_clicked_after_an_unsubscribe_lifts_nothing(doi) -> None:
    env = doi
    _unsubscribed(env, "bob@example.com")
    assert _confirm(env, "bob@example.com") == 200  # consent stays withdrawn
    assert env.get("/api/v1/suppressions/bob@example.com").status_code == 200


def test_a_complaint_is_never_lifted(doi) -> None:
    from outreach.people.suppressions import suppress

    env = doi
    env.registered("cy@example.com", consent=True)
    suppress(env.store, "cy@example.com", "complaint")
    _confirm(env, "cy@example.com")
    assert env.get("/api/v1/suppressions/cy@example.com").get_json()["reason"] == "complaint"


def test_an_erased_person_who_opts_in_again_is_mailable(doi) -> None:
    env = doi
    env.registered("era@example.com", consent=True)
    assert env.erase("era@example.com")["status"] == "done"
    env.registered("era@example.com", consent=True)
    assert _confirm(env, "era@example.com") == 200
    assert env.get("/api/v1/suppressions/era@example.com").status_code == 404
    sent = env.run(env.launched([env.asset_list("guide", "lead")]))
    assert sent["stats"]["sent"] == 1


def test_a_confirmation_clicked_before_ingest_is_applied_at_ingest(doi) -> None:
    env = doi
    assert env.register("dee@example.com", consent=True).status_code == 202
    assert _confirm(env, "dee@example.com") == 200  # not 404: recorded
    env.drain()
    lead = env.lead_of("dee@example.com")
    assert lead["consent"] is True and lead["consent_status"] == "given"
    assert env.store.r.zcard(env.store.keys.early_confirmations) == 0
