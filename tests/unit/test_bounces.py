"""Bounce and complaint processing: DSN/ARF parsing, VERP tokens, the one processor."""

from __future__ import annotations

import email
from email.message import Message
from typing import Any

import dkim
import pytest
from bounce_reports import arf, dsn  # noqa: E402  (tests/bounce_reports.py)
from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.campaigns.bounces import processor as bounces
from outreach.mail import verp
from outreach.mail.dkim import DkimSigner, generate_key
from outreach.mail.reports import Report, classify_status, parse

BOUNCE_DOMAIN = "bounces.outreach.example"


@pytest.fixture
def sent(make_cenv: Any) -> Any:
    """A campaign sent to three people with VERP and DKIM on."""
    with make_cenv(bounce_domain=BOUNCE_DOMAIN, soft_bounce_limit=2) as env:
        list_id = env.leads("ann@example.org", "bob@example.org", "cat@example.org")
        env.campaign_id = env.launched([list_id])
        shown = env.run(env.campaign_id)
        assert shown["stats"]["sent"] == 3
        env.by_rcpt = {rcpt: (raw, mail_from) for (_, mail_from, rcpt), raw
                       in zip(env.messenger.messages, env.messenger.raw, strict=True)}
        yield env


def _process(env: Any, raw: bytes, to: str) -> dict[str, Any]:
    return bounces.process_message(env.store, env.config, raw, [to])


def test_the_envelope_sender_is_a_signed_verp_address(sent: Any) -> None:
    raw, mail_from = sent.by_rcpt["ann@example.org"]
    assert mail_from.startswith("b-") and mail_from.endswith("@" + BOUNCE_DOMAIN)
    assert len(mail_from.partition("@")[0]) <= 64
    campaign_id, ref = verp.read_return_path(sent.config.secret_key, mail_from)
    assert campaign_id == sent.campaign_id and ref == "l:" + sent.lead_of("ann@example.org")["id"]
    msg = email.message_from_bytes(raw)
    assert verp.read_message_id(sent.config.secret_key, msg["Message-ID"]) == (campaign_id, ref)
    assert msg["List-Id"]


def test_a_hard_bounce_suppresses_and_is_counted_once(sent: Any) -> None:
    raw, mail_from = sent.by_rcpt["ann@example.org"]
    report = dsn(raw, "ann@example.org", "5.1.1",
                 "550 5.1.1 <ann@example.org>: Recipient address rejected: User unknown")
    first = _process(sent, report, mail_from)
    assert first["what"] == "dsn" and first["reports"][0]["outcome"] == "suppressed"
    again = _process(sent, report, mail_from)
    assert again["reports"][0]["outcome"] == "duplicate"
    shown = sent.show(sent.campaign_id)
    assert shown["stats"]["bounced"] == 1 and shown["stats"]["sent"] == 3
    assert sent.ledger(sent.campaign_id)["ann@example.org"] == "bounced"
    items = sent.get("/api/v1/suppressions").get_json()["items"]
    (item,) = [i for i in items if i["email"] == "ann@example.org"]
    assert item["reason"] == "hard_bounce" and item["campaign_id"] == sent.campaign_id
    assert "5.1.1" in item["reply"]
    bounced = sent.get(f"/api/v1/campaigns/{sent.campaign_id}/recipients?status=bounced").get_json()
    assert [i["email"] for i in bounced["items"]] == ["ann@example.org"]


def test_a_second_hard_bounce_report_for_a_bounced_recipient_is_not_counted_again(sent: Any) -> None:
    """Two reports with two report ids about one recipient (e.g. the relay's DSN and a
    provider's webhook): one bounced recipient in the stats; both reach the timeline."""
    ref = "l:" + sent.lead_of("ann@example.org")["id"]
    outcomes = [bounces.apply_report(sent.store, sent.config, Report(
        kind="hard", recipient="ann@example.org", status="5.1.1", diagnostic="550 5.1.1 User unknown",
        campaign_id=sent.campaign_id, ref=ref, report_id=report_id)) for report_id in ("r1", "r2")]
    assert outcomes == ["suppressed", "recorded"]  # the second is no duplicate: another report
    shown = sent.show(sent.campaign_id)
    assert shown["stats"]["bounced"] == 1 and shown["stats"]["sent"] == 3
    assert sent.ledger(sent.campaign_id)["ann@example.org"] == "bounced"
    events = sent.store.r.lrange(sent.store.keys.person_events(ref), 0, -1)
    assert len([e for e in events if e.startswith("bounce|")]) == 2
    bob_raw, bob_from = sent.by_rcpt["bob@example.org"]  # another recipient still counts
    _process(sent, dsn(bob_raw, "bob@example.org", "5.1.1", "550 5.1.1 User unknown"), bob_from)
    assert sent.show(sent.campaign_id)["stats"]["bounced"] == 2


