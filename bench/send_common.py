"""Helpers of the sending benchmarks (``send.py``, ``dispatch_memory.py``).

Self-contained on purpose (the other benchmarks share ``_common.py``): Redis db 12
with key prefix ``bench`` (FLUSHDB of that db only, never FLUSHALL), Postfix's
``smtp-sink`` started when nothing listens on its port, real ``outreach worker``
subprocesses in their own sessions (stopped by process-group id), the Flask app's
test client for the marketer API, and RSS read from ``/proc``.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import BENCH_DBS, KEY_PREFIX, OUTSIDE_CHECKOUT, redis_url, stop

SEND_DB = BENCH_DBS["send"]  # the sending benchmarks' own database
SMTP_HOST = "127.0.0.1"
SMTP_PORT = 2525
FROM_EMAIL = "news@mail.example.com"
ASSET_KIND, ASSET_SLUG = "white_paper", "zero-trust-guide"

FIRST_NAMES = ("Ada", "Grace", "Alan", "Barbara", "Edsger", "Margaret", "Linus", "Radia",
               "Donald", "Frances", "Ken", "Sophie", "Dennis", "Hedy", "Tim", "Katherine")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Hamilton", "Torvalds",
              "Perlman", "Knuth", "Allen", "Thompson", "Wilson", "Ritchie", "Lamarr")
COMPANIES = ("Northwind Traders", "Contoso Pharmaceuticals", "Fabrikam Inc.", "Tailspin Toys",
             "Wide World Importers", "Litware GmbH", "Woodgrove Bank", "Coho Winery")
JOB_TITLES = ("CTO", "IT Manager", "Marketing Director", "Software Engineer", "VP Sales", "CFO")


def service_env(db: int = SEND_DB, **overrides: str) -> dict[str, str]:
    """The ``OUTREACH_*`` settings shared by the worker and the in-process API app."""
    env = {
        "OUTREACH_REDIS_URL": redis_url(db),
        "OUTREACH_KEY_PREFIX": KEY_PREFIX,
        "OUTREACH_SMTP_HOST": SMTP_HOST,
        "OUTREACH_SMTP_PORT": str(SMTP_PORT),
        "OUTREACH_SMTP_TIMEOUT": "30",
        "OUTREACH_INTAKE_RATE_LIMIT": "0",
        "OUTREACH_BASE_URL": "https://outreach.example.com",
        "OUTREACH_SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnop",
        "OUTREACH_FROM_EMAIL": FROM_EMAIL,
    }
    env.update(overrides)
    return env


# --------------------------------------------------------------------------- processes

def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@contextlib.contextmanager
def smtp_sink(host: str = SMTP_HOST, port: int = SMTP_PORT) -> Iterator[str]:
    """Postfix's ``smtp-sink`` on ``host:port``: reused if something listens there already,
    else started here (as root: ``-u nobody``) and stopped at the end. Yields a description."""
    if _listening(host, port):
        yield f"smtp-sink: reusing the server already listening on {host}:{port}"
        return
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not Path(binary).exists():
        raise SystemExit("smtp-sink not found: apt-get install postfix (then `postfix stop`)")
    argv = [binary, "-c", f"{host}:{port}", "1000"]
    if os.geteuid() == 0:
        argv[1:1] = ["-u", "nobody"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not _listening(host, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"smtp-sink did not start ({' '.join(argv)})")
            time.sleep(0.05)
        yield f"smtp-sink: started here ({' '.join(argv)}, pid {proc.pid})"
    finally:
        stop(proc, timeout=5)


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self) -> list[int]:
        return child_pids(self.proc.pid)

    def stop(self) -> None:
        stop(self.proc, timeout=20)


@contextlib.contextmanager
def worker(env: dict[str, str], concurrency: int = 2, queues: str = "send,default,ingest",
           loglevel: str = "INFO") -> Iterator[Worker]:
    """A real ``outreach worker`` subprocess (prefork pool), ready when yielded."""
    log = Path(tempfile.mkstemp(prefix="bench-send-worker-", suffix=".log")[1])
    argv = [sys.executable, "-m", "outreach.cli.main", "worker", "-c", str(concurrency), "-Q", queues,
            "-l", loglevel, "-n", f"bench-send-{os.getpid()}@%h", "--without-mingle",
            "--without-gossip", "--without-heartbeat"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=OUTSIDE_CHECKOUT, env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    w = Worker(proc, log)
    try:
        deadline = time.monotonic() + 60
        while " ready." not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        while len(w.children()) < concurrency and time.monotonic() < deadline:
            time.sleep(0.05)
        yield w
    finally:
        w.stop()


def child_pids(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used so far (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its current children."""
    return cpu_seconds(pid) + sum(cpu_seconds(c) for c in child_pids(pid))


