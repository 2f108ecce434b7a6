"""Sending: exactly once per (campaign, address), failure policy, token bucket, the message."""

from __future__ import annotations

import email
import email.policy
import re
import time
from urllib.parse import urlsplit

from outreach.campaigns import lifecycle, model
from outreach.campaigns.sending.batch import STOP
from outreach.campaigns.sending.outcome import Outcome
from outreach.mail.smtp.classify import (
    AmbiguousFailure,
    ConnectionFailure,
    PermanentFailure,
    TemporaryFailure,
)
from outreach.normalize import email_hash

EMAILS = [f"p{i}@example.com" for i in range(6)]  # two batches of three


def started(env, emails=EMAILS, **fields):
    """A launched campaign whose audience is dispatched; returns (id, batch numbers)."""
    campaign_id = env.launched([env.leads(*emails)], **fields)
    env.pending()
    env.dispatch(campaign_id)
    batches = [args[1] for name, args in env.pending() if name == "send_batch"]
    return campaign_id, batches


def requeue(env, campaign_id, batches):
    """Queue the send jobs again (as the broker would redeliver them) for ``env.pump``."""
    env.jobs.calls.extend(("send_batch", (campaign_id, b)) for b in batches)


def claim_keys(env, campaign_id):
    keys = env.store.keys
    return [keys.campaign(campaign_id), keys.campaign_ledger(campaign_id),
            keys.campaign_sending(campaign_id), keys.suppressed, keys.campaign_bucket(campaign_id),
            keys.erased, keys.campaign_errors(campaign_id), keys.campaign_claims(campaign_id),
            keys.send_run("test")]


def claim(env, campaign_id, address, now, rate=0.0):
    """The claim_send script called as ``send_batch`` calls it, with a chosen ``now``."""
    return env.store.run("claim_send", keys=claim_keys(env, campaign_id), args=[
        address, repr(now), env.config.send_claim_timeout_seconds, rate, email_hash(address),
        "", 10, env.store.keys.send_run("")])


# ---------------------------------------------------------------- exactly once

def test_redelivered_batch_sends_nothing_again(cenv) -> None:
    campaign_id, batches = started(cenv)
    assert batches == [1, 2]
    first = cenv.send_batch(campaign_id, 1)
    assert (first.sent, first.finished, first.retry_in) == (3, True, None)
    again = cenv.send_batch(campaign_id, 1)  # the broker delivers the task a second time
    assert (again.sent, again.finished) == (0, True)
    assert cenv.messenger.recipients == EMAILS[:3]
    cenv.jobs.calls.append(("send_batch", (campaign_id, 2)))
    cenv.pump()
    cenv.send_batch(campaign_id, 2)
    cenv.send_batch(campaign_id, 1)
    assert cenv.messenger.counts() == dict.fromkeys(EMAILS, 1)
    assert cenv.run(campaign_id)["stats"]["sent"] == 6


def test_pause_midway_then_resume_sends_everyone_once(cenv) -> None:
    campaign_id, batches = started(cenv)

    def pause_after_two(rcpt: str) -> None:
        if len(cenv.messenger.messages) == 2:
            lifecycle.pause(cenv.store, campaign_id)

    cenv.messenger.before_send = pause_after_two
    for batch_no in batches:
        cenv.send_batch(campaign_id, batch_no)
    # the third message was claimed before the pause and goes out; nothing after it
    assert cenv.messenger.recipients == EMAILS[:3]
    shown = cenv.show(campaign_id)
    assert shown["status"] == "paused"
    assert shown["stats"]["sent"] == 3
    assert cenv.watch(campaign_id) is None  # a paused campaign has no watch running
    cenv.messenger.before_send = None
    for batch_no in batches:  # the send tasks come back while it is paused
        cenv.send_batch(campaign_id, batch_no)
    assert len(cenv.messenger.messages) == 3

    cenv.pending()
    resumed = cenv.post(f"/api/v1/campaigns/{campaign_id}/resume").get_json()
    assert resumed["status"] == "sending"
    shown = cenv.run(campaign_id)
    assert cenv.messenger.counts() == dict.fromkeys(EMAILS, 1)
    assert shown["status"] == "sent"
    assert shown["stats"]["sent"] == 6


