"""Failures blamed on the right party, the circuit breaker, our own errors, international
addresses, and suppressions that say why (fakeredis; SMTP replies through FakeMessenger)."""

from __future__ import annotations

import logging
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach.campaigns import model
from outreach.campaigns.sending import deliver
from outreach.campaigns.sending.outcome import Outcome
from outreach.mail.smtp.classify import (
    BLOCKED,
    DEFERRED,
    HARD,
    RECIPIENT_STAGES,
    REFUSED,
    SESSION_FATAL,
    SESSION_STAGES,
    SESSION_TRANSIENT,
    SOFT,
    PermanentFailure,
    SessionFailure,
    TemporaryFailure,
    UnsupportedAddress,
    classify,
)
from outreach.mail.smtp.envelope import NO_SMTPUTF8, envelope_for
from outreach.normalize import InvalidEmail, checked_email, normalise_email
from outreach.people import suppressions

# ---------------------------------------------------------------- the classifier


@pytest.mark.parametrize(("stage", "code", "text", "kind"), [
    ("rcpt", 550, "5.1.1 <a@b.example>: Recipient address rejected: User unknown", HARD),
    ("rcpt", 550, "5.1.2 Host or domain name not found", HARD),
    ("rcpt", 550, "5.1.10 Recipient address has null MX", HARD),
    ("end", 550, "5.2.1 The email account that you tried to reach is disabled", HARD),
    ("rcpt", 552, "5.2.2 Mailbox full", SOFT),
    ("rcpt", 452, "4.2.2 Over quota", SOFT),
    ("rcpt", 450, "4.7.1 Greylisted, try again", DEFERRED),  # that domain backs off
    ("rcpt", 451, "Temporary local problem", SOFT),
    ("rcpt", 554, "5.7.1 <a@b.example>: Relay access denied", BLOCKED),
    ("rcpt", 550, "5.7.1 Daily sending quota exceeded", BLOCKED),
    ("end", 554, "5.7.1 Message rejected as spam", BLOCKED),
    ("rcpt", 530, "5.7.0 Authentication required", BLOCKED),
    ("rcpt", 554, "5.3.4 Message too big for system", REFUSED),
    ("rcpt", 554, "5.4.4 Unable to route", REFUSED),
    ("rcpt", 550, "5.2.3 Message length exceeds administrative limit", REFUSED),
    ("rcpt", 421, "4.7.0 Closing connection", DEFERRED),
    ("rcpt", 421, "4.7.28 Our system has detected an unusual rate of mail", DEFERRED),
    ("end", 421, "4.7.28 Rate limited, try again later", DEFERRED),
    ("rcpt", 421, "4.3.2 Service shutting down", SESSION_TRANSIENT),
    ("end", 421, "Closing connection", SESSION_TRANSIENT),
    ("rcpt", 450, "4.7.1 <news@x.example>: Sender address rejected: try later",
     SESSION_TRANSIENT),
    ("rcpt", 553, "5.1.8 <news@x.example>: Sender address rejected: Domain not found",
     SESSION_FATAL),
    ("rcpt", 550, "5.1.0 <news@x.example>: Sender address rejected: User unknown",
     SESSION_FATAL),
    # no enhanced code: only an unmistakable "no such mailbox" is a hard bounce
    ("rcpt", 550, "No such user here", HARD),
    ("rcpt", 550, "User unknown", HARD),
    ("rcpt", 550, "Relaying denied: no such user", REFUSED),
    ("rcpt", 554, "rejected", REFUSED),
    ("rcpt", 550, "Mailbox full", REFUSED),
    ("rcpt", 552, "Requested mail action aborted: exceeded storage allocation", SOFT),
    ("rcpt", 550, "5.0.0 Blocked by policy", REFUSED),
    ("rcpt", 550, "5.0.0 User unknown", HARD),
    ("rcpt", 550, "4.1.1 class does not match the reply code", REFUSED),
    # the session and the sender: never a recipient's fault
    ("auth", 535, "5.7.8 Authentication credentials invalid", SESSION_FATAL),
    ("auth", 454, "4.7.0 Temporary authentication failure", SESSION_TRANSIENT),
    ("mail", 553, "5.1.8 Sender address rejected", SESSION_FATAL),
    ("mail", 550, "5.1.1 Sender unknown", SESSION_FATAL),
    ("mail", 554, "5.7.1 Access denied", SESSION_FATAL),
    ("greeting", 554, "No SMTP service here", SESSION_FATAL),
    ("ehlo", 421, "Too many connections", SESSION_TRANSIENT),
])
def test_replies_are_attributed(stage: str, code: int, text: str, kind: str) -> None:
    assert classify(stage, code, text) == kind


