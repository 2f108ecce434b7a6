"""Double opt-in, consent status and its evidence, withdrawal by unsubscribe."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.policy import default as default_policy

import itsdangerous.timed
import pytest

from outreach.people.consent import confirmation_url, send_confirmation

DOI = {"slug": "guide", "kind": "white_paper", "title": "The Guide",
       "form": {"double_opt_in": True, "consent_text": "Send me the newsletter."}}


@pytest.fixture
def doi(cenv):
    cenv.mails = []
    cenv.app.extensions["outreach.consent_mail"] = lambda *args: cenv.mails.append(args)
    assert cenv.post("/api/v1/assets", json=DOI).status_code == 201
    return cenv


def _token(url: str) -> str:
    return url.rsplit("/c/", 1)[1]


def test_double_opt_in_end_to_end_with_campaigns(doi) -> None:
    env = doi
    response = env.register("ann@example.com", consent=True, first_name="Ann",
                            headers={"User-Agent": "Browser/1.0", "Origin": "http://localhost"})
    assert response.status_code == 202
    env.drain()
    lead = env.lead_of("ann@example.com")
    assert lead["consent"] is False and lead["consent_status"] == "pending"
    assert env.mails == [("ann@example.com", "guide", 1)]
    # the confirmation email, through the messenger
    assert send_confirmation(env.store, env.config, env.messenger, "ann@example.com", "guide", 1)
    assert not send_confirmation(env.store, env.config, env.messenger, "ann@example.com",
                                 "guide", 1)  # at most one per hour per address
    # as a mail server hands it on: the DATA bytes with SMTP's dot-stuffing undone
    (raw,) = [r for r, (_, _, rcpt) in zip(env.messenger.raw, env.messenger.messages,
                                           strict=True) if rcpt == "ann@example.com"]
    msg = message_from_bytes(raw[:-3].replace(b"\r\n..", b"\r\n."), policy=default_policy)
    assert "The Guide" in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    url = re.search(r"https://mail\.example\.com/c/\S+", text).group(0)
    # a campaign launched now skips her
    list_id = env.asset_list("guide", "lead")
    first = env.run(env.launched([list_id]))
    assert first["stats"]["sent"] == 0
    # a link scanner's GET shows a page and confirms nobody
    page = env.client.get(f"/c/{_token(url)}")
    assert page.status_code == 200 and "Confirm my subscription" in page.get_data(as_text=True)
    assert env.lead_of("ann@example.com")["consent_status"] == "pending"
    done = env.client.post(f"/c/{_token(url)}", data={"confirm": "yes"},
                           headers={"User-Agent": "Browser/2.0"})
    assert done.status_code == 200 and "you are subscribed" in done.get_data(as_text=True)
    lead = env.lead_of("ann@example.com")
    assert lead["consent"] is True and lead["consent_status"] == "given"
    items = env.get(f"/api/v1/leads/{lead['id']}/consent").get_json()["items"]
    assert [(i["how"], i["status"]) for i in items] == [("form", "pending"),
                                                       ("confirmation", "given")]
    assert items[0]["text_version"] == 1 and items[0]["user_agent"] == "Browser/1.0"
    assert items[0]["asset"] == "guide" and items[0]["ip"] == "127.0.0.1"
    assert items[1]["user_agent"] == "Browser/2.0" and items[1]["at"].endswith("Z")
    # confirming twice changes nothing
    env.client.post(f"/c/{_token(url)}", data={"confirm": "yes"})
    assert len(env.get(f"/api/v1/leads/{lead['id']}/consent").get_json()["items"]) == 2
    second = env.run(env.launched([list_id]))
    assert second["stats"]["sent"] == 1


def test_tampered_and_expired_links_say_so(doi, monkeypatch) -> None:
    env = doi
    env.registered("bea@example.com", consent=True)
    url = confirmation_url(env.config, "bea@example.com", "guide", 1)
    token = _token(url)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for method in (env.client.get, env.client.post):
        bad = method(f"/c/{tampered}", data={"confirm": "yes"})
        assert bad.status_code == 400 and "not valid" in bad.get_data(as_text=True)
    real_time = itsdangerous.timed.time.time
    monkeypatch.setattr(itsdangerous.timed.time, "time",
                        lambda: real_time() + 8 * 86_400)  # past the 7 days
    for method in (env.client.get, env.client.post):
        old = method(f"/c/{token}", data={"confirm": "yes"})
        assert old.status_code == 410 and "expired" in old.get_data(as_text=True)
    assert env.lead_of("bea@example.com")["consent_status"] == "pending"
    # an unsubscribe link's token is not a confirmation
    from outreach.tokens import Tokens
    other = Tokens(env.config.secret_key).sign("unsubscribe", ["c1", "l:ld1"])
    assert env.client.post(f"/c/{other}", data={"confirm": "yes"}).status_code == 400


def test_one_click_unsubscribe_of_the_confirmation_mail_never_gives_consent(doi) -> None:
    env = doi
    env.registered("ivy@example.com", consent=True)
    assert send_confirmation(env.store, env.config, env.messenger, "ivy@example.com", "guide", 1)
    (raw,) = env.messenger.raw  # the DATA bytes with SMTP's dot-stuffing undone
    msg = message_from_bytes(raw[:-3].replace(b"\r\n..", b"\r\n."), policy=default_policy)
    # a transactional mail: nothing for a mail client's unsubscribe button to post to
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    text = msg.get_body(("plain",)).get_content()
    token = _token(re.search(r"https://mail\.example\.com/c/\S+", text).group(0))
    # an RFC 8058 one-click POST, an empty POST or a wrong value show the question again
    for body in ({"List-Unsubscribe": "One-Click"}, {}, {"confirm": "no"}):
        page = env.client.post(f"/c/{token}", data=body)
        assert page.status_code == 200 and "Confirm my subscription" in page.get_data(as_text=True)
        assert env.lead_of("ivy@example.com")["consent_status"] == "pending"
    # the page's own form carries the field that confirms
    page = env.client.get(f"/c/{token}").get_data(as_text=True)
    assert '<input type="hidden" name="confirm" value="yes">' in page
    assert env.client.post(f"/c/{token}", data={"confirm": "yes"}).status_code == 200
    assert env.lead_of("ivy@example.com")["consent_status"] == "given"


def test_without_double_opt_in_consent_is_given_with_evidence(cenv) -> None:
    cenv.registered("cy@example.com", consent=True)
    lead = cenv.lead_of("cy@example.com")
    assert lead["consent"] is True and lead["consent_status"] == "given"
    items = cenv.get(f"/api/v1/leads/{lead['id']}/consent").get_json()["items"]
    assert [(i["how"], i["status"]) for i in items] == [("api", "given")]
    cenv.registered("cy@example.com", consent=True)  # again: no new evidence
    assert len(cenv.get(f"/api/v1/leads/{lead['id']}/consent").get_json()["items"]) == 1
    cenv.registered("dee@example.com")
    dee = cenv.lead_of("dee@example.com")
    assert dee["consent_status"] == "none"
    assert cenv.get(f"/api/v1/leads/{dee['id']}/consent").get_json() == {"items": []}
    assert cenv.get("/api/v1/leads/nope/consent").status_code == 404


def test_unsubscribe_withdraws_consent_with_evidence(cenv) -> None:
    list_id = cenv.leads("eve@example.com")
    campaign_id = cenv.run(cenv.launched([list_id]))["id"]
    msg = cenv.messenger.to("eve@example.com")
    url = re.search(r"<(https://mail\.example\.com/u/[^>]+)>", msg["List-Unsubscribe"]).group(1)
    token = url.rsplit("/u/", 1)[1]
    assert cenv.client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    lead = cenv.lead_of("eve@example.com")
    assert lead["consent"] is False and lead["consent_status"] == "withdrawn"
    items = cenv.get(f"/api/v1/leads/{lead['id']}/consent").get_json()["items"]
    assert [(i["how"], i["status"]) for i in items][-1] == ("unsubscribe", "withdrawn")
    assert campaign_id


def test_evidence_is_compact_and_erased_with_the_person(cenv) -> None:
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120"
    for email in ("fay@example.com", "gus@example.com"):
        cenv.registered(email, consent=True, headers={"User-Agent": ua})
    fay = cenv.lead_of("fay@example.com")
    keys = cenv.store.keys
    # the first piece of evidence lives in the lead's hash; the user agent once for everyone
    assert len(cenv.store.r.hget(keys.lead(fay["id"]), "ce")) <= 64
    assert not cenv.store.r.exists(keys.consent_events(f"l:{fay['id']}"))
    assert list(cenv.store.r.hvals(keys.consent_user_agents)) == [ua]
    (item,) = cenv.get(f"/api/v1/leads/{fay['id']}/consent").get_json()["items"]
    assert item["user_agent"] == ua and item["how"] == "api" and item["status"] == "given"
    # a second change goes to the list, after the first
    cenv.registered("gus@example.com")
    list_id = cenv.asset_list("guide", "lead")
    campaign_id = cenv.run(cenv.launched([list_id]))["id"]
    assert campaign_id
    msg = cenv.messenger.to("fay@example.com")
    url = re.search(r"<(https://mail\.example\.com/u/[^>]+)>", msg["List-Unsubscribe"]).group(1)
    cenv.client.post("/u/" + url.rsplit("/u/", 1)[1], data={"List-Unsubscribe": "One-Click"})
    items = cenv.get(f"/api/v1/leads/{fay['id']}/consent").get_json()["items"]
    assert [(i["how"], i["status"]) for i in items] == [("api", "given"),
                                                       ("unsubscribe", "withdrawn")]
    assert cenv.erase("fay@example.com")["status"] == "done"
    assert not cenv.store.r.exists(keys.lead(fay["id"]))
    assert not cenv.store.r.exists(keys.consent_events(f"l:{fay['id']}"))


def test_no_confirmation_when_consent_is_given_or_the_address_suppressed(doi) -> None:
    from outreach.people.consent import confirmation_not_needed

    env = doi
    s = env.store

    def mailed(email: str) -> bool:
        return send_confirmation(s, env.config, env.messenger, email, "guide", 1)

    # given before (a form without double opt-in), then registers on the double opt-in form
    s.r.hset(s.keys.asset("other"), mapping={"slug": "other", "kind": "white_paper"})
    env.registered("gil@example.com", asset="other", consent=True)
    env.registered("gil@example.com", consent=True)
    assert env.lead_of("gil@example.com")["consent_status"] == "given"
    assert confirmation_not_needed(s, "gil@example.com") == "given"
    assert not mailed("gil@example.com")
    # a contact with consent: the registration lands on the contact
    env.post("/api/v1/contacts", json={"email": "kim@example.com", "consent": True})
    assert not mailed("kim@example.com")
    # complained (suppressed) and erased addresses are never asked; an unsubscribed one is
    # asked only once the person asks again on a double opt-in form (issue 18: re-consent)
    s.r.hset(s.keys.suppressed, "una@example.com", "complaint")
    env.registered("una@example.com", consent=True)
    assert confirmation_not_needed(s, "una@example.com") == "suppressed"
    assert not mailed("una@example.com")
    s.r.hset(s.keys.suppressed, "uno@example.com", "unsubscribed")
    assert confirmation_not_needed(s, "uno@example.com") == "suppressed"
    env.registered("era@example.com", consent=True)
    assert env.erase("era@example.com")["status"] == "done"
    assert not mailed("era@example.com")
    assert env.messenger.attempts == []
    # pending, or not yet ingested: mailed (once an hour)
    env.registered("pia@example.com", consent=True)
    assert confirmation_not_needed(s, "pia@example.com") is None
    assert mailed("pia@example.com") and not mailed("pia@example.com")
    assert mailed("new@example.com")
    assert env.messenger.recipients == ["pia@example.com", "new@example.com"]


def test_a_permanent_refusal_of_a_confirmation_is_logged_once_and_not_retried(
        doi, caplog) -> None:
    from outreach.mail.smtp.classify import (
        PermanentFailure,
        SessionFailure,
        TemporaryFailure,
        UnsupportedAddress,
    )
    from outreach.mail.smtp.envelope import NO_SMTPUTF8
    from tasks.consent import confirm

    env = doi
    env.app.extensions["outreach.messenger"] = env.messenger
    env.messenger.fail.update({
        "gone@example.com": PermanentFailure("550 5.1.1 no such user", 550),
        "jürgen@example.com": UnsupportedAddress(NO_SMTPUTF8),
        "relay@example.com": SessionFailure("535 5.7.8 authentication failed", 535,
                                            stage="auth"),
        "busy@example.com": TemporaryFailure("451 4.3.0 try later", 451),
    })

    def run(email: str) -> object:
        with env.app.app_context():
            return confirm.apply(args=[email, "guide", 1])

    caplog.set_level("WARNING", logger="outreach.people.consent")
    for email, reply in (("gone@example.com", "5.1.1 no such user"),
                         ("jürgen@example.com", NO_SMTPUTF8),
                         ("relay@example.com", "5.7.8 authentication failed")):
        caplog.clear()
        result = run(email)
        assert result.successful() and result.result is False, email
        assert env.messenger.attempts.count(email) == 1, email  # tried once, never again
        refused = [r.getMessage() for r in caplog.records if "refused for good" in r.getMessage()]
        assert len(refused) == 1 and reply in refused[0], (email, refused)
    # the recipient's refusal keeps the hour's mark; the relay's lets a later one try again
    keys = env.store.keys
    assert env.store.r.exists(keys.consent_resend("gone@example.com"))
    assert not env.store.r.exists(keys.consent_resend("relay@example.com"))
    # a transient refusal is still retried (eagerly here: every retry at once)
    result = run("busy@example.com")
    assert not result.successful()
    assert env.messenger.attempts.count("busy@example.com") == 6  # the first try + 5 retries
    assert not env.store.r.exists(keys.consent_resend("busy@example.com"))
