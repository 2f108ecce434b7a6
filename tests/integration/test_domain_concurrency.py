"""A receiving domain's concurrency limit (``OUTREACH_DOMAIN_LIMITS`` ``Nc``) holds across a
real worker's processes.

A slow relay (aiosmtpd, each DATA answered after a pause so that transactions overlap)
counts, per recipient domain, the transactions in progress (from an accepted RCPT to the
reply to DATA, or RSET) and keeps the highest count it saw. With ``limited.example=2c``
and a worker of four processes sending small batches, limited.example never sees more than
two at once; every message arrives once and the campaign ends ``sent``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from typing import Any

from aiosmtpd.controller import Controller

from .conftest import wait_for
from .test_campaigns import _campaign, _lead_list, _wait_status

HOLD_SECONDS = 0.15  # how long the relay takes to answer DATA: transactions overlap


class CountingRelay:
    """aiosmtpd handler: transactions in progress per recipient domain, their peak, and
    how many times each address was delivered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inflight: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()
        self.open: dict[int, list[str]] = {}  # session -> domains of its current transaction
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def _end(self, session: Any) -> None:
        with self.lock:
            for domain in self.open.pop(id(session), []):
                self.inflight[domain] -= 1

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        domain = address.rpartition("@")[2].lower()
        with self.lock:
            self.inflight[domain] += 1
            self.peak[domain] = max(self.peak[domain], self.inflight[domain])
            self.open.setdefault(id(session), []).append(domain)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(HOLD_SECONDS)
        with self.lock:
            for address in envelope.rcpt_tos:
                self.delivered[address.lower()] += 1
        self._end(session)
        return "250 OK"

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        self._end(session)
        return "250 OK"


def test_a_domains_concurrency_limit_holds_across_worker_processes(make_service):
    relay = CountingRelay()
    try:
        service = make_service(smtp_host="127.0.0.1", smtp_port=relay.port,
                               domain_limits="limited.example=2c;*=1000/s",
                               send_batch_size=4)
        service.start_worker(concurrency=4)
        emails = [f"r{i}@{domain}" for i in range(24)
                  for domain in ("limited.example", "other.example")]
        for address in emails:
            service.register(kind="white_paper", asset="concurrency", email=address, consent=True)
        wait_for(lambda: service.processed_count() == len(emails), message="ingest")
        campaign_id = _campaign(service, [_lead_list(service, "concurrency")])
        service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
        campaign = _wait_status(service, campaign_id, "sent", timeout=180)

        assert relay.delivered == Counter({email: 1 for email in emails})  # each once
        assert 1 <= relay.peak["limited.example"] <= 2
        stats = campaign["stats"]
        assert (stats["sent"], stats["failed"], stats["unknown"]) == (len(emails), 0, 0)
        keys = service.store.keys
        assert service.store.r.hlen(keys.domain_slots("limited.example")) == 0  # all given back
    finally:
        relay.stop()