_codes = st.integers(min_value=400, max_value=599)
_texts = st.text(max_size=60)


@given(st.sampled_from(SESSION_STAGES), _codes, _texts)
@settings(deadline=None)
def test_session_replies_never_suppress(stage: str, code: int, text: str) -> None:
    assert classify(stage, code, text) in (SESSION_FATAL, SESSION_TRANSIENT)


@given(st.sampled_from(RECIPIENT_STAGES), st.sampled_from([3, 4, 7]),
       st.integers(0, 999), st.integers(500, 599), _texts)
@settings(deadline=None)
def test_policy_system_and_network_codes_never_suppress(stage: str, subject: int, detail: int,
                                                        code: int, text: str) -> None:
    reply = f"5.{subject}.{detail} {text}"
    assert classify(stage, code, reply) != HARD
    failure = PermanentFailure(f"{code} {reply}", code, stage=stage)
    assert not failure.suppress


@given(st.sampled_from(RECIPIENT_STAGES), st.integers(400, 499), _texts)
@settings(deadline=None)
def test_temporary_codes_never_suppress(stage: str, code: int, text: str) -> None:
    assert classify(stage, code, text) in (SOFT, DEFERRED, SESSION_TRANSIENT, SESSION_FATAL)


# ---------------------------------------------------------------- international addresses

_local_chars = st.sampled_from(list("abcdefghijklmnopqrstuvwxyz0123456789._+-") +
                               list("äöüßéèñøåçłœžšğıçå") + ["ζ", "д", "日", "本"])
_labels = st.sampled_from(["people", "bücher", "xn--bcher-kva", "müller", "xn--mller-kva",
                           "example", "straße", "日本", "δοκιμή", "ex-ample"])
_tlds = st.sampled_from(["example", "com", "de", "org"])
_raw_addresses = st.builds(lambda local, labels, tld: f"{local}@{'.'.join([*labels, tld])}",
                           st.text(_local_chars, min_size=1, max_size=20),
                           st.lists(_labels, min_size=1, max_size=2), _tlds)


@given(_raw_addresses, st.booleans())
@settings(max_examples=300, deadline=None)
def test_any_accepted_address_is_sendable_or_fails_with_the_reason(raw: str, relay_utf8: bool
                                                                   ) -> None:
    try:
        email = checked_email(raw)
    except InvalidEmail:
        return
    try:
        envelope = envelope_for("news@outreach.example", email, relay_utf8)
    except UnsupportedAddress as exc:
        assert not relay_utf8
        assert str(exc) == NO_SMTPUTF8
        assert not exc.suppress
        assert not email.partition("@")[0].isascii()
        return
    local, _, domain = envelope.rcpt_to.rpartition("@")
    if envelope.smtputf8:
        assert relay_utf8 and envelope.rcpt_to == email
    else:
        assert envelope.rcpt_to.isascii()  # an A-label domain, no SMTPUTF8 needed
        assert normalise_email(envelope.rcpt_to) == email
    assert envelope.smtputf8 == (not local.isascii())


_idn_labels = st.sampled_from(["bücher", "müller", "straße", "日本", "δοκιμή", "zoë", "øl"])


@given(st.text(st.sampled_from("abcxyz.zoë+"), min_size=1, max_size=8).filter(
    lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s),
    _idn_labels, st.booleans())
