"""Several relays (OUTREACH_SMTP_URLS): the first is down, every message goes through the second."""

from __future__ import annotations

import socket

from .conftest import wait_for
from .test_campaigns import _audience, _campaign, _lead_list, _wait_status


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_first_relay_down_all_mail_arrives_at_the_second(make_service):
    service = make_service()  # its SMTP server (aiosmtpd) is the second relay
    down = _closed_port()
    service.env["OUTREACH_SMTP_URLS"] = (f"smtp://127.0.0.1:{down},"
                                         f"smtp://127.0.0.1:{service.smtp.port}")
    service.env["OUTREACH_SMTP_HOST"] = "127.0.0.1"
    service.env["OUTREACH_SMTP_PORT"] = str(down)  # unused when OUTREACH_SMTP_URLS is set
    service.start_worker()
    emails = _audience(service, 150, asset="failover")
    wait_for(lambda: service.processed_count() == 150, message="ingest")
    campaign_id = _campaign(service, [_lead_list(service, "failover")])
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    campaign = _wait_status(service, campaign_id, "sent")
    counts = service.smtp.count_by_recipient()
    assert set(counts) == set(emails) and max(counts.values()) == 1  # 0 lost, 0 duplicates
    assert campaign["stats"]["sent"] == 150
    assert campaign["stats"]["failed"] == campaign["stats"]["unknown"] == 0