def pss_mb(pid: int) -> float | None:
    """Proportional set size (shared pages split between the processes sharing them)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def rss_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MiB (``VmRSS``), ``None`` once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# --------------------------------------------------------------------------- the service

class Api:
    """The marketer API through the Flask app's test client (same env as the worker)."""

    def __init__(self, env: dict[str, str]) -> None:
        os.environ.update(env)
        import outreach
        from outreach.platform.apikeys import create_api_key

        self.app = outreach.create_app()
        self.store = self.app.extensions["outreach.store"]
        self.config = self.app.extensions["outreach.config"]
        self.client = self.app.test_client()
        self.auth = {"Authorization": f"Bearer {create_api_key(self.store, 'bench')}"}

    def get(self, path: str) -> Any:
        response = self.client.get(path, headers=self.auth)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.get_json()}")
        return response.get_json()

    def post(self, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.client.post(path, json=body, headers=self.auth)
        if response.status_code != status:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.get_json()}")
        return response.get_json()

    def lead_list(self, slug: str = ASSET_SLUG) -> str:
        cursor = None
        while True:
            page = self.get("/api/v1/lists?limit=200" + (f"&cursor={cursor}" if cursor else ""))
            for item in page["items"]:
                if item["asset"] and item["asset"]["slug"] == slug and item["member_type"] == "lead":
                    return str(item["id"])
            cursor = page["next_cursor"]
            if not cursor:
                raise RuntimeError(f"no lead list for {slug}")

    def create_campaign(self, list_id: str, template: str = "white_paper_followup",
                        extra: dict[str, Any] | None = None) -> str:
        """A template from the built-in starting point ``template`` and a draft campaign
        (with ``extra`` fields: an experiment)."""
        builtin = next(t for t in self.get("/api/v1/templates/builtin") if t["name"] == template)
        created = self.post("/api/v1/templates", {k: builtin[k] for k in ("name", "subject", "html",
                                                                       "text")}, status=201)
        body = {"name": "Bench launch", "template_id": created["id"], "list_ids": [list_id],
                "from_email": FROM_EMAIL, **(extra or {})}
        return str(self.post("/api/v1/campaigns", body, status=201)["id"])

    def campaign(self, campaign_id: str) -> dict[str, Any]:
        return dict(self.get(f"/api/v1/campaigns/{campaign_id}"))

    def launch(self, campaign_id: str) -> dict[str, Any]:
        return dict(self.post(f"/api/v1/campaigns/{campaign_id}/launch"))

    def sample_message(self, campaign_id: str) -> tuple[dict[str, str], bytes]:
        """One message of the campaign as the worker builds it, for someone outside its
        audience (nothing is claimed or counted): its parts and headers, and its wire bytes."""
        from outreach.campaigns.sending.context import PERSON_FIELDS, CampaignContext
        from outreach.campaigns.sending.deliver import deliver_one
        from outreach.mail.smtp.messenger import dot_stuffed

        class Capture:
            msg: Any = None

            def send(self, msg: Any, mail_from: str, rcpt_to: str, before_data: Any = None) -> str:
                self.msg = msg
                return "250 ok"

        h = self.store.r.hgetall(self.store.keys.campaign(campaign_id))
        ctx = CampaignContext(self.store, self.config, campaign_id, h)
        capture = Capture()
        person = dict(zip(PERSON_FIELDS, [None] * len(PERSON_FIELDS), strict=True))
        person.update(sample_person(123_456))
        deliver_one(self.store, self.config, capture, ctx, str(person["email"]), "l:ld0", person)
        wire = dot_stuffed(capture.msg)
        msg = email.message_from_bytes(wire[:-3], policy=email.policy.default)
        parts = {name: str(msg[name]) for name in ("Subject", "List-Unsubscribe",
                                                    "List-Unsubscribe-Post", "X-Outreach-Campaign")}
        parts["html"] = msg.get_body(("html",)).get_content()
        parts["text"] = msg.get_body(("plain",)).get_content()
        return parts, wire