@settings(deadline=None)
def test_u_label_and_a_label_are_one_person(local: str, label: str, upper: bool) -> None:
    import idna

    u_label = f"{local}@{label}.example"
    a_label = f"{local}@{idna.encode(label, uts46=True).decode()}.example"
    if upper:
        a_label = a_label.upper()
    assert checked_email(u_label) == checked_email(a_label) == normalise_email(a_label)


def test_intake_and_ingest_make_one_lead_of_both_spellings(env) -> None:
    for raw in ("zoe@bücher.example", "Zoe@XN--BCHER-KVA.example", "zoe@BÜCHER.example"):
        assert env.register(raw).status_code == 202
    env.drain()
    leads = env.get("/api/v1/leads").get_json()["items"]
    assert [lead["email"] for lead in leads] == ["zoe@bücher.example"]


# ---------------------------------------------------------------- the service

EMAILS = [f"p{i}@example.com" for i in range(6)]


def _recipients(env, campaign_id: str, status: str) -> dict[str, str | None]:
    page = env.get(f"/api/v1/campaigns/{campaign_id}/recipients?status={status}&limit=500")
    return {i["email"]: i["error"] for i in page.get_json()["items"]}


def test_a_refused_login_fails_and_suppresses_nobody_and_resume_sends_everyone_once(
        make_cenv) -> None:
    with make_cenv(send_batch_size=10) as env:
        campaign_id = env.launched([env.leads(*EMAILS)])
        login = SessionFailure("relay refused login: 535 5.7.8 Authentication credentials invalid",
                               535, SESSION_FATAL, "auth")
        env.messenger.fail = {e: [login] * 3 for e in EMAILS}
        env.pump()
        shown = env.show(campaign_id)
        assert shown["status"] == "paused"
        assert shown["status_reason"].startswith("relay refused login: 535 5.7.8")
        assert shown["stats"]["failed"] == shown["stats"]["suppressed"] == 0
        assert set(env.ledger(campaign_id).values()) == {"queued"}
        assert env.store.r.hlen(env.store.keys.suppressed) == 0
        assert env.messenger.attempts == ["p0@example.com"] * env.config.send_session_retries

        env.messenger.fail.clear()  # the password is fixed
        assert env.post(f"/api/v1/campaigns/{campaign_id}/resume").status_code == 200
        shown = env.run(campaign_id)
        assert shown["status"] == "sent"
        assert env.messenger.counts() == dict.fromkeys(EMAILS, 1)


def test_a_relay_refusing_everyone_trips_the_breaker_and_suppresses_none(make_cenv) -> None:
    emails = [f"r{i:02d}@example.com" for i in range(40)]
    with make_cenv(send_batch_size=7, send_window_batches=3) as env:
        campaign_id = env.launched([env.leads(*emails)])
        denied = PermanentFailure("554 5.7.1 <x>: Relay access denied", 554)
        env.messenger.fail = dict.fromkeys(emails, denied)
        env.pump()
        shown = env.show(campaign_id)
        assert shown["status"] == "paused"
        assert "554 5.7.1" in shown["status_reason"]
        assert len(env.messenger.attempts) <= 20
        assert shown["stats"]["failed"] == 0
        assert env.store.r.hlen(env.store.keys.suppressed) == 0
        assert set(env.ledger(campaign_id).values()) == {"queued"}

        env.messenger.fail.clear()  # the relay lets us through again
        env.post(f"/api/v1/campaigns/{campaign_id}/resume")
        shown = env.run(campaign_id)
        assert shown["status"] == "sent"
        assert env.messenger.counts() == dict.fromkeys(emails, 1)
        assert shown["stats"]["sent"] == 40


def test_a_relay_refusing_every_address_as_unknown_is_not_believed(make_cenv) -> None:
    emails = [f"u{i:02d}@example.com" for i in range(25)]
    with make_cenv(send_batch_size=25) as env:
        campaign_id = env.launched([env.leads(*emails)])
        unknown = PermanentFailure("550 5.1.1 User unknown in local recipient table", 550)
        env.messenger.fail = dict.fromkeys(emails, unknown)
        env.pump()
        shown = env.show(campaign_id)
        assert shown["status"] == "paused"
        assert env.store.r.hlen(env.store.keys.suppressed) == 0
        assert shown["stats"]["failed"] == 0
        assert len(env.messenger.attempts) == env.config.send_breaker_refusals