def test_the_message_id_identifies_a_dsn_sent_elsewhere(sent: Any) -> None:
    raw, _ = sent.by_rcpt["bob@example.org"]
    report = dsn(raw, "bob@example.org", "5.0.0", "550 User unknown")
    out = _process(sent, report, f"postmaster@{BOUNCE_DOMAIN}")
    assert out["reports"][0]["kind"] == "hard" and out["reports"][0]["outcome"] == "suppressed"


def test_soft_bounces_suppress_only_at_the_limit_and_blocks_never(sent: Any) -> None:
    raw, mail_from = sent.by_rcpt["bob@example.org"]
    full = dsn(raw, "bob@example.org", "5.2.2", "552 5.2.2 Mailbox full", msgid="<a@mx>")
    delayed = dsn(raw, "bob@example.org", "4.4.1", "connect timed out", action="delayed",
                  msgid="<b@mx>")
    assert _process(sent, full, mail_from)["reports"][0]["outcome"] == "recorded"
    assert sent.store.r.hget(sent.store.keys.suppressed, "bob@example.org") is None
    assert _process(sent, delayed, mail_from)["reports"][0]["outcome"] == "suppressed"
    raw_c, from_c = sent.by_rcpt["cat@example.org"]
    blocked = dsn(raw_c, "cat@example.org", "5.7.1", "554 5.7.1 Message rejected as spam")
    assert _process(sent, blocked, from_c)["reports"][0] == {
        "kind": "blocked", "recipient": "cat@example.org", "status": "5.7.1", "outcome": "recorded"}
    assert sent.store.r.hget(sent.store.keys.suppressed, "cat@example.org") is None
    stats = sent.show(sent.campaign_id)["stats"]
    assert (stats["soft_bounced"], stats["blocked"], stats["bounced"]) == (2, 1, 0)


def test_a_complaint_suppresses_and_withdraws_consent(sent: Any) -> None:
    raw, _ = sent.by_rcpt["cat@example.org"]
    out = _process(sent, arf(raw, "cat@example.org"), f"abuse@{BOUNCE_DOMAIN}")
    assert out["what"] == "arf" and out["reports"][0]["outcome"] == "suppressed"
    assert _process(sent, arf(raw, "cat@example.org"), f"abuse@{BOUNCE_DOMAIN}")["reports"][0][
        "outcome"] == "duplicate"
    assert sent.show(sent.campaign_id)["stats"]["complained"] == 1
    assert sent.ledger(sent.campaign_id)["cat@example.org"] == "complained"
    assert sent.store.r.hget(sent.store.keys.suppressed, "cat@example.org").startswith("complaint")
    lead = sent.lead_of("cat@example.org")
    assert lead["consent_status"] == "withdrawn" and lead["consent"] is False


def test_forged_and_foreign_reports_name_nobody(sent: Any) -> None:
    raw, mail_from = sent.by_rcpt["ann@example.org"]
    forged = mail_from.replace(mail_from[-len(BOUNCE_DOMAIN) - 3], "z" if mail_from[
        -len(BOUNCE_DOMAIN) - 3] != "z" else "y")
    stripped = raw.replace(b"Message-ID:", b"X-Old-Message-ID:")
    report = dsn(stripped, "ann@example.org", "5.1.1", "550 5.1.1 User unknown")
    assert _process(sent, report, forged)["reports"][0]["outcome"] == "unknown"
    assert sent.store.r.hget(sent.store.keys.suppressed, "ann@example.org") is None
    other_secret = verp.return_path("another-secret-key-of-32-bytes-or-more", BOUNCE_DOMAIN,
                                    sent.campaign_id, "l:" + sent.lead_of("ann@example.org")["id"])
    assert _process(sent, report, other_secret)["reports"][0]["outcome"] == "unknown"


def test_auto_replies_are_ignored(sent: Any) -> None:
    reply = Message()
    reply["From"] = "ann@example.org"
    reply["Subject"] = "Out of Office: Hello"
    reply["Auto-Submitted"] = "auto-replied"
    reply.set_payload("I am away until Monday.")
    out = _process(sent, reply.as_bytes(), sent.by_rcpt["ann@example.org"][1])
    assert out == {"what": "auto_reply", "reports": []}


