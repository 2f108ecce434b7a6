"""Store faults on real processes: a Redis of the test's own (AOF, ``appendfsync always``,
private port and data dir) is SIGKILLed during intake and during a running campaign and
started again from its AOF; a Sentinel group fails over in the middle of intake.

What must hold: every registration answered 202 is there afterwards and gets processed;
while Redis is down (or hung) the API answers 503 with Retry-After, never 500, never a
hang; workers reconnect by themselves; a campaign completes with no duplicate message.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from outreach.people.intake import registration_status

from .conftest import Service, wait_for
from .redis_procs import RedisProcess, SentinelGroup
from .test_campaigns import _campaign, _lead_list, _recipients, _wait_status

pytestmark = pytest.mark.integration

# a store that hangs is given up on after this (the default; gunicorn's request timeout is 30 s)
SOCKET_TIMEOUT = 5.0
HANG_LIMIT = 25.0  # generous: a loaded machine, plus the worst case of one retry


class Intake:
    """Threads posting registrations through the app, recording every answer."""

    def __init__(self, service: Service, threads: int = 2, tag: str = "r") -> None:
        self.service, self.tag = service, tag
        self.accepted: dict[str, str] = {}  # registration id -> email
        self.statuses: Counter[int] = Counter()
        self.missing_retry_after = 0
        self.slowest = 0.0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True)
                         for n in range(threads)]

    def __enter__(self) -> Intake:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self, n: int) -> None:
        client = self.service.app.test_client()
        i = 0
        try:
            while not self._stop.is_set():
                email = f"{self.tag}{n}-{i}@example.org"
                i += 1
                started = time.monotonic()
                response = client.post("/api/v1/registrations", json={
                    "kind": "white_paper", "asset": "guide", "email": email, "consent": True})
                elapsed = time.monotonic() - started
                with self._lock:
                    self.slowest = max(self.slowest, elapsed)
                    self.statuses[response.status_code] += 1
                    if response.status_code == 202:
                        self.accepted[response.get_json()["id"]] = email
                    elif response.status_code == 503 and not response.headers.get("Retry-After"):
                        self.missing_retry_after += 1
                if response.status_code != 202:
                    time.sleep(0.05)  # as a client honouring Retry-After would, only faster
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(exc)

    def count(self, status: int = 202) -> int:
        with self._lock:
            return self.statuses[status]


def _all_processed(service: Service, accepted: dict[str, str]) -> bool:
    return all(registration_status(service.store, rid)["status"] == "processed" for rid in accepted)


@pytest.fixture
def aof_redis(tmp_path: Path):  # type: ignore[no-untyped-def]
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.kill()


@pytest.fixture
def service_on(tmp_path: Path):  # type: ignore[no-untyped-def]
    made: list[Service] = []

    def make(url: str = "", **overrides: Any) -> Service:
        # these faults are of the store that is also the broker (the default deployment), in
        # both CI passes: an empty broker URL means "the store's own" (sentinel:// with Sentinel)
        overrides.setdefault("broker_url", "")
        service = Service(url, tmp_path, redis_socket_timeout=SOCKET_TIMEOUT,
                          redis_connect_timeout=SOCKET_TIMEOUT, **overrides)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


def test_redis_killed_during_intake_loses_no_accepted_registration(aof_redis, service_on):
    service = service_on(aof_redis.url)
    worker = service.start_worker()
    with Intake(service) as intake:
        wait_for(lambda: intake.count(202) >= 150, timeout=60, message="intake under way")
        aof_redis.kill()
        wait_for(lambda: intake.count(503) >= 10, timeout=60, message="503s while Redis is down")
        accepted_while_down = intake.count(202)
        aof_redis.start(restart=True)
        wait_for(lambda: intake.count(202) >= accepted_while_down + 150, timeout=60,
                 message="intake after the restart")
        # a hung store (SIGSTOP): answered 503 after the socket timeout, not held forever
        unavailable = intake.count(503)
        aof_redis.signal(signal.SIGSTOP)
        try:
            wait_for(lambda: intake.count(503) >= unavailable + 2, timeout=60,
                     message="503s while Redis hangs")
        finally:
            aof_redis.signal(signal.SIGCONT)
        wait_for(lambda: intake.count(202) >= accepted_while_down + 300, timeout=60,
                 message="intake after the hang")
    assert not intake.errors, intake.errors
    assert set(intake.statuses) <= {202, 503}, intake.statuses  # never a 500
    assert intake.missing_retry_after == 0
    assert intake.slowest < HANG_LIMIT, intake.slowest
    accepted = intake.accepted
    # every 202 is in the restarted store and gets processed by the same worker process,
    # which reconnected by itself
    wait_for(lambda: _all_processed(service, accepted), timeout=120, interval=0.5,
             message="every accepted registration processed")
    emails = {lead["email"] for lead in service.all_items("/api/v1/leads")}
    assert set(accepted.values()) <= emails
    assert worker.proc.poll() is None
    assert "recovering ingest and campaigns" in worker.log.read_text(errors="replace")


def test_redis_killed_mid_campaign_completes_without_duplicates(aof_redis, service_on):
    service = service_on(aof_redis.url)
    worker = service.start_worker(concurrency=2)
    people = 400
    for i in range(people):
        service.register(kind="white_paper", asset="faults", email=f"p{i}@example.org",
                         first_name=f"P{i}", consent=True)
    wait_for(lambda: service.processed_count() == people, timeout=120, message="ingest")
    # paced, so that the kill lands in the middle of the campaign
    campaign_id = _campaign(service, [_lead_list(service, "faults")], rate_per_second=80)
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    wait_for(lambda: len(service.smtp.messages) >= 80, interval=0.02, timeout=120,
             message="sending under way")
    aof_redis.kill()
    assert len(service.smtp.messages) < people, "finished before the kill"
    time.sleep(2)  # down for a while: the worker's tasks fail, its consumer loses the broker
    aof_redis.start(restart=True)
    campaign = _wait_status(service, campaign_id, "sent", timeout=180)
    counts = service.smtp.count_by_recipient()
    assert max(counts.values()) == 1, "an address got two messages"
    sent = _recipients(service, campaign_id, "sent")
    unknown = _recipients(service, campaign_id, "unknown")
    everyone = {f"p{i}@example.org" for i in range(people)}
    assert sent | unknown == everyone
    assert len(unknown) <= 2, unknown  # at most one in flight per worker process
    assert set(counts) - unknown == sent
    assert campaign["stats"]["sent"] == len(sent)
    assert worker.proc.poll() is None, "the same worker finished the campaign"


@pytest.fixture
def sentinel_group(tmp_path: Path):  # type: ignore[no-untyped-def]
    group = SentinelGroup(tmp_path / "sentinel").start()
    yield group
    group.stop()


def test_sentinel_failover_mid_intake_follows_the_new_master(sentinel_group, service_on):
    group = sentinel_group
    service = service_on("", redis_sentinels=group.addresses, redis_sentinel_master=group.name,
                         intake_min_replicas=1, intake_replica_timeout_ms=2000)
    assert service.app.extensions["celery"].conf.broker_url.startswith("sentinel://")
    worker = service.start_worker()
    old_master = group.master.port
    with Intake(service, tag="f") as intake:
        wait_for(lambda: intake.count(202) >= 150, timeout=60, message="intake under way")
        group.master.kill()
        wait_for(lambda: group.master_port() not in (None, old_master), timeout=90,
                 message="the sentinels to promote the replica")
        # the new master has no replica yet: with min replicas 1 intake answers 503 (not 202)
        # until the old master is back, as the new master's replica
        at_failover = intake.count(202)
        unavailable = intake.count(503)
        wait_for(lambda: intake.count(503) >= unavailable + 5, timeout=60,
                 message="503s while no replica acknowledges")
        group.master.start(restart=True)
        wait_for(lambda: intake.count(202) >= at_failover + 150, timeout=120,
                 message="intake on the new master, replicated to the old one")
    assert not intake.errors, intake.errors
    assert set(intake.statuses) <= {202, 503}, intake.statuses
    assert intake.missing_retry_after == 0
    assert intake.slowest < HANG_LIMIT + 2, intake.slowest
    assert group.master_port() == group.replica.port
    # with OUTREACH_INTAKE_MIN_REPLICAS=1 nothing answered 202 was lost at the failover,
    # and the worker (store and sentinel:// broker) followed the new master by itself
    wait_for(lambda: _all_processed(service, intake.accepted), timeout=120, interval=0.5,
             message="every accepted registration processed on the new master")
    assert worker.proc.poll() is None
