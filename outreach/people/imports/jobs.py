"""CSV imports as jobs (the API's): the uploaded file kept with a queued job, a worker
claiming it with a lease that every batch's progress renews, and the job's report.
A job whose worker died is run again once its lease expired; the import's dedup makes
that safe."""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import time
from collections.abc import Iterator
from typing import Any

from outreach.config import Config
from outreach.errors import Invalid, Unavailable
from outreach.people.imports.csvfile import NotCsv
from outreach.people.imports.run import Options, Report, check_options, run_import
from outreach.store import Store

log = logging.getLogger(__name__)


def create_job(store: Store, config: Config, content: bytes, options: Options) -> str:
    """Keep an uploaded file and a queued job for a worker; returns the import id.

    The job, its file and its place in the imports schedule are written in one transaction
    (Redis is the outbox: the beat runs it when the publish after this is lost). Uploads
    waiting in Redis share a global byte quota (``import_upload_quota_bytes``): over it,
    ``Unavailable`` (503) before anything is stored."""
    check_options(options)
    import json

    keys = store.keys
    size = len(content)
    encoded = base64.b64encode(content).decode("ascii")
    import_id, _ = store.next_id("import", "im")
    if not store.run("quota_take", keys=[keys.import_bytes],
                     args=[config.import_upload_quota_bytes, max(1, len(encoded)), import_id]):
        raise Unavailable("Too many imports are waiting to run; try again shortly.",
                          retry_after=30)
    now = time.time()
    pipe = store.r.pipeline(transaction=True)
    # the store decodes replies as text: the file is kept base64 (any bytes, any encoding)
    pipe.set(keys.import_file(import_id), encoded, ex=86_400)
    pipe.hset(keys.import_job(import_id), mapping={
        "status": "queued", "rows": 0, "created": 0, "updated": 0, "unchanged": 0, "failed": 0,
        "progress": 0, "size": size, "options": json.dumps(options.__dict__),
        "created_at": int(now)})
    pipe.expire(keys.import_job(import_id), 30 * 86_400)
    pipe.zadd(keys.imports_due, {import_id: now + config.outbox_grace_seconds})
    pipe.execute()
    return import_id


def release_upload(store: Store, import_id: str) -> None:
    """Drop a job's file, its share of the upload quota and its place in the schedule."""
    keys = store.keys
    store.run("quota_take", keys=[keys.import_bytes], args=[0, 0, import_id])
    pipe = store.r.pipeline(transaction=True)
    pipe.delete(keys.import_file(import_id))
    pipe.zrem(keys.imports_due, import_id)
    pipe.execute()


def claim_due_jobs(store: Store, config: Config, now: float | None = None,
                   limit: int = 50) -> list[str]:
    """The imports due now (queued and not yet run, or whose run stopped renewing its
    lease), each taken by one caller and leased ``import_lease_seconds`` in the schedule."""
    now = time.time() if now is None else now
    return store.run("claim_due", keys=[store.keys.imports_due, ""],
                     args=[now, limit, int(now), config.import_lease_seconds])


def claim_job(store: Store, config: Config, import_id: str, now: float | None = None) -> bool:
    """Take a job to run: a queued one, or a running one whose lease expired (its worker
    died: the redelivered task runs it again, the same dedup making that safe). True when
    this caller holds it now, with a lease of ``import_lease_seconds`` that the run renews
    with every batch's progress."""
    import redis

    now = time.time() if now is None else now
    job_key = store.keys.import_job(import_id)
    with store.r.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(job_key)
            status, lease_until = pipe.hmget(job_key, "status", "lease_until")
            if status != "queued" and not (status == "running"
                                           and float(lease_until or 0) <= now):
                pipe.unwatch()
                return False
            pipe.multi()
            pipe.hset(job_key, mapping={"status": "running", "started_at": int(now),
                                        "lease_until": now + config.import_lease_seconds})
            pipe.hincrby(job_key, "runs", 1)
            pipe.execute()
        except redis.WatchError:
            return False  # another worker changed it first
    return True