def test_pause_and_resume_many_times(cenv) -> None:
    emails = [f"q{i:02d}@example.com" for i in range(20)]
    campaign_id = cenv.launched([cenv.leads(*emails)])

    def pause_every_third(rcpt: str) -> None:
        if len(cenv.messenger.messages) % 3 == 2:
            lifecycle.pause(cenv.store, campaign_id)

    cenv.messenger.before_send = pause_every_third
    for _ in range(30):
        cenv.pump()
        if cenv.show(campaign_id)["status"] != "paused":
            break
        lifecycle.resume(cenv.store, cenv.jobs, campaign_id)
    assert cenv.run(campaign_id)["status"] == "sent"
    assert cenv.messenger.counts() == dict.fromkeys(emails, 1)


def test_a_crashed_workers_claim_becomes_unknown_and_is_never_resent(make_cenv) -> None:
    with make_cenv(send_claim_timeout_seconds=10) as env:
        campaign_id, batches = started(env)
        # a worker claimed p1 eleven seconds ago and died before finishing
        assert claim(env, campaign_id, "p1@example.com", time.time() - 11)[0] == "claimed"
        requeue(env, campaign_id, batches)
        shown = env.run(campaign_id)
        assert "p1@example.com" not in env.messenger.attempts
        assert env.ledger(campaign_id)["p1@example.com"] == "unknown"
        assert shown["stats"] == {**shown["stats"], "sent": 5, "unknown": 1, "targeted": 6}
        assert shown["status"] == "sent"
        assert shown["progress"] == 1.0


def test_a_fresh_claim_is_left_alone_until_it_times_out(make_cenv, monkeypatch) -> None:
    with make_cenv(send_claim_timeout_seconds=10) as env:
        campaign_id, batches = started(env)
        assert claim(env, campaign_id, "p1@example.com", time.time())[0] == "claimed"
        result = env.send_batch(campaign_id, 1)  # another worker gets the redelivered batch
        assert (result.sent, result.finished) == (2, False)  # p1 is busy: not resent
        env.send_batch(campaign_id, 2)
        assert env.watch(campaign_id) == env.config.campaign_watch_seconds
        assert env.show(campaign_id)["status"] == "sending"
        later = time.time() + 11
        monkeypatch.setattr(model, "now", lambda: later)
        env.watch(campaign_id)  # the watch reports the dead claim
        assert env.ledger(campaign_id)["p1@example.com"] == "unknown"
        assert env.store.r.zcard(env.store.keys.campaign_sending(campaign_id)) == 0
        assert env.send_batch(campaign_id, 1).finished is True
        assert env.watch(campaign_id) is None
        shown = env.show(campaign_id)
        assert shown["status"] == "sent"
        assert (shown["stats"]["sent"], shown["stats"]["unknown"]) == (5, 1)
        assert "p1@example.com" not in env.messenger.attempts


def test_finishing_a_claim_that_was_declared_unknown_changes_nothing(cenv) -> None:
    campaign_id, _ = started(cenv)
    keys = cenv.store.keys
    claim(cenv, campaign_id, "p0@example.com", time.time() - 10_000)
    assert claim(cenv, campaign_id, "p0@example.com", time.time())[0] == "unknown"
    assert Outcome(cenv.store, cenv.config, campaign_id, "p0@example.com").finish(
        "sent") == 0
    assert cenv.ledger(campaign_id)["p0@example.com"] == "unknown"
    h = cenv.store.r.hgetall(keys.campaign(campaign_id))
    assert (h.get("sent"), h.get("unknown")) == (None, "1")


def test_ambiguous_failure_is_unknown_and_not_resent(cenv) -> None:
    campaign_id, batches = started(cenv)
    cenv.messenger.fail["p1@example.com"] = AmbiguousFailure("no reply after DATA")
    requeue(cenv, campaign_id, batches)
    shown = cenv.run(campaign_id)
    assert cenv.messenger.attempts.count("p1@example.com") == 1
    assert "p1@example.com" not in cenv.messenger.recipients
    assert cenv.ledger(campaign_id)["p1@example.com"] == "unknown"
    assert shown["status"] == "sent"
    assert (shown["stats"]["sent"], shown["stats"]["unknown"]) == (5, 1)
    assert "no reply after DATA" in shown["last_error"]
    for batch_no in batches:
        cenv.send_batch(campaign_id, batch_no)
    assert cenv.messenger.attempts.count("p1@example.com") == 1


# ---------------------------------------------------------------- failures