def test_scattered_dead_mailboxes_are_exactly_the_ones_suppressed(make_cenv) -> None:
    rng = random.Random(7)
    emails = [f"m{i:03d}@example.com" for i in range(300)]
    dead = {e for e in emails if rng.random() < 0.1}
    with make_cenv(send_batch_size=20, send_window_batches=4) as env:
        campaign_id = env.launched([env.leads(*emails)])
        env.messenger.fail = {e: PermanentFailure("550 5.1.1 No such user", 550) for e in dead}
        shown = env.run(campaign_id)
        assert shown["status"] == "sent"
        assert set(_recipients(env, campaign_id, "failed")) == dead
        assert set(env.store.r.hgetall(env.store.keys.suppressed)) == dead
        assert set(env.messenger.counts()) == set(emails) - dead
        listed = env.get("/api/v1/suppressions?reason=hard_bounce&limit=500").get_json()["items"]
        assert {i["email"] for i in listed} == dead
        assert {(i["campaign_id"], i["reply"]) for i in listed} == {
            (campaign_id, "550 5.1.1 No such user")}
        assert all(i["at"] for i in listed)


def test_an_error_of_our_own_fails_only_that_recipient(cenv, monkeypatch, caplog) -> None:
    emails = [f"e{i}@example.com" for i in range(9)]
    campaign_id = cenv.launched([cenv.leads(*emails)])
    real = deliver.build_message

    def broken_for_one(**kwargs):
        if kwargs["to_email"] == "e4@example.com":
            raise UnicodeEncodeError("ascii", "zo\xeb", 2, 3, "ordinal not in range(128)")
        return real(**kwargs)

    monkeypatch.setattr(deliver, "build_message", broken_for_one)
    with caplog.at_level(logging.ERROR, logger="outreach.campaigns.sending.deliver"):
        shown = cenv.run(campaign_id)
    assert shown["status"] == "sent"
    assert (shown["stats"]["sent"], shown["stats"]["failed"]) == (8, 1)
    (error,) = _recipients(cenv, campaign_id, "failed").values()
    assert error.startswith("UnicodeEncodeError: 'ascii' codec can't encode character")
    assert set(cenv.messenger.counts()) == set(emails) - {"e4@example.com"}
    logged = [r for r in caplog.records if "e4" in r.getMessage() or
              "UnicodeEncodeError" in r.getMessage()]
    assert len(logged) == 1
    assert cenv.store.r.hlen(cenv.store.keys.suppressed) == 0


def test_a_template_that_breaks_on_one_persons_data_fails_only_them(cenv) -> None:
    template_id = cenv.template(subject="Hi {{ first_name }}",
                                html="<p>{{ 10 // (first_name | length - 3) }}</p>",
                                text="x")
    list_id = cenv.leads("ok@example.com", first_name="Annabel")
    cenv.leads("bad@example.com", first_name="Bob")  # len 3: division by zero
    campaign_id = cenv.launched([list_id], template_id)
    shown = cenv.run(campaign_id)
    assert shown["status"] == "sent"
    assert cenv.messenger.recipients == ["ok@example.com"]
    (error,) = _recipients(cenv, campaign_id, "failed").values()
    assert "ZeroDivisionError" in error or "division" in error


