"""Helpers shared by the benchmarks: paths, Redis dbs of their own, child processes.

Every benchmark owns one Redis database (``BENCH_DBS``; the tests use 1-9) and
flushes only that database, before and after. Every process a benchmark starts is
started in a new session and its whole process group is killed by id on exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import redis

from outreach.store import Store

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
REDIS_HOST = os.environ.get("BENCH_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("BENCH_REDIS_PORT", "6379"))
BENCH_DBS = {"memory": 15, "intake": 14, "ingest": 13, "send": 12}
KEY_PREFIX = "bench"  # every outreach key is then "{bench}:..."; the tests use other prefixes

_children: list[subprocess.Popen[bytes]] = []


def redis_url(db: int) -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"


def redis_client(db: int, decode: bool = True) -> redis.Redis:
    return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, decode_responses=decode)


@contextlib.contextmanager
def own_db(db: int) -> Iterator[redis.Redis]:
    """A client on ``db``, flushed (that db only) before and after the block."""
    if db < 10 and os.environ.get("OUTREACH_BENCH_DB") != str(db):
        raise ValueError("databases 0-9 belong to development and the tests "
                         "(OUTREACH_BENCH_DB=<n>: this one is yours)")
    client = redis_client(db)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


OUTSIDE_CHECKOUT = Path(tempfile.gettempdir())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    log: IO[bytes] | None = None,
    cwd: Path = OUTSIDE_CHECKOUT,
) -> subprocess.Popen[bytes]:
    """Start a child in its own session; it (and its group) is killed at exit at the latest.
    It runs outside the checkout, so gunicorn and ``python -m`` import the installed package
    (the one whose wheel ships ``templates/`` as ``outreach/templates``), as users do."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=full_env,
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        start_new_session=True,
    )
    _children.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the child's process group (by its id), then SIGKILL what is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    # workers forked by the child may outlive it for a moment: clear the group too
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc in _children:
        _children.remove(proc)


@atexit.register
def _stop_all() -> None:
    for proc in list(_children):
        stop(proc, timeout=5)


def _on_signal(signum: int, _frame: object) -> None:
    _stop_all()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Wait until ``url`` answers 2xx; fail early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if 200 <= response.status < 300:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def header(title: str) -> None:
    import platform

    print(f"# {title}")
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M:%S %Z')} | {platform.node()} | "
        f"{os.cpu_count()} CPUs | Python {platform.python_version()} | "
        f"Redis {redis_client(0).info('server')['redis_version']} | {load_note()}"
    )
    print(f"# code: {code_version()}")


def load_note() -> str:
    """The machine's load average: other work on it makes the figures noisy."""
    one, five, _ = os.getloadavg()
    return f"load avg {one:.2f} (1 min) {five:.2f} (5 min)"


# --- synthetic registrations --------------------------------------------------------------

FIRST_NAMES = (
    "Ada", "Grace", "Alan", "Barbara", "Edsger", "Margaret", "Linus", "Radia", "Donald",
    "Frances", "Ken", "Sophie", "Dennis", "Hedy", "Tim", "Katherine", "Guido", "Anita",
)
LAST_NAMES = (
    "Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Hamilton", "Torvalds", "Perlman",
    "Knuth", "Allen", "Thompson", "Wilson", "Ritchie", "Lamarr", "Berners-Lee", "Johnson",
)
COMPANIES = (
    "Analytical Engines Ltd", "Northwind Traders", "Contoso Pharmaceuticals", "Fabrikam Inc.",
    "Tailspin Toys", "Wide World Importers", "Adventure Works Cycles", "Litware GmbH",
    "Proseware SAS", "Woodgrove Bank", "Alpine Ski House", "Coho Winery", "Lucerne Publishing",
)
JOB_TITLES = (
    "Head of Research", "CTO", "IT Manager", "Marketing Director", "Software Engineer",
    "VP Sales", "Procurement Officer", "Data Scientist", "Security Architect", "CFO",
)
COUNTRIES = ("GB", "US", "DE", "FR", "NL", "ES", "IT", "SE", "PL", "CA", "AU", "JP")
ASSETS = tuple(
    ("event" if i % 5 == 4 else "white_paper", slug)
    for i, slug in enumerate((
        "cloud-security-2026", "zero-trust-guide", "data-mesh-primer", "ai-ops-report",
        "edge-summit-berlin", "kubernetes-at-scale", "finops-handbook", "gdpr-checklist",
        "observability-101", "devsecops-day", "platform-teams", "sre-field-guide",
        "llm-in-production", "ransomware-playbook", "cloud-expo-paris", "api-first-design",
        "green-it-report", "identity-2026", "lakehouse-benchmark", "partner-days-2026",
    ))
)