def test_temporary_failure_requeues_with_capped_backoff(cenv) -> None:
    campaign_id, batches = started(cenv)
    cenv.messenger.fail["p1@example.com"] = [TemporaryFailure("451 4.3.0 try later", 451)] * 2
    first = cenv.send_batch(campaign_id, 1)
    # the soft refusal is the recipient's: it waits, the rest of the batch goes on
    assert (first.sent, first.retry_in, first.finished) == (2, 1.0, False)
    assert cenv.ledger(campaign_id)["p1@example.com"] == "queued"
    assert cenv.messenger.attempts == ["p0@example.com", "p1@example.com", "p2@example.com"]
    second = cenv.send_batch(campaign_id, 1, attempt=3)
    assert (second.sent, second.retry_in) == (0, 8.0)
    assert cenv.send_batch(campaign_id, 1, attempt=50).retry_in is None  # third try delivers
    assert cenv.ledger(campaign_id)["p1@example.com"] == "sent"
    cenv.messenger.fail["p3@example.com"] = [TemporaryFailure("452 4.2.2 mailbox full", 452)]
    capped = cenv.send_batch(campaign_id, 2, attempt=50)
    assert capped.retry_in == cenv.config.send_retry_max_seconds
    cenv.send_batch(campaign_id, 2, attempt=51)
    shown = cenv.run(campaign_id)
    assert cenv.messenger.counts() == dict.fromkeys(EMAILS, 1)
    assert shown["status"] == "sent"
    assert shown["stats"]["sent"] == 6 and shown["stats"]["failed"] == 0
    assert "451 4.3.0 try later" not in (shown["status_reason"] or "")


def test_soft_refusals_in_a_row_hand_the_batch_back(make_cenv) -> None:
    with make_cenv(send_batch_size=10) as env:
        emails = [f"s{i}@example.com" for i in range(8)]
        campaign_id, batches = started(env, emails)
        for address in emails[:4]:
            env.messenger.fail[address] = [TemporaryFailure("451 4.7.1 slow down", 451)]
        result = env.send_batch(campaign_id, batches[0])
        assert env.messenger.attempts == emails[:3]  # three in a row: the relay wants a pause
        assert (result.sent, result.retry_in) == (0, 1.0)
        requeue(env, campaign_id, batches)
        assert env.run(campaign_id)["status"] == "sent"
        assert env.messenger.counts() == dict.fromkeys(emails, 1)


def test_a_recipient_that_keeps_refusing_softly_is_failed_with_the_reply(make_cenv) -> None:
    with make_cenv(send_soft_retries=3) as env:
        campaign_id = env.launched([env.leads(*EMAILS)])
        env.messenger.fail["p1@example.com"] = [TemporaryFailure("452 4.2.2 Mailbox full", 452)] * 9
        shown = env.run(campaign_id)
        assert env.messenger.attempts.count("p1@example.com") == 3
        assert shown["status"] == "sent"
        assert (shown["stats"]["sent"], shown["stats"]["failed"]) == (5, 1)
        assert env.store.r.hget(env.store.keys.suppressed, "p1@example.com") is None
        failed = env.get(f"/api/v1/campaigns/{campaign_id}/recipients?status=failed").get_json()
        assert [(i["email"], i["error"]) for i in failed["items"]] == [
            ("p1@example.com", "452 4.2.2 Mailbox full")]


def test_temporary_failures_do_not_pause_the_campaign(make_cenv) -> None:
    with make_cenv(send_max_consecutive_failures=2) as env:
        campaign_id, batches = started(env)
        env.messenger.fail["p0@example.com"] = [TemporaryFailure("450 later", 450)] * 5
        for attempt in range(5):
            assert env.send_batch(campaign_id, 1, attempt).retry_in is not None
        assert env.show(campaign_id)["status"] == "sending"
        requeue(env, campaign_id, batches)
        assert env.run(campaign_id)["status"] == "sent"
        assert env.messenger.counts() == dict.fromkeys(EMAILS, 1)