def sample_person(i: int) -> dict[str, str]:
    first = FIRST_NAMES[i % len(FIRST_NAMES)]
    last = LAST_NAMES[(i // len(FIRST_NAMES)) % len(LAST_NAMES)]
    return {"email": f"{first}.{last}.{i}@example.org".lower(), "first_name": first,
            "last_name": last, "company": COMPANIES[i % len(COMPANIES)],
            "job_title": JOB_TITLES[i % len(JOB_TITLES)], "country": "GB"}


def create_audience(store: Any, config: Any, count: int, chunk: int = 1000,
                    start: int = 0) -> float:
    """``count`` consenting leads in the white paper's lead list, written by the product's
    ingest (``apply_batch``) from synthetic stream entries. Returns the seconds it took."""
    from outreach.people.ingest import apply_batch

    store.ensure_ingest_group()
    began = time.perf_counter()
    at = 1_790_000_000
    for first in range(start, start + count, chunk):
        entries: list[tuple[str, dict[str, str]]] = []
        for i in range(first, min(first + chunk, start + count)):
            data = {"kind": ASSET_KIND, "asset": ASSET_SLUG, "consent": 1, "at": at + i,
                    **sample_person(i)}
            entries.append((f"{at}000-{i}", {"d": json.dumps(data, separators=(",", ":"))}))
        apply_batch(store, config, entries)
    return time.perf_counter() - began


def create_audience_direct(store: Any, count: int, chunk: int = 5000) -> float:
    """``count`` consenting leads in one lead list, written with pipelined commands under the
    store's key names (the fields the ingest script writes, minus history). Seconds taken."""
    keys = store.keys
    r = store.r
    now = str(int(time.time()))
    lead_list, contact_list = "lsb1", "lsb2"
    title = f"White paper: {ASSET_SLUG}"
    pipe = r.pipeline(transaction=False)
    pipe.hset(keys.list(lead_list), mapping={"name": title + " (leads)", "member_type": "lead",
                                             "kind": ASSET_KIND, "slug": ASSET_SLUG,
                                             "parallel": contact_list, "created_at": now})
    pipe.hset(keys.list(contact_list), mapping={"name": title + " (contacts)",
                                                "member_type": "contact", "kind": ASSET_KIND,
                                                "slug": ASSET_SLUG, "parallel": lead_list,
                                                "created_at": now})
    pipe.zadd(keys.lists, {lead_list: 1, contact_list: 2})
    pipe.hset(keys.assets, f"{ASSET_KIND}:{ASSET_SLUG}", f"{lead_list},{contact_list}")
    pipe.execute()
    began = time.perf_counter()
    for first in range(0, count, chunk):
        pipe = r.pipeline(transaction=False)
        members: dict[str, int] = {}
        by_email: dict[str, str] = {}
        for i in range(first, min(first + chunk, count)):
            n = i + 1
            lead_id = f"ld{_b36(n)}"
            person = sample_person(i)
            pipe.hset(keys.lead(lead_id), mapping={
                **person, "status": "new", "score": "0", "consent": "1", "created_at": now,
                "topic": f"{ASSET_KIND}: {ASSET_SLUG}",
                "regs": f"{ASSET_KIND}:{ASSET_SLUG}:{now}", "updated_at": now})
            members[lead_id] = n
            by_email[person["email"]] = lead_id
        pipe.zadd(keys.list_members(lead_list), members)
        pipe.zadd(keys.leads, members)
        pipe.hset(keys.lead_by_email, mapping=by_email)
        pipe.execute()
    r.hset(keys.sequences, mapping={"lead": str(count), "member": str(count), "list": "2"})
    return time.perf_counter() - began


def _b36(n: int) -> str:
    from outreach.store import to_base36

    return to_base36(n)


@dataclass
class RssSampler:
    """RSS of a worker's main process and its pool children, sampled on demand."""

    main: int
    samples: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def sample(self) -> None:
        now = time.monotonic() - self.started
        for pid in (self.main, *child_pids(self.main)):
            value = rss_mb(pid)
            if value is not None:
                self.samples.setdefault(pid, []).append((now, value))

    def rows(self) -> list[tuple[str, int, float, float, float, float]]:
        """(role, pid, first, max, last, seconds observed) per process."""
        out = []
        for pid, series in self.samples.items():
            values = [v for _, v in series]
            role = "main" if pid == self.main else "child"
            out.append((role, pid, values[0], max(values), values[-1], series[-1][0] - series[0][0]))
        return out


def fmt_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