def test_international_addresses_through_a_relay_with_and_without_smtputf8(make_cenv) -> None:
    emails = ["zoë.umlaut@people.example", "søren@people.example", "anna@bücher.example",
              "ben@xn--mller-kva.example", "plain@example.com"]
    for relay_utf8 in (True, False):
        with make_cenv() as env:
            env.messenger.smtputf8 = relay_utf8
            campaign_id = env.launched([env.leads(*emails)])
            shown = env.run(campaign_id)
            assert shown["status"] == "sent"
            envelopes = {e.rcpt_to: e for e in env.messenger.envelopes}
            assert envelopes["anna@xn--bcher-kva.example"].smtputf8 is False
            assert envelopes["ben@xn--mller-kva.example"].smtputf8 is False
            assert envelopes["plain@example.com"].smtputf8 is False
            to = {rcpt: msg["To"] for msg, _, rcpt in env.messenger.messages}
            assert to["anna@bücher.example"] == "anna@xn--bcher-kva.example"
            assert to["ben@müller.example"] == "ben@xn--mller-kva.example"
            failed = _recipients(env, campaign_id, "failed")
            if relay_utf8:
                assert failed == {}
                assert envelopes["zoë.umlaut@people.example"].smtputf8 is True
                (raw,) = [r for r in env.messenger.raw if "zoë".encode() in r]
                assert "To: zoë.umlaut@people.example\r\n".encode() in raw
                assert shown["stats"]["sent"] == 5
            else:
                assert failed == dict.fromkeys(["zoë.umlaut@people.example",
                                                "søren@people.example"], NO_SMTPUTF8)
                assert shown["stats"]["sent"] == 3 and shown["stats"]["unknown"] == 0
                assert env.store.r.hlen(env.store.keys.suppressed) == 0


@pytest.mark.parametrize("bounce_domain", ["", "bounces.outreach.example"])
def test_a_sender_address_the_relay_cannot_carry_pauses_and_fails_nobody(make_cenv,
                                                                         bounce_domain) -> None:
    """A non-ASCII local part in the sender's address (the envelope's, or only the From
    header's when VERP makes the envelope ASCII) through a relay without SMTPUTF8 is the
    sender's settings: the campaign pauses with the reason; no recipient is failed."""
    with make_cenv(bounce_domain=bounce_domain) as env:
        env.messenger.smtputf8 = False
        campaign_id = env.launched([env.leads(*EMAILS)], from_email="zoë@outreach.example")
        env.pump()
        shown = env.show(campaign_id)
        assert shown["status"] == "paused"
        assert "sender address needs SMTPUTF8" in shown["status_reason"]
        assert shown["stats"]["failed"] == shown["stats"]["suppressed"] == 0
        assert set(env.ledger(campaign_id).values()) == {"queued"}
        env.messenger.smtputf8 = True  # a relay that carries it
        assert env.post(f"/api/v1/campaigns/{campaign_id}/resume").status_code == 200
        assert env.run(campaign_id)["status"] == "sent"
        assert env.messenger.counts() == dict.fromkeys(EMAILS, 1)
        assert all(e.smtputf8 for e in env.messenger.envelopes)


def test_to_shows_the_address_as_the_person_wrote_it(make_cenv) -> None:
    """Dedup, lists and the envelope use the normal form; To: shows the person's spelling
    (with SMTPUTF8 as written, else with the domain's A-label, as the envelope has it)."""
    given = ["Søren@People.Example", "Ann@Bücher.Example", " Bob@EXAMPLE.com "]
    with make_cenv() as env:
        list_id = env.leads(*given)
        env.leads("ann@bücher.example")  # a later registration in the normal form
        env.leads("ANN@xn--bcher-kva.example")  # ... or another spelling: the same person
        assert len(env.get("/api/v1/leads").get_json()["items"]) == 3
        assert env.run(env.launched([list_id]))["stats"]["sent"] == 3
        to = {rcpt: msg["To"] for msg, _, rcpt in env.messenger.messages}
        assert to == {"søren@people.example": "Søren@People.Example",
                      "ann@bücher.example": "ANN@xn--bcher-kva.example",
                      "bob@example.com": "Bob@EXAMPLE.com"}
        envelopes = {e.rcpt_to for e in env.messenger.envelopes}
        assert envelopes == {"søren@people.example", "ann@xn--bcher-kva.example", "bob@example.com"}
        # a forged stream entry cannot point To: at somebody else
        from outreach.people.ingest import _flat_record

        record = _flat_record("1-0", "eve@example.com", "white_paper", "guide", 0,
                              {"email_given": "boss@example.com"}, trusted=False)
        assert "email_given" not in record


