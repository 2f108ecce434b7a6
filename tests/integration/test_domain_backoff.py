"""A receiving domain that answers ``421 4.7.28`` (Gmail's "slow down") backs off alone.

A scripted relay (aiosmtpd) refuses every recipient at slow.example at RCPT for 20 s from
its first refusal, then accepts them; no OUTREACH_DOMAIN_LIMITS is set. Every other domain's
recipients arrive before slow.example recovers, slow.example's after; nobody is lost,
nobody gets two messages, nothing is counted as a bounce, and the campaign ends ``sent``.
"""

from __future__ import annotations

import threading
import time

from .conftest import wait_for
from .test_attribution import ScriptedRelay
from .test_campaigns import _campaign, _lead_list, _wait_status

REFUSE_SECONDS = 20.0


def test_a_deferring_domain_backs_off_alone(make_service):
    relay = ScriptedRelay()
    lock = threading.Lock()
    state: dict[str, object] = {"since": None, "others_at_recovery": None}

    def rcpt(address: str) -> str | None:
        with lock:
            if address.endswith("@slow.example"):
                since = state["since"] = state["since"] or time.monotonic()
                if time.monotonic() - since < REFUSE_SECONDS:
                    return "421 4.7.28 [slow.example] unusual rate of mail, try again later"
                if state["others_at_recovery"] is None:  # the first slow one accepted
                    state["others_at_recovery"] = set(relay.deliveries())
            return None

    relay.script.rcpt = rcpt
    try:
        service = make_service(smtp_host="127.0.0.1", smtp_port=relay.port)
        assert not service.config.domain_limits
        service.start_worker()
        slow = [f"s{i}@slow.example" for i in range(12)]
        others = [f"r{i}@{domain}" for i in range(60) for domain in ("example.org", "other.example")]
        emails: list[str] = []
        for i, other in enumerate(others):  # slow.example spread across the batches
            emails += [slow[i // 10], other] if i % 10 == 0 else [other]
        for address in emails:
            service.register(kind="white_paper", asset="backoff", email=address, consent=True)
        wait_for(lambda: service.processed_count() == len(emails), message="ingest")
        campaign_id = _campaign(service, [_lead_list(service, "backoff")])
        service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
        campaign = _wait_status(service, campaign_id, "sent", timeout=180)

        counts = relay.deliveries()
        assert set(counts) == set(emails) and max(counts.values()) == 1  # 0 lost, 0 duplicates
        assert relay.script.refused and set(relay.script.refused) <= set(slow)
        # the other domains did not wait for slow.example: all of them were in before it recovered
        assert state["others_at_recovery"] == set(others)
        stats = campaign["stats"]
        assert stats["sent"] == len(emails)
        assert (stats["failed"], stats["unknown"], stats["bounced"], stats["soft_bounced"]) == (0, 0, 0, 0)
        assert service.store.r.hgetall(service.store.keys.suppressed) == {}
        # recovered: the back-off level was reset by the first delivery after it
        assert service.store.r.hget(service.store.keys.domain_bucket("slow.example"), "level") is None
    finally:
        relay.stop()
