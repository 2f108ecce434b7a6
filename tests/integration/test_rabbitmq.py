"""Broker = RabbitMQ (.ci/run's second pass): the broker restarts in the middle of a campaign.

Runs only when OUTREACH_BROKER_URL is an AMQP URL. It restarts this machine's RabbitMQ
application (``rabbitmqctl stop_app`` / ``start_app``), so .ci/run runs it alone, after the
parallel pass. The campaign must complete with every address sent exactly once (or
``unknown``, at most one message in flight per worker process).
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from .conftest import AMQP, wait_for
from .test_campaigns import _audience, _campaign, _lead_list, _recipients, _wait_status

pytestmark = [
    pytest.mark.integration,
    pytest.mark.broker_restart,
    pytest.mark.skipif(not AMQP, reason="the broker is not RabbitMQ (set OUTREACH_BROKER_URL=amqp://...)"),
]


def _rabbitmqctl(*args: str) -> None:
    binary = shutil.which("rabbitmqctl")
    if binary is None:
        pytest.skip("rabbitmqctl is not installed")
    subprocess.run([binary, "-q", *args], check=True, timeout=120, capture_output=True)


def test_a_rabbitmq_restart_mid_campaign_loses_nothing_and_sends_nothing_twice(make_service):
    service = make_service()
    service.start_worker(concurrency=2)
    emails = _audience(service, 600, asset="rabbit")
    wait_for(lambda: service.processed_count() == 600, timeout=120, message="ingest")
    campaign_id = _campaign(service, [_lead_list(service, "rabbit")], rate_per_second=40)
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    wait_for(lambda: len(service.smtp.messages) >= 100, interval=0.05, message="sending under way")
    _rabbitmqctl("stop_app")
    try:
        time.sleep(3)  # the broker is away: workers lose their channels and unacked deliveries
        assert len(service.smtp.messages) < len(emails), "finished before the restart"
    finally:
        _rabbitmqctl("start_app")
    _rabbitmqctl("await_startup")
    campaign = _wait_status(service, campaign_id, "sent", timeout=240)
    counts = service.smtp.count_by_recipient()
    assert max(counts.values()) == 1, "an address got two messages"
    unknown = _recipients(service, campaign_id, "unknown")
    sent = _recipients(service, campaign_id, "sent")
    assert len(unknown) <= 2, unknown
    assert sent | unknown == set(emails)
    assert set(counts) - unknown == sent
    assert campaign["stats"]["sent"] == len(sent)