def test_a_bounce_rate_over_the_limit_pauses_the_campaign(make_cenv: Any) -> None:
    with make_cenv(bounce_domain=BOUNCE_DOMAIN, send_batch_size=50) as env:
        emails = [f"p{i}@example.org" for i in range(210)]
        list_id = env.leads(*emails)
        campaign_id = env.launched([list_id])
        env.run(campaign_id)
        keys = env.store.keys
        env.store.r.hset(keys.campaign(campaign_id), "status", "sending")  # still going
        for (_, mail_from, rcpt), raw in list(zip(env.messenger.messages, env.messenger.raw,
                                                 strict=True))[:11]:
            _process(env, dsn(raw, rcpt, "5.1.1", "550 5.1.1 no such user"), mail_from)
        shown = env.show(campaign_id)
        assert shown["status"] == "paused"
        assert "OUTREACH_MAX_BOUNCE_RATE" in shown["status_reason"]


@pytest.mark.parametrize("status,diag,action,kind", [
    ("5.1.1", "smtp; 550 5.1.1 user unknown", "failed", "hard"),
    ("5.0.0", "smtp; 550 No such user here", "failed", "hard"),
    ("5.2.2", "smtp; 552 5.2.2 mailbox full", "failed", "soft"),
    ("4.2.0", "smtp; 450 try later", "failed", "soft"),
    ("5.1.1", "", "delayed", "soft"),
    ("5.7.1", "smtp; 554 5.7.1 blocked by policy", "failed", "blocked"),
    ("5.7.26", "smtp; 550 5.7.26 unauthenticated", "failed", "blocked"),
    ("2.0.0", "smtp; 250 ok", "delivered", None),
])
def test_classification_matches_the_send_path(status: str, diag: str, action: str,
                                              kind: str | None) -> None:
    assert classify_status(status, diag, action) == kind


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_changed_token_character_is_refused(data: st.DataObject) -> None:
    secret = "secret-key-0123456789-0123456789-abcdef"
    campaign_id = "cp" + data.draw(st.text("0123456789abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6))
    ref = data.draw(st.sampled_from("lc")) + ":" + data.draw(
        st.text("0123456789abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8))
    address = verp.return_path(secret, BOUNCE_DOMAIN, campaign_id, ref)
    assert verp.read_return_path(secret, address) == (campaign_id, ref)
    assert verp.read_return_path(secret, address.upper()) == (campaign_id, ref)  # case folded
    local = address.partition("@")[0]
    pos = data.draw(st.integers(2, len(local) - 1))
    new = data.draw(st.sampled_from("0123456789abcdefghijklmnopqrstuvwxyz.-").filter(
        lambda c: c != local[pos]))
    tampered = local[:pos] + new + local[pos + 1:] + "@" + BOUNCE_DOMAIN
    assert verp.read_return_path(secret, tampered) is None


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=2000))
def test_parse_never_crashes_on_garbage(raw: bytes) -> None:
    out = parse(raw, "secret", ["b-x@" + BOUNCE_DOMAIN])
    assert out.what in ("dsn", "arf", "auto_reply", "other")


def test_dsn_parsing_survives_dkim_signed_originals() -> None:
    signer = DkimSigner.from_pem("outreach.example", "s", generate_key("ed25519"))
    from outreach.mail.message import build_message

    msg = build_message(from_email="news@outreach.example", to_email="d@example.org", subject="Hi",
                        text="t", html="<p>t</p>", unsubscribe_url="https://x/u/1",
                        unsubscribe_mailto="mailto:u@outreach.example", campaign_id="cp1",
                        message_id=verp.message_id("k" * 32, "outreach.example", "cp1", "l:ld1"),
                        dkim=signer)
    wire = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    assert dkim.verify(wire, dnsfunc=lambda name, timeout=5: signer.dns_record().encode())
    parsed = parse(dsn(wire, "d@example.org", "5.1.1", "550 5.1.1 unknown"), "k" * 32, [])
    assert (parsed.reports[0].campaign_id, parsed.reports[0].ref) == ("cp1", "l:ld1")


class FakeImap:
    """An IMAP server's side of the conversation imaplib has (UID SEARCH/FETCH/STORE)."""

    def __init__(self, messages: dict[bytes, bytes], fail_on: bytes | None = None) -> None:
        self.messages, self.deleted, self.expunged = dict(messages), set(), False
        self.keywords: dict[bytes, set[str]] = {}
        self.logged_in = None

    def login(self, user: str, password: str) -> tuple[str, list[bytes]]:
        self.logged_in = (user, password)
        return "OK", [b"logged in"]

    def select(self, mailbox: str) -> tuple[str, list[bytes]]:
        self.mailbox = mailbox
        return "OK", [str(len(self.messages)).encode()]

    def uid(self, command: str, *args: Any) -> tuple[str, list[Any]]:
        if command == "SEARCH":  # UNDELETED UNKEYWORD $OutreachKept
            assert args[1:] == ("UNDELETED", "UNKEYWORD", "$OutreachKept"), args
            return "OK", [b" ".join(sorted(uid for uid in self.messages if uid not in self.deleted
                                           and "$OutreachKept" not in self.keywords.get(uid, ())))]
        if command == "FETCH":
            assert args[1] == "(BODY.PEEK[])", args  # read without marking \Seen
            return "OK", [(args[0] + b" (BODY[] {n}", self.messages[args[0]]), b")"]
        if command == "STORE":
            if args[2] == "(\\Deleted)":
                self.deleted.add(args[0])
            else:
                self.keywords.setdefault(args[0], set()).update(args[2].strip("()").split())
            return "OK", []
        raise AssertionError(command)

    def expunge(self) -> tuple[str, list[bytes]]:
        self.expunged = True
        for uid in self.deleted:
            self.messages.pop(uid, None)
        return "OK", []

    def logout(self) -> None:
        pass


def test_the_mailbox_door_processes_then_deletes(sent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from outreach.campaigns.bounces import mailbox

    raw, _ = sent.by_rcpt["ann@example.org"]
    fake = FakeImap({b"7": dsn(raw, "ann@example.org", "5.1.1", "550 5.1.1 user unknown"),
                     b"8": arf(sent.by_rcpt["bob@example.org"][0], "bob@example.org")})
    config = sent.config.with_overrides(bounce_mailbox="imaps://bounces%40x:p%3Ass@imap.example/Bounces")
    seen: list[dict[str, Any]] = []
    counts = mailbox.poll(sent.store, config, connect=lambda s: seen.append(s) or fake)
    assert seen[0] == {"ssl": True, "host": "imap.example", "port": 993, "user": "bounces@x",
                       "password": "p:ss", "mailbox": "Bounces"}
    assert counts == {"messages": 2, "reports": 2, "failed": 0, "kept": 0}
    assert fake.messages == {} and fake.expunged
    assert sent.ledger(sent.campaign_id)["ann@example.org"] == "bounced"
    assert sent.ledger(sent.campaign_id)["bob@example.org"] == "complained"


def test_the_mailbox_keeps_what_could_not_be_processed(sent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from outreach.campaigns.bounces import mailbox

    fake = FakeImap({b"1": dsn(sent.by_rcpt["ann@example.org"][0], "ann@example.org", "5.1.1", "x")})

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("store down")

    monkeypatch.setattr(bounces, "process_message", broken)
    config = sent.config.with_overrides(bounce_mailbox="imap://u:p@127.0.0.1/INBOX")
    assert mailbox.poll(sent.store, config, connect=lambda s: fake)["failed"] == 1
    assert b"1" in fake.messages and not fake.deleted


def test_the_mailbox_keeps_what_is_not_a_report_for_a_human(sent: Any) -> None:
    from outreach.campaigns.bounces import mailbox

    human = (b"From: Ann <ann@example.org>\r\nTo: bounces@x\r\nSubject: Re: your mail\r\n"
             b"Message-ID: <h1@example.org>\r\n\r\nPlease call me.\r\n")
    ooo = b"From: b@example.org\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\nx\r\n"
    fake = FakeImap({b"1": human, b"2": ooo})
    config = sent.config.with_overrides(bounce_mailbox="imap://u:p@127.0.0.1/INBOX")
    counts = mailbox.poll(sent.store, config, connect=lambda s: fake)
    assert counts == {"messages": 1, "reports": 0, "failed": 0, "kept": 1}
    assert set(fake.messages) == {b"1"} and fake.keywords == {b"1": {"$OutreachKept"}}
    again = mailbox.poll(sent.store, config, connect=lambda s: fake)  # passed over from now on
    assert again == {"messages": 0, "reports": 0, "failed": 0, "kept": 0}
    assert set(fake.messages) == {b"1"}


def test_lifting_a_soft_bounce_suppression_starts_the_count_afresh(sent: Any) -> None:
    raw, mail_from = sent.by_rcpt["bob@example.org"]
    for n, status in enumerate(("5.2.2", "4.2.2")):
        report = dsn(raw, "bob@example.org", status, f"452 {status} Mailbox full", msgid=f"<s{n}@mx>")
        _process(sent, report, mail_from)
    assert sent.store.r.hget(sent.store.keys.suppressed, "bob@example.org")
    lifted = sent.client.delete("/api/v1/suppressions/bob@example.org", headers=sent.auth)
    assert lifted.status_code == 200
    again = dsn(raw, "bob@example.org", "4.4.1", "connect timed out", action="delayed")
    assert _process(sent, again, mail_from)["reports"][0]["outcome"] == "recorded"
    assert sent.store.r.hget(sent.store.keys.suppressed, "bob@example.org") is None