def lease_left(store: Store, import_id: str, now: float | None = None) -> float:
    """Seconds until a running job's lease expires (0: not running, or expired)."""
    now = time.time() if now is None else now
    status, lease_until = store.r.hmget(store.keys.import_job(import_id), "status", "lease_until")
    return max(0.0, float(lease_until or 0) - now) if status == "running" else 0.0


def run_job(store: Store, config: Config, import_id: str) -> dict[str, Any]:
    """Run a queued import, or rerun one whose worker died (``claim_job``); a job another
    worker is running, or that is finished, is left alone. Idempotent.

    A store error is raised (the task retries; the lease is given back when the store
    answers, else it lapses and the beat reruns the job); any other failure marks the job
    ``failed`` with the reason: no job stays ``running``."""
    import json

    import redis

    keys = store.keys
    job_key = keys.import_job(import_id)
    if not claim_job(store, config, import_id):
        job = get_job(store, import_id)
        if job["status"] in ("done", "failed"):
            release_upload(store, import_id)
        else:  # held by a live run: the beat looks again when its lease would lapse
            store.r.zadd(keys.imports_due, {import_id: time.time() + lease_left(store, import_id)
                                            + 1}, xx=True)
        return job
    errors_key = keys.import_errors(import_id)
    try:
        options = Options(**json.loads(store.r.hget(job_key, "options") or "{}"))
        stored = store.r.get(keys.import_file(import_id))
        content = base64.b64decode(stored) if stored else b""
        store.r.delete(errors_key)
        size = max(1, len(content or b""))
        raw = _Counting(content or b"")

        def progress(report: Report) -> None:
            # the heartbeat rides on the progress write: the lease is renewed with every batch
            lease_until = time.time() + config.import_lease_seconds
            store.r.hset(job_key, mapping={**report.as_dict(),
                                           "progress": round(min(raw.read_bytes / size, 1.0), 4),
                                           "lease_until": lease_until})
            # the beat's schedule follows the lease: it reruns the job only once it lapses
            store.r.zadd(keys.imports_due, {import_id: lease_until}, xx=True)

        def error(line: int, reason: str, name: str) -> None:
            store.r.rpush(errors_key, json.dumps([line, reason, name]))

        try:
            report = run_import(store, config, raw, options, on_progress=progress,
                                on_error=error, max_errors=0)
        except (NotCsv, Invalid) as exc:
            store.r.hset(job_key, mapping={"status": "failed", "error": str(exc), "progress": 1})
        else:
            store.r.hset(job_key, mapping={**report.as_dict(), "status": "done", "progress": 1})
    except (redis.ConnectionError, redis.TimeoutError):
        with contextlib.suppress(redis.RedisError):  # give the lease back for the retry
            store.r.hset(job_key, mapping={"status": "queued", "lease_until": 0})
        raise
    except Exception as exc:
        log.exception("import %s failed", import_id)
        store.r.hset(job_key, mapping={"status": "failed", "progress": 1,
                                       "error": f"{type(exc).__name__}: {exc}"[:500]})
    store.r.expire(errors_key, 30 * 86_400)
    release_upload(store, import_id)
    return get_job(store, import_id)


class _Counting(io.BytesIO):
    @property
    def read_bytes(self) -> int:
        return self.tell()


def get_job(store: Store, import_id: str, base_url: str = "") -> dict[str, Any]:
    from outreach.platform.paging import existing_hash

    h = existing_hash(store, store.keys.import_job(import_id), "import", import_id)
    out: dict[str, Any] = {"id": import_id, "status": h["status"]}
    for name in ("rows", "created", "updated", "unchanged", "failed"):
        out[name] = int(h.get(name) or 0)
    out["progress"] = float(h.get("progress") or 0)
    out["error"] = h.get("error")
    out["errors_url"] = f"{base_url.rstrip('/')}/api/v1/imports/{import_id}/errors.csv"
    return out


def job_errors(store: Store, import_id: str) -> Iterator[list[Any]]:
    import json

    from outreach.platform.paging import existing_hash

    existing_hash(store, store.keys.import_job(import_id), "import", import_id)
    key = store.keys.import_errors(import_id)
    start = 0
    while True:
        chunk = store.r.lrange(key, start, start + 999)
        if not chunk:
            return
        for raw in chunk:
            yield json.loads(raw)
        start += len(chunk)