def test_unknown_recipients_carry_the_reason(make_cenv) -> None:
    from outreach.mail.smtp.classify import AmbiguousFailure

    with make_cenv() as env:
        campaign_id = env.launched([env.leads(*EMAILS)])
        env.messenger.fail["p2@example.com"] = AmbiguousFailure(
            "no final reply after the message was sent: TimeoutError: timed out")
        env.run(campaign_id)
        assert _recipients(env, campaign_id, "unknown") == {
            "p2@example.com": "no final reply after the message was sent: TimeoutError: timed out"}
        sent = env.get(f"/api/v1/campaigns/{campaign_id}/recipients?status=sent").get_json()
        assert {i["error"] for i in sent["items"]} == {None}


# ---------------------------------------------------------------- suppressions


def test_suppressions_list_say_why_and_only_bounces_can_be_lifted(cenv, check_error) -> None:
    keys = cenv.store.keys
    campaign_id = cenv.launched([cenv.leads("dead@example.com", "fine@example.com",
                                            "gone@example.com")])
    cenv.messenger.fail["dead@example.com"] = PermanentFailure("550 5.1.1 no such user", 550)
    cenv.run(campaign_id)
    cenv.store.r.hset(keys.suppressed, "left@example.com", "unsubscribed")
    cenv.store.r.hset(keys.suppressed, "angry@example.com", "complaint")
    assert cenv.erase("gone@example.com")["status"] == "done"

    everything = cenv.get("/api/v1/suppressions?limit=2")
    page = everything.get_json()
    items = page["items"]
    while page["next_cursor"]:
        page = cenv.get(f"/api/v1/suppressions?limit=2&cursor={page['next_cursor']}").get_json()
        items += page["items"]
    by_reason = {i["reason"]: i for i in items}
    assert sorted(by_reason) == ["complaint", "erased", "hard_bounce", "unsubscribed"]
    assert len(items) == 4
    assert by_reason["erased"]["email"] is None and len(by_reason["erased"]["email_hash"]) == 64
    bounce = by_reason["hard_bounce"]
    assert (bounce["email"], bounce["campaign_id"], bounce["reply"]) == (
        "dead@example.com", campaign_id, "550 5.1.1 no such user")
    only = cenv.get("/api/v1/suppressions?reason=unsubscribed").get_json()["items"]
    assert [i["email"] for i in only] == ["left@example.com"]
    check_error(cenv.get("/api/v1/suppressions?reason=bogus"), 422)
    check_error(cenv.get("/api/v1/suppressions?cursor=zz"), 422)

    delete = cenv.client.delete
    for address in ("left@example.com", "angry@example.com", "gone@example.com"):
        check_error(delete(f"/api/v1/suppressions/{address}", headers=cenv.auth), 409)
    check_error(delete("/api/v1/suppressions/fine@example.com", headers=cenv.auth), 404)
    check_error(delete("/api/v1/suppressions/not-an-address", headers=cenv.auth), 422)
    lifted = delete("/api/v1/suppressions/DEAD@example.com", headers=cenv.auth)
    assert lifted.status_code == 200 and lifted.get_json()["lifted"] is True
    assert cenv.store.r.hget(keys.suppressed, "dead@example.com") is None
    assert suppressions.get_suppression(cenv.store, "dead@example.com") is None
    assert cenv.store.r.hget(keys.suppressed, "left@example.com") == "unsubscribed"
    assert cenv.client.get("/api/v1/suppressions").status_code == 401

    cenv.messenger.fail.clear()
    later = cenv.launched([cenv.asset_list("guide", "lead")])
    cenv.run(later)
    assert cenv.messenger.counts()["dead@example.com"] == 1  # mailed again after the lift