def make_registrations(
    count: int, duplicate_share: float = 0.0, seed: int = 7, at: int = 1_790_000_000
) -> list[dict[str, object]]:
    """Payloads as ``accept_registration`` stores them in the stream.

    A ``duplicate_share`` of them comes again from an address seen before, spelled
    differently (case), half for the same asset and half for another one.
    """
    import random

    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    seen: list[str] = []
    for n in range(count):
        if seen and rng.random() < duplicate_share:
            email = rng.choice(seen)
            email = email.upper() if rng.random() < 0.5 else email.capitalize()
            previous = out[rng.randrange(len(out))]
            kind, asset = (
                (previous["kind"], previous["asset"]) if rng.random() < 0.5
                else rng.choice(ASSETS)
            )
        else:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            domain = rng.choice(("example.com", "example.org", "example.net"))
            email = f"{first}.{last}.{n}@{domain}".lower()
            seen.append(email)
            kind, asset = rng.choice(ASSETS)
        payload: dict[str, object] = {"kind": kind, "asset": asset, "email": email, "at": at + n}
        if rng.random() < 0.8:
            payload["consent"] = 1
        payload.update(
            first_name=rng.choice(FIRST_NAMES),
            last_name=rng.choice(LAST_NAMES),
            job_title=rng.choice(JOB_TITLES),
            company=rng.choice(COMPANIES),
            country=rng.choice(COUNTRIES),
        )
        out.append(payload)
    return out


def fill_stream(store: Store, payloads: Sequence[dict[str, object]], chunk: int = 2000) -> int:
    """Append ``payloads`` to the intake stream the way the API does with the rate limit
    and Idempotency-Key off (a plain XADD of the JSON payload), pipelined; no task is sent."""
    import json

    keys = store.keys
    for start_at in range(0, len(payloads), chunk):
        pipe = store.r.pipeline(transaction=False)
        for payload in payloads[start_at:start_at + chunk]:
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
            pipe.xadd(keys.intake_stream, {"d": body})
        pipe.execute()
    return len(payloads)


# --- noise from other work on the machine -------------------------------------------------

_HZ = os.sysconf("SC_CLK_TCK")


def _busy_ticks() -> int:
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal


def _proc_ticks(own_groups: set[int], redis_too: bool = True) -> int:
    """CPU ticks of the processes in ``own_groups`` (and of every redis-server)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        rest = text[text.rindex(")") + 2:].split()
        pgrp = int(rest[2])
        if pgrp in own_groups or (redis_too and name == "redis-server"):
            total += int(rest[11]) + int(rest[12])  # utime + stime
    return total


def _self_ticks() -> float:
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # e.g. wrk, once waited for
    return (me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime) * _HZ


class CpuWatch:
    """Share of the machine's CPU that went to processes outside the measurement.

    Ours: the process groups given (the servers under test), this process and the
    children it waited for (wrk), and redis-server. Everything else (other users of the
    machine) is "foreign"; a high share means the figure of that run is not comparable.
    """

    def __init__(self, *groups: int) -> None:
        self.groups = set(groups)
        self.start()

    def start(self) -> None:
        self.wall = time.monotonic()
        self.busy = _busy_ticks()
        self.own = _proc_ticks(self.groups) + _self_ticks()
        self.group_ticks = _proc_ticks(self.groups, redis_too=False)

    def groups_cpu(self) -> float:
        """CPU seconds the watched process groups used since ``start``."""
        return (_proc_ticks(self.groups, redis_too=False) - self.group_ticks) / _HZ

    def foreign_share(self) -> float:
        wall = time.monotonic() - self.wall
        busy = _busy_ticks() - self.busy
        own = _proc_ticks(self.groups) + _self_ticks() - self.own
        capacity = wall * _HZ * (os.cpu_count() or 1)
        return max(0.0, (busy - own) / capacity) if capacity else 0.0


def wait_quiet(max_share: float, *groups: int, timeout: float = 300.0, window: float = 2.0) -> float:
    """Wait (up to ``timeout``) until other work takes at most ``max_share`` of the CPU.

    Returns the share seen in the last ``window``.
    """
    deadline = time.monotonic() + timeout
    while True:
        watch = CpuWatch(*groups)
        time.sleep(window)
        share = watch.foreign_share()
        if share <= max_share or time.monotonic() > deadline:
            return share


def code_version() -> str:
    """The commit measured, and whether the product code had uncommitted changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "outreach", "tasks"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown"
    changed = [line for line in dirty if line.strip()]
    return f"commit {commit}" + (f" + {len(changed)} uncommitted product file(s)" if changed else "")