def test_permanent_failure_fails_and_suppresses(cenv) -> None:
    keys = cenv.store.keys
    list_id = cenv.leads(*EMAILS)
    campaign_id = cenv.launched([list_id])
    cenv.messenger.fail["p1@example.com"] = PermanentFailure("550 5.1.1 no such user", 550)
    cenv.messenger.fail["p4@example.com"] = PermanentFailure("554 5.7.1 rejected by policy", 554)
    shown = cenv.run(campaign_id)
    assert shown["status"] == "sent"
    assert shown["stats"] == {**shown["stats"], "targeted": 6, "sent": 4, "failed": 2}
    assert cenv.store.r.hget(keys.suppressed, "p1@example.com") == f"bounced:{campaign_id}"
    assert cenv.store.r.hget(keys.suppressed, "p4@example.com") is None  # policy, not theirs
    assert cenv.messenger.attempts.count("p1@example.com") == 1
    failed = cenv.get(f"/api/v1/campaigns/{campaign_id}/recipients?status=failed").get_json()
    assert sorted(i["email"] for i in failed["items"]) == ["p1@example.com", "p4@example.com"]
    assert {i["status"] for i in failed["items"]} == {"failed"}
    assert {i["email"]: i["error"] for i in failed["items"]} == {
        "p1@example.com": "550 5.1.1 no such user", "p4@example.com": "554 5.7.1 rejected by policy"}
    sent = cenv.get(f"/api/v1/campaigns/{campaign_id}/recipients?status=sent").get_json()
    assert len(sent["items"]) == 4

    later = cenv.launched([list_id])
    shown = cenv.run(later)
    assert shown["stats"] == {**shown["stats"], "targeted": 6, "sent": 4, "suppressed": 1,
                              "failed": 1}
    assert cenv.messenger.counts() == {
        e: 2 for e in EMAILS if e not in ("p1@example.com", "p4@example.com")}
    assert cenv.messenger.attempts.count("p4@example.com") == 2
    assert cenv.messenger.attempts.count("p1@example.com") == 1


def test_retry_failed_resends_only_them_and_lifts_only_this_bounce(cenv, check_error) -> None:
    keys = cenv.store.keys
    list_id = cenv.leads(*EMAILS)
    other = cenv.launched([cenv.leads("x@example.com", asset="other")])
    cenv.messenger.fail["x@example.com"] = PermanentFailure("550 5.1.1 gone", 550)
    cenv.run(other)
    campaign_id = cenv.launched([list_id])
    check_error(cenv.post(f"/api/v1/campaigns/{campaign_id}/launch"), 409)
    for address in ("p1@example.com", "p2@example.com", "p5@example.com"):
        cenv.messenger.fail[address] = PermanentFailure("550 5.2.1 mailbox disabled", 550)
    cenv.run(campaign_id)
    # p5 unsubscribes after the bounce: that suppression must stay
    cenv.store.r.hset(keys.suppressed, "p5@example.com", "unsubscribed")
    cenv.messenger.fail.clear()
    before = cenv.messenger.counts()

    response = cenv.post(f"/api/v1/campaigns/{campaign_id}/retry-failed")
    assert response.status_code == 200
    result = response.get_json()
    assert result["requeued"] == 3
    assert result["campaign"]["status"] == "sending"
    # the request only asks (issue 18): the job queues them (cenv.pump runs it)
    assert [name for name, _ in cenv.pending()] == ["retry_failed", "watch"]
    cenv.jobs.calls.append(("retry_failed", (campaign_id,)))
    cenv.pump()
    assert cenv.show(campaign_id)["stats"]["failed"] == 0
    assert cenv.store.r.hget(keys.suppressed, "p1@example.com") is None
    assert cenv.store.r.hget(keys.suppressed, "p2@example.com") is None
    assert cenv.store.r.hget(keys.suppressed, "p5@example.com") == "unsubscribed"
    assert cenv.store.r.hget(keys.suppressed, "x@example.com") == f"bounced:{other}"

    shown = cenv.run(campaign_id)
    after = cenv.messenger.counts()
    assert {e: after.get(e, 0) - before.get(e, 0) for e in EMAILS} == {
        **dict.fromkeys(EMAILS, 0), "p1@example.com": 1, "p2@example.com": 1}
    assert shown["status"] == "sent"
    assert shown["stats"] == {**shown["stats"], "targeted": 6, "sent": 5, "failed": 0,
                              "suppressed": 1}
    assert cenv.ledger(campaign_id)["p5@example.com"] == "suppressed"

    again = cenv.post(f"/api/v1/campaigns/{campaign_id}/retry-failed").get_json()
    assert again["requeued"] == 0
    assert again["campaign"]["status"] == "sent"
    cenv.pump()
    assert cenv.messenger.counts() == after


