"""Integration fixtures: real Redis, real Celery worker processes, a real SMTP server.

Each test owns Redis database ``OUTREACH_TEST_REDIS_DB`` (default 5): it is flushed
before the test (never FLUSHALL). Workers are ``outreach worker`` subprocesses in
their own process groups, so a test can SIGKILL one the way a crash would.
The API is the Flask app in this process, publishing to the same Redis broker.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import outreach
from outreach.mail.capture import SmtpCapture
from outreach.platform.apikeys import create_api_key

REDIS_HOST = os.environ.get("OUTREACH_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("OUTREACH_TEST_REDIS_PORT", "6379"))
REDIS_DB = int(os.environ.get("OUTREACH_TEST_REDIS_DB", "5"))

pytestmark = pytest.mark.integration


def _ping() -> bool:
    try:
        return bool(redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=1).ping())
    except redis.RedisError:
        return False


XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1"... under pytest -n


def broker_url_for_this_run() -> str | None:
    """``OUTREACH_BROKER_URL`` for this pytest process: under xdist, an AMQP URL's vhost gets
    the worker's suffix (``outreach-ci-gw1``) so that parallel workers never share queues;
    the vhost is created with rabbitmqctl when it is missing (.ci/run creates them too)."""
    url = os.environ.get("OUTREACH_BROKER_URL")
    if not url or not url.startswith(("amqp://", "pyamqp://")) or not XDIST_WORKER:
        return url
    base, _, vhost = url.rpartition("/")
    vhost = f"{vhost or 'outreach-ci'}-{XDIST_WORKER}"
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl:
        listed = subprocess.run([rabbitmqctl, "-q", "list_vhosts"], capture_output=True, text=True,
                                timeout=60).stdout.split()
        if vhost not in listed:
            subprocess.run([rabbitmqctl, "-q", "add_vhost", vhost], check=False, timeout=60)
            subprocess.run([rabbitmqctl, "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                           check=False, timeout=60)
    return f"{base}/{vhost}"


BROKER_URL = broker_url_for_this_run()
AMQP = bool(BROKER_URL and BROKER_URL.startswith(("amqp://", "pyamqp://")))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: the one running, or one started here; skip only when neither is possible.

    Under pytest-xdist the first worker (gw0) uses database ``OUTREACH_TEST_REDIS_DB`` of that
    Redis; every other worker starts a private redis-server (own port and directory), so
    parallel workers never flush each other's data and never touch another database."""
    if XDIST_WORKER and XDIST_WORKER != "gw0":
        from .redis_procs import RedisProcess

        private = RedisProcess(tmp_path_factory.mktemp(f"redis-{XDIST_WORKER}"), aof=False)
        private.start()
        try:
            yield private.url
        finally:
            private.kill()
        return
    yield _shared_redis()


def _shared_redis() -> str:
    if not _ping():
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip(f"no Redis answers on {REDIS_HOST}:{REDIS_PORT} "
                        "and redis-server is not installed")
        subprocess.run([binary, "--daemonize", "yes", "--port", str(REDIS_PORT), "--save", "",
                        "--appendonly", "no"], check=False)
        deadline = time.monotonic() + 10
        while not _ping():
            if time.monotonic() > deadline:
                pytest.skip("redis-server did not start")
            time.sleep(0.1)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1,
             message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


class Worker:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc, self.log = proc, log

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def _purge_amqp(celery_app: Any) -> None:
    """Purge the task queues on a fresh connection: a pooled one left idle by an earlier test
    may have been closed by RabbitMQ (seen in CI: ConnectionResetError on the first write)."""
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=5)
        celery_app.amqp.TaskConsumer(conn).purge()


