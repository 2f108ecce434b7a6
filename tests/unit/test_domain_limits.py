"""Per-receiving-domain throttling (OUTREACH_DOMAIN_LIMITS): global buckets in Redis."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from outreach.campaigns import pacing as domains
from outreach.config import ConfigError
from outreach.mail.smtp.classify import TemporaryFailure


def test_parse_limits() -> None:
    limit = domains.DomainLimit
    assert domains.parse_limits("gmail.com=20/s;yahoo.com=10/s;*=50/s") == {  # API.md's example
        "gmail.com": limit(20.0), "yahoo.com": limit(10.0), "*": limit(50.0)}
    assert domains.parse_limits("Example.org=120/m") == {"example.org": limit(2.0)}
    assert domains.parse_limits("gmail.com=20/s,5c; yahoo.com = 3c ;*=50/s, 10C") == {
        "gmail.com": limit(20.0, 5), "yahoo.com": limit(None, 3), "*": limit(50.0, 10)}
    for bad in ("gmail.com=fast", "gmail.com=0/s", "=3/s", "gmail.com=20/s,0c", "gmail.com=5c,6c",
                "gmail.com=20/s,5", "gmail.com=20/s,", "gmail.com=", "gmail.com=1/s,2/s"):
        with pytest.raises(ConfigError, match="OUTREACH_DOMAIN_LIMITS") as caught:
            domains.parse_limits(bad)
        assert "\n" not in str(caught.value)


def test_the_bucket_is_per_domain(env: Any) -> None:
    limits = "slow.example=2/s;*=1000/s"
    assert [domains.take(env.store, limits, "a@slow.example") for _ in range(2)] == [0, 0]
    wait = domains.take(env.store, limits, "c@slow.example")
    assert 0 < wait <= 500
    assert domains.take(env.store, limits, "x@fast.example") == 0  # the others keep their pace
    assert domains.take(env.store, "slow.example=2/s", "x@other.example") == 0  # no default: free
    assert domains.slow_down(env.store, "z@fast.example") == 1.0
    assert domains.slow_down(env.store, "z@fast.example") == 2.0
    assert 1000 < domains.take(env.store, limits, "x@fast.example") <= 2000


def test_a_throttled_domain_is_deferred_not_failed(make_cenv: Any) -> None:
    with make_cenv(domain_limits="slow.example=1/s;*=1000/s", send_batch_size=10) as env:
        emails = ["a@slow.example", "b@slow.example", "c@fast.example", "d@fast.example"]
        list_id = env.leads(*emails)
        campaign_id = env.launched([list_id])
        env.dispatch(campaign_id)
        (batch,) = [args for name, args in env.pending() if name == "send_batch"]
        first = env.send_batch(campaign_id, int(batch[1]))
        assert first.retry_in is not None and 0 < first.retry_in <= 1.0
        ledger = env.ledger(campaign_id)
        assert sorted(e for e, s in ledger.items() if s == "sent") == [
            "a@slow.example", "c@fast.example", "d@fast.example"]
        assert ledger["b@slow.example"] == "queued"
        time.sleep(first.retry_in + 0.05)
        second = env.send_batch(campaign_id, int(batch[1]), 1)
        assert second.retry_in is None and second.finished
        assert sorted(env.messenger.attempts) == sorted(emails)  # each once: 0 lost, 0 duplicates


def test_a_deferral_backs_that_domain_off(make_cenv: Any) -> None:
    with make_cenv(domain_limits="*=1000/s", send_batch_size=10) as env:
        list_id = env.leads("a@busy.example", "b@busy.example", "c@calm.example")
        env.messenger.fail["a@busy.example"] = [TemporaryFailure("450 4.7.28 rate limited", 450), None]
        campaign_id = env.launched([list_id])
        env.dispatch(campaign_id)
        (batch,) = [args for name, args in env.pending() if name == "send_batch"]
        result = env.send_batch(campaign_id, int(batch[1]))
        ledger = env.ledger(campaign_id)
        assert ledger["c@calm.example"] == "sent"
        assert ledger["a@busy.example"] == "queued" and ledger["b@busy.example"] == "queued"
        assert "b@busy.example" not in env.messenger.attempts  # backed off, not tried
        assert result.retry_in is not None
        assert env.store.r.pttl(env.store.keys.domain_backoff("busy.example")) > 0


def test_a_421_4_7_deferral_backs_off_that_domain_without_limits(make_cenv: Any) -> None:
    from outreach.mail.smtp.classify import DEFERRED

    with make_cenv(send_batch_size=10) as env:  # no OUTREACH_DOMAIN_LIMITS
        assert not env.config.domain_limits
        emails = ["a@slow.example", "b@slow.example", "c@fast.example", "d@fast.example"]
        list_id = env.leads(*emails)
        env.messenger.fail["a@slow.example"] = [
            TemporaryFailure("421 4.7.28 rate limited, try again later", 421, DEFERRED), None]
        campaign_id = env.launched([list_id])
        env.dispatch(campaign_id)
        (batch,) = [args for name, args in env.pending() if name == "send_batch"]
        first = env.send_batch(campaign_id, int(batch[1]))
        ledger = env.ledger(campaign_id)
        assert ledger["c@fast.example"] == ledger["d@fast.example"] == "sent"  # the others go on
        assert ledger["a@slow.example"] == ledger["b@slow.example"] == "queued"
        assert "b@slow.example" not in env.messenger.attempts  # backed off, not tried
        assert first.retry_in is not None and 0 < first.retry_in <= 1.0  # the back-off: 1 s
        keys = env.store.keys
        assert env.store.r.hget(keys.campaign_soft(campaign_id), "a@slow.example") is None
        assert env.store.r.hget(keys.domain_bucket("slow.example"), "level") == "1"
        time.sleep(first.retry_in + 0.05)
        second = env.send_batch(campaign_id, int(batch[1]), 1)
        assert second.finished and second.retry_in is None
        assert sorted(m[2] for m in env.messenger.messages) == sorted(emails)  # 0 lost, 0 dup
        shown = env.get(f"/api/v1/campaigns/{campaign_id}").get_json()["stats"]
        assert (shown["sent"], shown["failed"], shown["bounced"], shown["soft_bounced"]) == (4, 0, 0, 0)
        # recovered: the level is reset, the next deferral starts again at 1 s
        assert env.store.r.hget(keys.domain_bucket("slow.example"), "level") is None
        assert domains.backoffs(env.store) == {}
        assert domains.slow_down(env.store, "x@slow.example") == 1.0


def test_a_recovered_domain_starts_its_back_off_again(env: Any) -> None:
    assert [domains.slow_down(env.store, "a@d.example") for _ in range(3)] == [1.0, 2.0, 4.0]
    assert set(domains.backoffs(env.store)) == {"d.example"}
    domains.recovered(env.store, "d.example")
    assert domains.backoffs(env.store) == {}
    assert domains.slow_down(env.store, "a@d.example") == 1.0
    for _ in range(20):
        seconds = domains.slow_down(env.store, "a@d.example")
    assert seconds == domains.MAX_BACKOFF_SECONDS  # capped


def _alive(env: Any, *runs: str) -> None:
    for run in runs:  # the heartbeat a live send run keeps (sending.HEARTBEATS)
        env.store.r.set(env.store.keys.send_run(run), "1", px=60_000)


def test_a_slot_per_transaction_and_a_dead_runs_slot_is_freed(env: Any) -> None:
    limits, keys = "busy.example=1/s,1c;*=1000/s", env.store.keys
    _alive(env, "run-a", "run-b")
    assert domains.take(env.store, limits, "a@busy.example", "run-a") == 0
    tokens = env.store.r.hget(keys.domain_bucket("busy.example"), "tokens")
    # full: run-b waits for a slot, and takes no token while it waits
    assert domains.take(env.store, limits, "b@busy.example", "run-b") == domains.SLOT_WAIT_MS
    assert env.store.r.hget(keys.domain_bucket("busy.example"), "tokens") == tokens
    assert domains.take(env.store, limits, "c@calm.example", "run-b") == 0  # no limit there
    assert env.store.r.hkeys(keys.domain_slots("calm.example")) == []
    domains.release(env.store, "a@busy.example", "run-a")
    env.store.r.delete(keys.domain_bucket("busy.example"))  # a token again, without waiting
    assert domains.take(env.store, limits, "b@busy.example", "run-b") == 0
    # run-b's worker is killed in its transaction: its heartbeat lapses, and the next run
    # that finds the domain full frees the slot
    assert domains.take(env.store, "busy.example=1c", "d@busy.example", "run-a") > 0
    env.store.r.delete(keys.send_run("run-b"))
    assert domains.take(env.store, "busy.example=1c", "d@busy.example", "run-a") == 0
    assert env.store.r.hkeys(keys.domain_slots("busy.example")) == ["run-a"]


def test_two_concurrent_runs_keep_to_the_concurrency_limit(make_cenv: Any) -> None:
    """Campaign A's run is inside a transaction with busy.example (limit 1) when campaign B's
    run sends its batch: B's busy.example recipients stay queued, its others go out; B's
    batch comes back shortly and sends them. Nobody is lost, nobody gets two."""
    with make_cenv(domain_limits="busy.example=1c", send_batch_size=10) as env:
        emails = ["a@busy.example", "b@busy.example", "c@calm.example"]
        list_id = env.leads(*emails)
        first, second = env.launched([list_id]), env.launched([list_id])
        for campaign_id in (first, second):
            env.dispatch(campaign_id)
        batches = {str(args[0]): int(args[1]) for name, args in env.pending()
                   if name == "send_batch"}
        inflight: Counter[str] = Counter()
        peak: Counter[str] = Counter()
        nested: list[Any] = []
        deliver = env.messenger.send

        def send(msg: Any, mail_from: str, rcpt_to: str, before_data: Any = None) -> str:
            domain = domains.domain_of(rcpt_to)
            inflight[domain] += 1
            peak[domain] = max(peak[domain], inflight[domain])
            try:
                if msg["X-Outreach-Campaign"] == first and domain == "busy.example" and not nested:
                    nested.append(env.send_batch(second, batches[second]))  # B, meanwhile
                return deliver(msg, mail_from, rcpt_to, before_data)
            finally:
                inflight[domain] -= 1

        env.messenger.send = send  # type: ignore[method-assign]
        assert env.send_batch(first, batches[first]).finished
        (meanwhile,) = nested
        assert meanwhile.retry_in is not None and meanwhile.retry_in <= 1.0  # back shortly
        assert env.ledger(second) == {"a@busy.example": "queued", "b@busy.example": "queued",
                                      "c@calm.example": "sent"}
        again = env.send_batch(second, batches[second], 1)
        assert again.finished
        assert peak["busy.example"] == 1 and peak["calm.example"] == 1
        assert Counter(env.messenger.recipients) == {email: 2 for email in emails}  # once each
        assert env.store.r.hlen(env.store.keys.domain_slots("busy.example")) == 0


def test_a_slot_left_by_a_killed_worker_does_not_block_the_domain(make_cenv: Any) -> None:
    with make_cenv(domain_limits="busy.example=1c", send_batch_size=10) as env:
        keys = env.store.keys
        env.store.r.hset(keys.domain_slots("busy.example"), "host:1:dead", "1")  # no heartbeat
        list_id = env.leads("a@busy.example", "b@busy.example")
        campaign_id = env.launched([list_id])
        env.dispatch(campaign_id)
        (batch,) = [args for name, args in env.pending() if name == "send_batch"]
        assert env.send_batch(campaign_id, int(batch[1])).finished
        assert sorted(env.messenger.recipients) == ["a@busy.example", "b@busy.example"]
        assert env.store.r.hlen(keys.domain_slots("busy.example")) == 0


def test_a_domain_deferring_past_the_queue_lifetime_fails_the_recipient_unsuppressed(
        make_cenv: Any) -> None:
    """As an MTA gives up after its queue lifetime: the recipient is failed with the reason
    (never suppressed, never a bounce) and the campaign can finish."""
    from outreach.mail.smtp.classify import DEFERRED

    with make_cenv(send_batch_size=10, domain_defer_max_seconds=0.5) as env:
        list_id = env.leads("a@stuck.example", "c@fast.example")
        deferral = TemporaryFailure("421 4.7.28 try again later", 421, DEFERRED)
        env.messenger.fail["a@stuck.example"] = [deferral] * 10
        campaign_id = env.launched([list_id])
        env.dispatch(campaign_id)
        (batch,) = [args for name, args in env.pending() if name == "send_batch"]
        first = env.send_batch(campaign_id, int(batch[1]))
        assert env.ledger(campaign_id)["a@stuck.example"] == "queued"  # within the lifetime
        time.sleep(max(first.retry_in or 0, 0.6) + 0.05)
        env.send_batch(campaign_id, int(batch[1]), 1)
        assert env.ledger(campaign_id) == {"a@stuck.example": "failed", "c@fast.example": "sent"}
        (item,) = env.get(f"/api/v1/campaigns/{campaign_id}/recipients?status=failed"
                          ).get_json()["items"]
        assert item["error"].startswith("the receiving domain deferred it for more than 0.5 s")
        assert "421 4.7.28" in item["error"]
        assert env.store.r.hlen(env.store.keys.suppressed) == 0
        assert env.run(campaign_id)["status"] == "sent"
