"""Rolling restarts and crashes of real ``outreach worker`` processes mid-campaign.

- SIGTERM (a deploy): the batch in hand stops before its next recipient and hands the
  rest back; the process exits within 10 s; nothing is left ``unknown``; the next worker
  finishes with no duplicate.
- SIGKILL of every worker: a new worker finishes the campaign within 60 s (liveness from
  the send runs' heartbeats, not the 5-minute stale timer, which is left at its default
  here), with no duplicate and ``unknown`` at most the messages that were in flight.
"""

from __future__ import annotations

import os
import signal
import time

from .conftest import wait_for
from .test_campaigns import _audience, _campaign, _lead_list, _recipients, _wait_status

# the production timers: recovery must not come from short test settings
DEFAULT_TIMERS = {"send_claim_timeout_seconds": 120, "send_batch_stale_seconds": 300,
                  "campaign_watch_seconds": 2}


def _in_flight(service, campaign_id: str) -> int:
    keys = service.store.keys
    return int(service.store.r.zcard(keys.campaign_sending(campaign_id)))


def _state(service, campaign_id: str) -> str:
    """What a campaign that did not finish was waiting on, and the workers' last lines."""
    keys, r = service.store.keys, service.store.r
    ledger = r.hgetall(keys.campaign_ledger(campaign_id))
    states: dict[str, int] = {}
    for value in ledger.values():
        states[value[:1]] = states.get(value[:1], 0) + 1
    logs = "\n".join(f"--- {w.log.name}\n" + w.log.read_text(errors="replace")[-4000:]
                     for w in service.workers)
    return (f"campaign {r.hgetall(keys.campaign(campaign_id))}\n"
            f"batches {r.hgetall(keys.campaign_batches(campaign_id))}\n"
            f"runs {r.hgetall(keys.campaign_batch_runs(campaign_id))}\n"
            f"sending {r.zrange(keys.campaign_sending(campaign_id), 0, -1, withscores=True)}\n"
            f"claims {r.hgetall(keys.campaign_claims(campaign_id))}\n"
            f"ledger states {states}\n{logs}")


def _wait_sent(service, campaign_id: str, timeout: float) -> dict:
    try:
        return _wait_status(service, campaign_id, "sent", timeout=timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{_state(service, campaign_id)}") from None


def test_sigterm_mid_campaign_hands_the_batch_back_and_loses_nothing(make_service):
    service = make_service(**DEFAULT_TIMERS)
    worker = service.start_worker(concurrency=2)
    emails = _audience(service, 800, asset="roll")
    wait_for(lambda: service.processed_count() == 800, message="ingest")
    campaign_id = _campaign(service, [_lead_list(service, "roll")], rate_per_second=80)
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    wait_for(lambda: len(service.smtp.messages) >= 150, interval=0.01, message="sending")

    # what a container platform does on a deploy: SIGTERM to the worker's main process
    started = time.monotonic()
    os.kill(worker.proc.pid, signal.SIGTERM)
    worker.proc.wait(timeout=30)
    took = time.monotonic() - started
    print(f"SIGTERM to the main process: exited in {took:.2f} s")
    assert took <= 10, "the worker took more than 10 s to stop"
    stopped_at = len(service.smtp.messages)
    assert stopped_at < 800, "finished before the SIGTERM"
    assert _in_flight(service, campaign_id) == 0  # every claim was finished or handed back
    assert service.get(f"/api/v1/campaigns/{campaign_id}")["stats"]["unknown"] == 0

    # the next one is stopped the other way: SIGTERM to its whole process group
    second = service.start_worker(concurrency=2)
    wait_for(lambda: len(service.smtp.messages) >= stopped_at + 150, interval=0.01,
             message="sending again")
    started = time.monotonic()
    os.killpg(second.proc.pid, signal.SIGTERM)
    second.proc.wait(timeout=30)
    took = time.monotonic() - started
    print(f"SIGTERM to the process group: exited in {took:.2f} s")
    assert took <= 10
    assert _in_flight(service, campaign_id) == 0
    assert service.get(f"/api/v1/campaigns/{campaign_id}")["stats"]["unknown"] == 0

    service.start_worker(concurrency=2)
    campaign = _wait_sent(service, campaign_id, timeout=120)
    counts = service.smtp.count_by_recipient()
    assert set(counts) == set(emails) and max(counts.values()) == 1
    assert campaign["stats"]["sent"] == 800 and campaign["stats"]["unknown"] == 0
    logs = "".join(w.log.read_text(errors="replace") for w in service.workers[:2])
    assert "Traceback" not in logs, logs[-3000:]


def test_sigkill_of_every_worker_recovers_within_60_s_without_duplicates(make_service):
    service = make_service(**DEFAULT_TIMERS)
    service.start_worker(concurrency=2)
    emails = _audience(service, 1000, asset="crash")
    wait_for(lambda: service.processed_count() == 1000, message="ingest")
    campaign_id = _campaign(service, [_lead_list(service, "crash")], rate_per_second=100)
    service.workers[0].stop()
    first, second = service.start_worker(concurrency=2), service.start_worker(concurrency=2)
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    wait_for(lambda: len(service.smtp.messages) >= 200, interval=0.01, message="sending")
    first.kill(signal.SIGKILL)
    second.kill(signal.SIGKILL)
    assert len(service.smtp.messages) < 1000, "finished before the kill"
    in_flight = _in_flight(service, campaign_id)
    assert in_flight <= 4  # two processes of concurrency 2

    started = time.monotonic()
    service.start_worker(concurrency=2)
    campaign = _wait_sent(service, campaign_id, timeout=90)
    elapsed = time.monotonic() - started
    print(f"SIGKILL of both workers: {in_flight} in flight; the new worker finished in "
          f"{elapsed:.1f} s")
    assert elapsed <= 60, f"took {elapsed:.1f} s after the new worker started"
    counts = service.smtp.count_by_recipient()
    assert max(counts.values()) == 1, "an address got two messages"
    unknown = _recipients(service, campaign_id, "unknown")
    sent = _recipients(service, campaign_id, "sent")
    print(f"unknown: {len(unknown)}")
    assert len(unknown) <= in_flight, (unknown, in_flight)
    assert sent | unknown == set(emails)
    assert set(counts) - unknown == sent
    assert campaign["stats"]["sent"] == len(sent)
    for item in service.all_items(f"/api/v1/campaigns/{campaign_id}/recipients?status=unknown"):
        assert "may or may not be delivered" in item["error"]
