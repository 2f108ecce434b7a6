"""Everything that grows has a bound (issue 18): memory before and after retention, the
conversion pass beside many qualified leads, retry-failed of many failures.

Three measurements, each on a private redis-server of its own (own port and directory,
killed at the end), so ``used_memory`` moves only with this run's writes:

``memory``: ``--leads`` registrations through the real path (the intake stream, the ingest
  script), then one campaign to every lead list sent in process by the product's dispatch
  and ``send_batch`` into a messenger that accepts everything (no SMTP: the bytes Redis keeps
  per recipient are the same), then ``run_retention`` as ``OUTREACH_CAMPAIGN_DETAIL_DAYS``
  later. Prints bytes per lead (``used_memory`` delta), per sent recipient before and after
  retention, and a reference measured in the same run: a plain hash of one short field per
  recipient (``email -> 'S'``), the least any per-recipient ledger could keep.
``conversion``: ``--leads`` leads, ``--qualified`` of them engaged and promoted by a first
  pass (timed: the reference), then ``--new`` more engaged; the second pass (timed) should
  cost per promoted lead what the first did, whatever the qualified leads already there;
  a pass with nothing to promote is timed too.
``retry``: a sent campaign whose ledger holds ``--failures`` failed recipients; the
  request (``retry_failed``: bounded) and the job (``requeue_failed``) are timed. Reference
  in the same run: HSCAN the same ledger and rewrite every failed entry with pipelined
  HSETs (the least work a retry must do).

    .venv/bin/python bench/bounds.py [--only memory,conversion,retry] [--leads 100000]
        [--qualified 50000] [--new 1000] [--failures 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import KEY_PREFIX, fill_stream, header, load_note, make_registrations  # noqa: E402
from _redis import private_server  # noqa: E402

DAY = 86_400
SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuv"


@contextlib.contextmanager
def service(**overrides: Any) -> Iterator[Any]:
    """The app on a private redis-server, jobs recorded (``NoJobs``), nothing published."""
    import outreach
    from outreach.platform.jobs import NoJobs

    with private_server("bench-bounds-") as server:
        app = outreach.create_app({
            "redis_url": server.url, "key_prefix": KEY_PREFIX, "broker_url": "memory://",
            "secret_key": SECRET, "base_url": "https://mail.example.com",
            "from_email": "news@outreach.example", "intake_rate_limit": "0",
            "intake_create_assets": "1", "send_batch_size": 500,
            "send_window_batches": 1_000_000, **overrides})
        app.extensions["outreach.jobs"] = NoJobs()
        app.server = server  # type: ignore[attr-defined]
        yield app


def used(app: Any) -> tuple[int, int]:
    """``used_memory`` (server-wide, but the server is ours) and the exact sum of ``MEMORY
    USAGE`` over every key (what the keys hold, without the allocator and the key table)."""
    from memory import per_family

    r = app.extensions["outreach.store"].r
    r.execute_command("MEMORY", "PURGE")
    time.sleep(0.2)
    keys = sum(size for _, size, _ in per_family(r).values())
    return int(r.info("memory")["used_memory"]), keys


def per(after: tuple[int, int], before: tuple[int, int], n: int) -> str:
    return (f"{(after[0] - before[0]) / n:,.0f} B (used_memory; "
            f"{(after[1] - before[1]) / n:,.0f} B in the keys themselves)")


class Accepts:
    """A messenger that takes every message (as a relay answering 250)."""

    def send(self, msg: Any, mail_from: str, rcpt_to: str, before_data: Any = None) -> str:
        if before_data is not None:
            before_data()
        return "250 2.0.0 Ok"


def pump(app: Any, messenger: Any) -> None:
    """Run the recorded dispatch, send and retry jobs until none is left."""
    from outreach.campaigns import dispatch, lifecycle
    from outreach.campaigns.sending.batch import send_batch

    store, config = app.extensions["outreach.store"], app.extensions["outreach.config"]
    jobs = app.extensions["outreach.jobs"]
    while jobs.calls:
        name, args = jobs.calls.pop(0)
        if name == "dispatch":
            dispatch.dispatch(store, config, jobs, str(args[0]))
        elif name == "send_batch":
            send_batch(store, config, messenger, jobs, str(args[0]), int(args[1]))
        elif name == "retry_failed":
            lifecycle.requeue_failed(store, jobs, str(args[0]), config.send_batch_size)


def api(app: Any) -> tuple[Any, dict[str, str]]:
    from outreach.platform.apikeys import create_api_key

    key = create_api_key(app.extensions["outreach.store"], "bench")
    return app.test_client(), {"Authorization": f"Bearer {key}"}


def measure_memory(leads: int) -> None:
    from outreach.campaigns import watch
    from outreach.campaigns.retention import run_retention
    from outreach.people.ingest import drain

    with service(campaign_detail_days=90) as app:
        store, config = app.extensions["outreach.store"], app.extensions["outreach.config"]
        client, auth = api(app)
        store.ensure_ingest_group()
        for script in store.scripts.values():  # loaded before the baseline, as memory.py does
            script.sha = store.r.script_load(script.script)
        start = used(app)
        fill_stream(store, make_registrations(leads, 0.0, seed=11))
        drain(store, config, "bench-bounds", time_budget=3600)
        with_leads = used(app)
        count = store.r.hlen(store.keys.lead_by_email)
        lists = [item["id"] for item in client.get("/api/v1/lists?limit=500",
                                                   headers=auth).get_json()["items"]
                 if item["member_type"] == "lead"]
        template = client.post("/api/v1/templates", headers=auth, json={
            "name": "t", "subject": "Hello {{ first_name }}",
            "html": '<p>Hi {{ first_name }}</p><a href="https://example.com/a">A</a>',
            "text": "Hi {{ first_name }}"}).get_json()["id"]
        campaign_id = client.post("/api/v1/campaigns", headers=auth, json={
            "name": "c", "template_id": template, "list_ids": lists}).get_json()["id"]
        before_send = used(app)
        t0 = time.perf_counter()
        assert client.post(f"/api/v1/campaigns/{campaign_id}/launch",
                           headers=auth).status_code == 200
        pump(app, Accepts())
        jobs = app.extensions["outreach.jobs"]
        watch.watch(store, config, jobs, campaign_id)
        jobs.calls.clear()
        sent_in = time.perf_counter() - t0
        shown = client.get(f"/api/v1/campaigns/{campaign_id}", headers=auth).get_json()
        assert shown["status"] == "sent", shown["status"]
        recipients = store.r.hlen(store.keys.campaign_ledger(campaign_id))
        sent = shown["stats"]["sent"]
        after_send = used(app)
        # the reference: the least a per-recipient ledger could keep, in the same server
        emails = store.r.hkeys(store.keys.campaign_ledger(campaign_id))
        ref_start = used(app)
        for i in range(0, len(emails), 1000):
            pipe = store.r.pipeline(transaction=False)
            pipe.hset("ref:ledger", mapping=dict.fromkeys(emails[i:i + 1000], "S"))
            pipe.execute()
        ref_end = used(app)
        reference = (ref_end[0] - ref_start[0]) / len(emails)
        store.r.delete("ref:ledger")
        compacted = run_retention(store, config, now=time.time() + 91 * DAY)
        assert [c["id"] for c in compacted] == [campaign_id]
        after_retention = used(app)
    print(f"leads: {count:,} in {len(lists)} lead lists: {per(with_leads, start, count)} per lead")
    print(f"campaign: {recipients:,} recipients ({sent:,} sent) in {sent_in:.1f} s in process")
    per_recipient = (after_send[0] - before_send[0]) / recipients
    print(f"per sent recipient before retention: {per(after_send, before_send, recipients)}; "
          f"reference, a hash of email -> 'S': {reference:,.0f} B; "
          f"ratio {per_recipient / reference:.2f}")
    print(f"per sent recipient after retention: {per(after_retention, before_send, recipients)} "
          f"(the campaign's stats and report stay)")
    print(f"per lead with the campaign compacted: {per(after_retention, start, count)}")


def measure_conversion(leads: int, qualified: int, new: int) -> None:
    import json

    from outreach.people.ingest import apply_batch
    from outreach.sales.qualify import run_conversion

    with service(promotion_threshold=20, score_repeat_registration=10,
                 score_event_after_white_paper=0) as app:
        store, config = app.extensions["outreach.store"], app.extensions["outreach.config"]
        seq = [1]

        def apply(rows: list[tuple[str, str, str]]) -> None:
            for start in range(0, len(rows), 500):
                chunk = rows[start:start + 500]
                entries = [(f"{seq[0] + i}-0", {"d": json.dumps({
                    "kind": kind, "asset": asset, "email": email, "consent": 1, "at": 1,
                    "company": f"Company {n % 5000}"})})
                    for i, (email, kind, asset) in enumerate(chunk)
                    for n in (int(email[4:email.index("@")]),)]
                apply_batch(store, config, entries)
                seq[0] += len(chunk)

        def engage(ids: range) -> None:
            apply([(f"lead{i}@company{i % 5000}.com", "event", f"event-{k}")
                   for i in ids for k in (0, 1)])

        t0 = time.perf_counter()
        apply([(f"lead{i}@company{i % 5000}.com", "white_paper", f"paper-{i % 20}")
               for i in range(leads)])
        engage(range(qualified))
        print(f"filled {leads:,} leads, {qualified:,} engaged, "
              f"in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        first = run_conversion(store, config)["promoted"]
        first_s = time.perf_counter() - t0
        assert first == qualified, (first, qualified)
        engage(range(qualified, qualified + new))
        t0 = time.perf_counter()
        second = run_conversion(store, config)["promoted"]
        second_s = time.perf_counter() - t0
        assert second == new, (second, new)
        t0 = time.perf_counter()
        idle = run_conversion(store, config)["promoted"]
        idle_s = time.perf_counter() - t0
        assert idle == 0
        still = store.r.zcard(store.keys.lead_candidates)
    print(f"first pass (reference): {first:,} promoted in {first_s:.2f} s = "
          f"{first / first_s:,.0f} leads/s")
    print(f"pass beside {qualified:,} qualified leads: {second:,} promoted in {second_s:.3f} s "
          f"= {second / second_s:,.0f} leads/s; ratio per lead to the first pass "
          f"{(first_s / first) / (second_s / second):.2f}")
    print(f"pass with nothing to promote ({qualified + new:,} qualified, {still:,} candidates "
          f"below the threshold): {idle_s * 1000:.1f} ms")


def measure_retry(failures: int) -> None:
    from outreach.campaigns import lifecycle

    with service() as app:
        store = app.extensions["outreach.store"]
        jobs = app.extensions["outreach.jobs"]
        keys = store.keys
        campaign_id = "cbench"
        now = str(int(time.time()))
        emails = [f"f{i}@example.com" for i in range(failures)]
        for i in range(0, failures, 2000):
            pipe = store.r.pipeline(transaction=False)
            pipe.hset(keys.campaign_ledger(campaign_id), mapping={
                email: f"f|l:ld{i + n}|{now}" for n, email in enumerate(emails[i:i + 2000])})
            pipe.hset(keys.campaign_errors(campaign_id), mapping=dict.fromkeys(
                emails[i:i + 2000], "550 5.1.1 No such user"))
            pipe.execute()
        store.r.hset(keys.campaign(campaign_id), mapping={
            "name": "c", "status": "sent", "failed": str(failures), "sent": "0",
            "finished_at": now, "list_ids": "[]"})
        store.r.zadd(keys.campaigns, {campaign_id: 1})
        t0 = time.perf_counter()
        asked = lifecycle.retry_failed(store, jobs, campaign_id)
        request_s = time.perf_counter() - t0
        assert asked["requeued"] == failures
        t0 = time.perf_counter()
        queued = lifecycle.requeue_failed(store, jobs, campaign_id, 500)
        job_s = time.perf_counter() - t0
        assert queued == failures, queued
        # the reference: read the ledger once and rewrite every failed entry, pipelined
        t0 = time.perf_counter()
        cursor = 0
        while True:
            cursor, chunk = store.r.hscan(keys.campaign_ledger(campaign_id), cursor, count=1000)
            pipe = store.r.pipeline(transaction=False)
            for email, value in chunk.items():
                pipe.hset("ref:ledger", email, "q" + value[1:])
            pipe.execute()
            if cursor == 0:
                break
        ref_s = time.perf_counter() - t0
    print(f"retry-failed request, {failures:,} failures: {request_s * 1000:.1f} ms (bounded)")
    print(f"the job (requeue_failed): {queued:,} queued again in {job_s:.2f} s = "
          f"{queued / job_s:,.0f} /s")
    print(f"reference (HSCAN + pipelined HSET per entry): {ref_s:.2f} s = "
          f"{failures / ref_s:,.0f} /s; ratio reference / job = {ref_s / job_s:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="memory,conversion,retry")
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--qualified", type=int, default=50_000)
    parser.add_argument("--new", type=int, default=1_000)
    parser.add_argument("--failures", type=int, default=100_000)
    args = parser.parse_args()
    header("bounds: memory before and after retention, conversion, retry-failed")
    only = set(args.only.split(","))
    if "memory" in only:
        measure_memory(args.leads)
        print(f"# {load_note()}")
    if "conversion" in only:
        measure_conversion(args.leads, args.qualified, args.new)
        print(f"# {load_note()}")
    if "retry" in only:
        measure_retry(args.failures)
        print(f"# {load_note()}")


if __name__ == "__main__":
    main()