def test_retry_failed_conflicts(cenv, check_error) -> None:
    campaign_id = cenv.campaign([cenv.leads("a@example.com")])
    check_error(cenv.post(f"/api/v1/campaigns/{campaign_id}/retry-failed"), 409)
    cenv.post(f"/api/v1/campaigns/{campaign_id}/cancel")
    check_error(cenv.post(f"/api/v1/campaigns/{campaign_id}/retry-failed"), 409)


def test_connection_failures_pause_the_campaign(make_cenv) -> None:
    with make_cenv(send_max_consecutive_failures=3, send_batch_size=10) as env:
        campaign_id = env.launched([env.leads(*EMAILS)])
        env.messenger.fail["p0@example.com"] = [ConnectionFailure("connection refused")] * 3
        env.pump()
        shown = env.show(campaign_id)
        assert shown["status"] == "paused"
        assert "3 consecutive delivery failures" in shown["status_reason"]
        assert "connection refused" in shown["status_reason"]
        assert env.messenger.attempts == ["p0@example.com"] * 3
        assert env.messenger.messages == []
        assert env.ledger(campaign_id)["p0@example.com"] == "queued"
        assert env.watch(campaign_id) is None

        resumed = env.post(f"/api/v1/campaigns/{campaign_id}/resume").get_json()
        assert (resumed["status"], resumed["status_reason"]) == ("sending", None)
        shown = env.run(campaign_id)
        assert shown["status"] == "sent"
        assert env.messenger.counts() == dict.fromkeys(EMAILS, 1)
        assert shown["stats"]["sent"] == 6


def test_a_delivery_resets_the_failure_count(make_cenv) -> None:
    with make_cenv(send_max_consecutive_failures=3, send_batch_size=10) as env:
        campaign_id = env.launched([env.leads(*EMAILS)])
        for address in ("p0@example.com", "p3@example.com"):
            env.messenger.fail[address] = [ConnectionFailure("reset by peer")] * 2
        shown = env.run(campaign_id)
        assert shown["status"] == "sent"
        assert env.messenger.counts() == dict.fromkeys(EMAILS, 1)


def test_ambiguous_failures_count_towards_the_pause(make_cenv) -> None:
    with make_cenv(send_max_consecutive_failures=2, send_batch_size=10) as env:
        campaign_id = env.launched([env.leads(*EMAILS)])
        for address in ("p0@example.com", "p1@example.com"):
            env.messenger.fail[address] = AmbiguousFailure("timeout after DATA")
        env.pump()
        shown = env.show(campaign_id)
        assert shown["status"] == "paused"
        assert shown["stats"]["unknown"] == 2
        env.post(f"/api/v1/campaigns/{campaign_id}/resume")
        shown = env.run(campaign_id)
        assert shown["status"] == "sent"
        assert env.messenger.attempts.count("p0@example.com") == 1
        assert (shown["stats"]["sent"], shown["stats"]["unknown"]) == (4, 2)


# ---------------------------------------------------------------- token bucket

def test_token_bucket_answers_wait_when_empty(cenv) -> None:
    campaign_id, _ = started(cenv, rate_per_second=2)
    assert cenv.show(campaign_id)["rate_per_second"] == 2.0
    t = 1_000_000.0
    assert claim(cenv, campaign_id, "p0@example.com", t, 2)[0] == "claimed"
    assert claim(cenv, campaign_id, "p1@example.com", t, 2)[0] == "claimed"  # burst of 2
    assert claim(cenv, campaign_id, "p2@example.com", t, 2) == ["wait", "500"]
    assert claim(cenv, campaign_id, "p2@example.com", t + 0.25, 2) == ["wait", "250"]
    assert cenv.ledger(campaign_id)["p2@example.com"] == "queued"  # waiting claims nothing
    assert claim(cenv, campaign_id, "p2@example.com", t + 0.5, 2)[0] == "claimed"
    assert claim(cenv, campaign_id, "p3@example.com", t + 0.5, 2) == ["wait", "500"]
    # an idle bucket refills only up to the burst
    assert claim(cenv, campaign_id, "p3@example.com", t + 100, 2)[0] == "claimed"
    assert claim(cenv, campaign_id, "p4@example.com", t + 100, 2)[0] == "claimed"
    assert claim(cenv, campaign_id, "p5@example.com", t + 100, 2)[0] == "wait"