@given(st.lists(st.sampled_from(["hard_bounce", "unsubscribed", "complaint", "manual"]),
                min_size=0, max_size=30), st.integers(1, 7))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_suppression_pages_list_each_once(make_env, reasons: list[str], limit: int) -> None:
    stored = {"hard_bounce": "bounced:cp1", "unsubscribed": "unsubscribed",
              "complaint": "complaint", "manual": "manual"}
    with make_env() as env:
        expected = {}
        for i, reason in enumerate(reasons):
            env.store.r.hset(env.store.keys.suppressed, f"a{i}@example.com", stored[reason])
            expected[f"a{i}@example.com"] = reason
        for wanted in (None, "manual"):
            seen: list[str] = []
            cursor = None
            while True:
                query = f"/api/v1/suppressions?limit={limit}" + (f"&reason={wanted}" if wanted else "")
                page = env.get(query + (f"&cursor={cursor}" if cursor else "")).get_json()
                assert len(page["items"]) <= limit
                seen += [i["email"] for i in page["items"]]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            assert sorted(seen) == sorted(e for e, r in expected.items() if not wanted or r == wanted)


def test_soft_refusal_is_not_a_permanent_failure() -> None:
    assert not isinstance(TemporaryFailure("452 4.2.2 full", 452), PermanentFailure)
    assert PermanentFailure("550 5.1.1 x", 550).suppress
    assert not PermanentFailure("554 5.7.1 x", 554).suppress
    assert model.LEDGER_STATES["f"] == "failed"


def test_a_refusal_in_flight_when_the_breaker_trips_goes_back_to_the_queue(make_cenv) -> None:
    emails = [f"f{i:02d}@example.com" for i in range(12)]
    with make_cenv(send_batch_size=12, send_breaker_refusals=3) as env:
        campaign_id = env.launched([env.leads(*emails)])
        env.pending()
        env.dispatch(campaign_id)
        keys = env.store.keys
        claim_keys = [keys.campaign(campaign_id), keys.campaign_ledger(campaign_id),
                      keys.campaign_sending(campaign_id), keys.suppressed,
                      keys.campaign_bucket(campaign_id), keys.erased,
                      keys.campaign_errors(campaign_id), keys.campaign_claims(campaign_id),
                      keys.send_run("t")]
        import time as _time

        for address in emails[:4]:  # four transactions in flight at once (several workers)
            assert env.store.run("claim_send", keys=claim_keys, args=[
                address, repr(_time.time()), 60, 0, "h", "", 10, keys.send_run("")])[0] == "claimed"
        refusal = PermanentFailure("550 5.1.1 User unknown in local recipient table", 550)
        verdicts = [Outcome(env.store, env.config, campaign_id, a).refused(refusal)
                    for a in emails[:4]]
        assert verdicts == ["failed", "failed", "tripped", "failed"]
        assert env.show(campaign_id)["status"] == "paused"
        assert set(env.ledger(campaign_id).values()) == {"queued"}  # the late one too
        assert env.store.r.hlen(keys.suppressed) == 0
        env.post(f"/api/v1/campaigns/{campaign_id}/resume")
        assert env.run(campaign_id)["status"] == "sent"
        assert env.messenger.counts() == dict.fromkeys(emails, 1)


def test_every_message_follows_the_address_rules_whoever_builds_it() -> None:
    """Confirmation, reminder and campaign mail all go through build_message."""
    from outreach.mail.message import build_message
    from outreach.mail.smtp.messenger import dot_stuffed

    def head(to: str) -> bytes:
        msg = build_message(from_email="news@outreach.example", to_email=to, subject="Grüße",
                            text="t", html="<p>h</p>", unsubscribe_url="https://x.example/u/1",
                            unsubscribe_mailto="mailto:u@outreach.example", campaign_id="c1")
        return dot_stuffed(msg).split(b"\r\n\r\n")[0]

    idn = head("anna@bücher.example")
    assert idn.isascii() and b"To: anna@xn--bcher-kva.example\r\n" in idn
    assert b"Subject: =?utf-8?" in idn  # RFC 2047 where SMTPUTF8 is not used
    utf8 = head("zoë@bücher.example")
    assert "To: zoë@bücher.example\r\n".encode() in utf8
    assert "Subject: Grüße\r\n".encode() in utf8  # RFC 6532