class Service:
    """The service as an operator runs it: API app, worker processes, SMTP server."""

    def __init__(self, redis_url: str, tmp: Path, **overrides: Any) -> None:
        self.tmp = tmp
        self.smtp = SmtpCapture().start()
        self.env = {
            "OUTREACH_REDIS_URL": redis_url,
            "OUTREACH_KEY_PREFIX": "it",
            "OUTREACH_SMTP_HOST": self.smtp.host,
            "OUTREACH_SMTP_PORT": str(self.smtp.port),
            "OUTREACH_SMTP_TIMEOUT": "5",
            "OUTREACH_INTAKE_RATE_LIMIT": "0",
            "OUTREACH_BASE_URL": "http://outreach.test",
            "OUTREACH_SECRET_KEY": "integration-secret-key-0123456789-abcdefghijkl",
            "OUTREACH_INGEST_CLAIM_IDLE_MS": "1500",
            "OUTREACH_SEND_CLAIM_TIMEOUT_SECONDS": "3",
            "OUTREACH_SEND_BATCH_STALE_SECONDS": "4",
            "OUTREACH_CAMPAIGN_WATCH_SECONDS": "0.5",
            # registrations for assets no one made first, as in `outreach dev` (issue 17)
            "OUTREACH_INTAKE_CREATE_ASSETS": "1",
        }
        if BROKER_URL:  # the second CI pass: RabbitMQ (this xdist worker's own vhost)
            self.env["OUTREACH_BROKER_URL"] = BROKER_URL
        for key, value in overrides.items():
            self.env["OUTREACH_" + key.upper()] = str(value)
        self._apply_env()
        self.app = outreach.create_app()
        self.store = self.app.extensions["outreach.store"]
        self.config = self.app.extensions["outreach.config"]
        self.store.r.flushdb()  # the store, and a Redis broker's queues
        if AMQP:  # RabbitMQ keeps its queues: drop what an earlier test left in them
            _purge_amqp(self.app.extensions["celery"])
        self.client = self.app.test_client()
        self.auth = {"Authorization": f"Bearer {create_api_key(self.store, 'it')}"}
        self.workers: list[Worker] = []

    def _apply_env(self) -> None:
        self._saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)

    def start_worker(self, concurrency: int = 2, queues: str = "ingest,send,default") -> Worker:
        n = len(self.workers) + 1
        log = self.tmp / f"worker{n}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "outreach.cli.main", "worker", "-c", str(concurrency), "-Q", queues,
             "-l", "INFO", "-n", f"it{n}-{os.getpid()}@%h", "--without-mingle", "--without-gossip"],
            env={**os.environ, **self.env}, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True, cwd=self.tmp,  # `-m` would put a checkout in cwd on sys.path
        )
        worker = Worker(proc, log)
        self.workers.append(worker)
        wait_for(lambda: "ready" in log.read_text(errors="replace") or proc.poll() is not None,
                 timeout=60, message="the worker to start")
        assert proc.poll() is None, log.read_text()
        return worker

    # HTTP helpers
    def register(self, **body: Any) -> str:
        response = self.client.post("/api/v1/registrations", json=body)
        assert response.status_code == 202, response.get_json()
        return response.get_json()["id"]

    def get(self, path: str) -> Any:
        response = self.client.get(path, headers=self.auth)
        assert response.status_code == 200, (path, response.get_json())
        return response.get_json()

    def post(self, path: str, json: Any = None, status: int | None = None) -> Any:
        response = self.client.post(path, json=json, headers=self.auth)
        if status is not None:
            assert response.status_code == status, (path, response.get_json())
        return response.get_json()

    def all_items(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        sep = "&" if "?" in path else "?"
        cursor = None
        while True:
            page = self.get(f"{path}{sep}limit=500" + (f"&cursor={cursor}" if cursor else ""))
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items

    def processed_count(self) -> int:
        return int(self.store.r.hget(self.store.keys.metrics, "registrations_processed") or 0)

    def diagnosis(self) -> str:
        """The intake stream and its consumer group, the metrics, the queues' lengths when
        the broker is this Redis."""
        r, keys = self.store.r, self.store.keys
        lines = [f"metrics {r.hgetall(keys.metrics)}"]
        with contextlib.suppress(Exception):
            lines.append(f"intake stream length {r.xlen(keys.intake_stream)}")
            lines.append(f"groups {r.xinfo_groups(keys.intake_stream)}")
        for queue in ("ingest", "send", "default"):
            if r.type(queue) == "list":
                lines.append(f"queue {queue}: {r.llen(queue)}")
        return "\n".join(lines)

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.smtp.stop()
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test reports what its services' workers last said and the intake stream's
    state: a timeout alone says nothing about what was being waited on."""
    outcome = yield
    report = outcome.get_result()
    services = getattr(item, "outreach_services", [])
    if report.when != "call" or not report.failed or not services:
        return
    for n, service in enumerate(services):
        with contextlib.suppress(Exception):
            report.sections.append((f"service {n}: store", service.diagnosis()))
        for worker in service.workers:
            tail = worker.log.read_text(errors="replace")[-6000:] if worker.log.exists() else ""
            report.sections.append((f"service {n}: {worker.log.name} (last 6000 chars)", tail))


@pytest.fixture
def make_service(request: pytest.FixtureRequest, redis_server: str,
                 tmp_path: Path) -> Iterator[Callable[..., Service]]:
    made: list[Service] = []
    request.node.outreach_services = made

    def make(**overrides: Any) -> Service:
        service = Service(redis_server, tmp_path, **overrides)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()