def test_token_bucket_is_shared_by_all_senders(cenv) -> None:
    campaign_id, _ = started(cenv, rate_per_second=0.5)
    t = 2_000_000.0
    assert claim(cenv, campaign_id, "p0@example.com", t, 0.5)[0] == "claimed"
    # whichever worker asks next, the bucket is the campaign's
    assert claim(cenv, campaign_id, "p4@example.com", t + 1, 0.5) == ["wait", "1000"]
    assert claim(cenv, campaign_id, "p4@example.com", t + 2, 0.5)[0] == "claimed"


def test_a_long_wait_hands_the_batch_back(make_cenv) -> None:
    with make_cenv(send_batch_size=10) as env:
        campaign_id, batches = started(env, rate_per_second=0.1)
        result = env.send_batch(campaign_id, batches[0])
        assert result.sent == 1  # one token, then ten seconds to the next one
        assert 5 < result.retry_in <= 10
        assert len(env.messenger.messages) == 1


def test_claim_outcomes(cenv) -> None:
    campaign_id, _ = started(cenv)
    keys = cenv.store.keys
    now = time.time()
    assert claim(cenv, campaign_id, "nobody@example.com", now) == ["done", ""]
    assert claim(cenv, campaign_id, "p0@example.com", now)[0] == "claimed"
    assert claim(cenv, campaign_id, "p0@example.com", now)[0] == "busy"
    cenv.store.r.hset(keys.suppressed, "p1@example.com", "unsubscribed")
    assert claim(cenv, campaign_id, "p1@example.com", now)[0] == "suppressed"
    assert claim(cenv, campaign_id, "p1@example.com", now) == ["done", "x"]
    lifecycle.pause(cenv.store, campaign_id)
    assert claim(cenv, campaign_id, "p2@example.com", now) == ["stopped", "paused"]
    shown = cenv.show(campaign_id)
    assert shown["stats"]["suppressed"] == 1


# ---------------------------------------------------------------- the message

def test_message_headers_parts_and_tracking(cenv) -> None:
    list_id = cenv.leads("ann@example.com", first_name="Ann")
    html = ('<p>Hi {{ first_name }}</p><a href="https://example.com/a?x=1&amp;y=2">A</a>'
            '<a href="http://example.com/b">B</a><a href="{{ unsubscribe_url }}">Unsubscribe</a>'
            '</body>')
    template_id = cenv.template(subject="News for {{ first_name }}", html=html,
                                text="Hi {{ first_name }}\nOpt out: {{ unsubscribe_url }}")
    campaign_id = cenv.launched([list_id], template_id)
    cenv.run(campaign_id)
    ((msg, mail_from, rcpt),) = cenv.messenger.messages
    assert (mail_from, rcpt) == ("news@outreach.example", "ann@example.com")

    # what an SMTP server receives, parsed the way a mailbox provider would
    (raw,) = cenv.messenger.raw
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    parsed = email.message_from_bytes(raw[:-3], policy=email.policy.default)
    assert parsed["To"] == "ann@example.com"  # one recipient per message
    assert "Cc" not in parsed and "Bcc" not in parsed
    assert parsed["From"] == "news@outreach.example"
    assert parsed["Subject"] == "News for Ann"
    assert re.fullmatch(r"<[^@<>\s]+@outreach\.example>", parsed["Message-ID"])
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # List-Unsubscribe: URIs in angle brackets, not RFC 2047 encoded-words
    lines = re.sub(r"\r\n[ \t]+", " ", head).split("\r\n")
    (value,) = [line.partition(":")[2].strip() for line in lines
                if line.startswith("List-Unsubscribe:")]
    assert "=?" not in value
    https, mailto = re.fullmatch(r"<([^>]+)>, *<([^>]+)>", value).groups()
    assert https.startswith("https://mail.example.com/u/")
    assert mailto.startswith("mailto:unsubscribe@outreach.example?subject=")

    text = parsed.get_body(("plain",)).get_content()
    body = parsed.get_body(("html",)).get_content()
    assert f"Opt out: {https}" in text
    assert f'href="{https}"' in body  # our own link is not rewritten
    assert "example.com/a" not in body and "example.com/b" not in body
    clicks = re.findall(r'href="https://mail\.example\.com/t/c/([^"]+)"', body)
    assert len(clicks) == 2
    (pixel,) = re.findall(r'<img src="https://mail\.example\.com/t/o/([^"]+)"', body)
    assert body.index("/t/o/") < body.index("</body>")

    # the links lead where the template pointed, and the unsubscribe link works
    targets = [cenv.client.get(f"/t/c/{token}").headers["Location"] for token in clicks]
    assert targets == ["https://example.com/a?x=1&y=2", "http://example.com/b"]
    assert cenv.client.get(f"/t/o/{pixel}").status_code == 200
    assert cenv.client.get(urlsplit(https).path).status_code == 200


def test_every_message_has_its_own_id_and_tokens(cenv) -> None:
    campaign_id = cenv.launched([cenv.leads("a@example.com", "b@example.com")])
    cenv.run(campaign_id)
    a, b = (cenv.messenger.to(x) for x in ("a@example.com", "b@example.com"))
    assert a["Message-ID"] != b["Message-ID"]
    assert a["To"] == "a@example.com" and b["To"] == "b@example.com"
    assert a["List-Unsubscribe"] != b["List-Unsubscribe"]


# ---------------------------------------------------------------- heartbeats and stopping

def _claim_as(env, campaign_id, address, run, alive=True):
    """Claim ``address`` for send run ``run`` (alive: its heartbeat key exists)."""
    keys = env.store.keys
    k = claim_keys(env, campaign_id)[:-1] + [keys.send_run(run)]
    result = env.store.run("claim_send", keys=k, args=[
        address, repr(time.time()), env.config.send_claim_timeout_seconds, 0,
        email_hash(address), run, 10, keys.send_run("")])
    if not alive:
        env.store.r.delete(keys.send_run(run))
    return result


def test_a_dead_runs_claim_before_data_is_sent_again_after_data_is_unknown(cenv) -> None:
    campaign_id, batches = started(cenv)
    keys = cenv.store.keys
    assert _claim_as(cenv, campaign_id, "p0@example.com", "dead-run", alive=False)[0] == "claimed"
    assert _claim_as(cenv, campaign_id, "p1@example.com", "dead-run", alive=False)[0] == "claimed"
    assert cenv.store.run("mark_data", keys=[keys.campaign_ledger(campaign_id),
                                             keys.campaign_claims(campaign_id)],
                          args=["p1@example.com", "dead-run", "1"]) == 1
    assert _claim_as(cenv, campaign_id, "p2@example.com", "live-run")[0] == "claimed"
    requeue(cenv, campaign_id, batches)
    cenv.pump()
    ledger = cenv.ledger(campaign_id)
    assert ledger["p0@example.com"] == "sent"  # never reached DATA: sent now
    assert ledger["p1@example.com"] == "unknown"  # DATA began: never resent
    assert ledger["p2@example.com"] == "sending"  # its worker is alive: left alone
    assert "p1@example.com" not in cenv.messenger.attempts
    assert "p2@example.com" not in cenv.messenger.attempts
    (item,) = cenv.get(f"/api/v1/campaigns/{campaign_id}/recipients?status=unknown"
                       ).get_json()["items"]
    assert "after the content went out" in item["error"]


def test_the_watch_restarts_a_dead_runs_batch_at_once(cenv) -> None:
    campaign_id, batches = started(cenv)
    keys = cenv.store.keys
    cenv.store.r.hset(keys.campaign_batch_runs(campaign_id), str(batches[0]), "gone")
    assert _claim_as(cenv, campaign_id, "p0@example.com", "gone", alive=False)[0] == "claimed"
    cenv.pending()
    cenv.watch(campaign_id)  # long before send_batch_stale_seconds
    assert ("send_batch", (campaign_id, batches[0])) in cenv.pending()
    assert cenv.ledger(campaign_id)["p0@example.com"] == "queued"
    assert cenv.store.r.hget(keys.campaign_batch_runs(campaign_id), str(batches[0])) is None
    requeue(cenv, campaign_id, batches)
    assert cenv.run(campaign_id)["status"] == "sent"
    assert cenv.messenger.counts() == dict.fromkeys(EMAILS, 1)


def test_a_batch_redelivered_while_a_dead_run_still_holds_a_claim_is_sent_again(cenv) -> None:
    """RabbitMQ redelivers a killed worker's batch at once: the new run finds a claim of
    the dead run whose heartbeat has not lapsed yet, skips it and ends. Once it lapses the
    watch gives the claim back and sends that batch again (not after the stale timer)."""
    campaign_id, batches = started(cenv)
    keys = cenv.store.keys
    assert _claim_as(cenv, campaign_id, "p0@example.com", "killed")[0] == "claimed"
    requeue(cenv, campaign_id, batches)
    cenv.pump()  # the redelivered batches: everyone else is sent, p0 is still held
    assert cenv.ledger(campaign_id)["p0@example.com"] == "sending"
    assert "p0@example.com" not in cenv.messenger.attempts
    cenv.store.r.delete(keys.send_run("killed"))  # its heartbeat lapses
    cenv.pending()
    cenv.watch(campaign_id)  # long before send_batch_stale_seconds
    assert cenv.ledger(campaign_id)["p0@example.com"] == "queued"
    (restarted,) = [args for name, args in cenv.pending() if name == "send_batch"]
    assert "p0@example.com" in cenv.store.r.lrange(keys.campaign_batch(campaign_id, restarted[1]), 0, -1)
    requeue(cenv, campaign_id, [restarted[1]])
    assert cenv.run(campaign_id)["status"] == "sent"
    assert cenv.messenger.counts() == dict.fromkeys(EMAILS, 1)


def test_a_batch_whose_dead_claim_turns_unknown_is_finished_at_once(cenv) -> None:
    """As above, but the dead run had begun DATA: the claim turns ``unknown`` (never resent)
    and the batch, everyone else sent by the redelivered run, must still be finished at
    once. Seen in CI on RabbitMQ: every address sent or ``unknown``, two batches left open
    and the campaign ``sending`` until the 5-minute stale timer."""
    campaign_id, batches = started(cenv)
    keys = cenv.store.keys
    assert _claim_as(cenv, campaign_id, "p0@example.com", "killed")[0] == "claimed"
    assert cenv.store.run("mark_data", keys=[keys.campaign_ledger(campaign_id),
                                             keys.campaign_claims(campaign_id)],
                          args=["p0@example.com", "killed", "1"]) == 1
    requeue(cenv, campaign_id, batches)
    cenv.pump()  # the redelivered batches: everyone else is sent, p0 is still held
    assert cenv.store.r.hlen(keys.campaign_batches(campaign_id)) == 1  # p0's batch is open
    cenv.store.r.delete(keys.send_run("killed"))  # its heartbeat lapses
    cenv.pending()
    cenv.watch(campaign_id)  # long before send_batch_stale_seconds
    assert cenv.ledger(campaign_id)["p0@example.com"] == "unknown"
    (restarted,) = [args for name, args in cenv.pending() if name == "send_batch"]
    requeue(cenv, campaign_id, [restarted[1]])
    assert cenv.run(campaign_id)["status"] == "sent"
    assert "p0@example.com" not in cenv.messenger.attempts
    assert cenv.messenger.counts() == dict.fromkeys(set(EMAILS) - {"p0@example.com"}, 1)


def test_a_claim_taken_over_stops_the_old_transaction_before_data(cenv) -> None:
    campaign_id, batches = started(cenv)

    def taken_over(rcpt: str) -> None:
        if rcpt == "p1@example.com":  # this worker stalls; another one takes p1 over
            keys = cenv.store.keys
            cenv.store.r.hset(keys.campaign_claims(campaign_id), rcpt, "other-run")

    cenv.messenger.before_send = taken_over
    result = cenv.send_batch(campaign_id, batches[0])
    assert result.sent == 2
    assert "p1@example.com" not in cenv.messenger.recipients
    assert cenv.ledger(campaign_id)["p1@example.com"] == "sending"  # the other run's claim


def test_a_stopping_worker_hands_the_batch_back_before_the_next_recipient(cenv) -> None:
    campaign_id, batches = started(cenv)

    def stop_after_first(rcpt: str) -> None:
        STOP.set()  # SIGTERM arrives during the first transaction

    cenv.messenger.before_send = stop_after_first
    try:
        result = cenv.send_batch(campaign_id, batches[0])
        assert (result.sent, result.retry_in) == (1, 0.0)  # handed straight back
        assert cenv.messenger.attempts == ["p0@example.com"]
        assert cenv.send_batch(campaign_id, batches[1]).retry_in == 0.0
        assert len(cenv.messenger.attempts) == 1
        shown = cenv.show(campaign_id)
        assert shown["stats"]["unknown"] == 0
        assert cenv.store.r.zcard(cenv.store.keys.campaign_sending(campaign_id)) == 0
    finally:
        STOP.clear()
        cenv.messenger.before_send = None
    requeue(cenv, campaign_id, batches)
    assert cenv.run(campaign_id)["status"] == "sent"
    assert cenv.messenger.counts() == dict.fromkeys(EMAILS, 1)
