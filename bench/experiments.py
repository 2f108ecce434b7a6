"""A/B experiments at size: the report at a 1M-recipient campaign, and the decision plus the
start of the rest phase at 100k recipients.

1. ``GET /api/v1/campaigns/<id>/report`` and ``GET .../experiment`` of a sent campaign of
   1,000,000 recipients with a three-variant experiment: the counters the send and event
   scripts keep (stats, 20 links, 30 days of hours, 2,000 receiving domains, the variants)
   are seeded directly in Redis (a report never scans, so no ledger is needed); server time
   in process (Flask test client over real Redis), median and p95, with ``GET
   /api/v1/campaigns/<id>`` of the same campaign as the reference of the same run.
2. 100,000 leads ingested (the product's ingest service, in batches as the worker does); a
   campaign with an experiment (test share 20 %, two variants, ``decide_after`` PT2S)
   launched; the test phase dispatched through the product's dispatch (one page after
   another, as senders free the window) and its 20 % marked sent with B's clicks clearly
   ahead (counters seeded as the scripts keep them). At ``decide_after`` the beat's drain
   (``decision.drain``) decides, and the dispatch nudged by the decision queues the first
   window of rest batches: the time from ``decide_after`` to those batches being queued is
   what a sender waits (plus the beat's interval, 1 s). Reference of the same run: the
   test phase's first dispatch window.

    .venv/bin/python bench/experiments.py [--recipients 1000000] [--leads 100000]

Runs its own redis-server (a free port, no persistence, a temporary directory); stopped at
the end.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_note  # noqa: E402
from _redis import private_server  # noqa: E402


def _timed(client: Any, path: str, headers: dict[str, str], requests: int) -> tuple[float, float]:
    for _ in range(5):
        assert client.get(path, headers=headers).status_code == 200, path
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, path
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def report_at_size(app: Any, recipients: int, requests: int) -> list[tuple[str, float, float]]:
    from outreach.campaigns import model
    from outreach.campaigns.templates import create_template
    from outreach.people.lists import create_list_pair
    from outreach.platform.apikeys import create_api_key

    store, config = app.extensions["outreach.store"], app.extensions["outreach.config"]
    keys = store.keys
    tpl = create_template(store, config, {"name": "bench", "subject": "Hi", "html": "<p>Hi</p>",
                                          "text": "Hi"})
    list_id = create_list_pair(store, "bench report", "lead")["id"]
    made = model.create_campaign(store, config, {
        "name": "1M", "template_id": tpl["id"], "list_ids": [list_id],
        "experiment": {"variants": [{}, {"subject": "B"}, {"subject": "C"}], "test_share": 0.2,
                       "metric": "clicks", "decide_after": "PT4H", "confidence": 0.95}})
    cid = made["id"]
    now = int(time.time())
    opened, clicked = recipients // 4, recipients // 25
    pipe = store.r.pipeline(transaction=False)
    pipe.hset(keys.campaign(cid), mapping={
        "status": "sent", "targeted": recipients, "sent": recipients, "opened": opened,
        "opened_machine": recipients // 10, "clicked": clicked, "unsubscribed": 900,
        "bounced": 4000, "complained": 30, "started_at": now - 86400, "finished_at": now - 3600,
        "dispatched": "1", "x_status": "decided", "x_phase": "rest", "x_winner": "B",
        "x_rest": "B", "x_decided_at": now - 72000, "x_decided_by": "test"})
    report: dict[str, int] = {}
    for n in range(20):
        link_id = f"{n:012x}"
        pipe.hset(keys.campaign_links(cid), link_id, f"https://example.com/page/{n}")
        report[f"l|{link_id}|c"] = clicked // (n + 2)
        report[f"l|{link_id}|u"] = clicked // (n + 3)
    hourly = {}
    for h in range(30 * 24):
        hour = (now - 86400 * 30) // 3600 * 3600 + 3600 * h
        hourly[f"{hour}|o"] = 300 + h
        hourly[f"{hour}|c"] = 40 + h % 7
    pipe.hset(keys.campaign_hourly(cid), mapping=hourly)
    domains = {f"domain{d}.example": recipients // 2000 + d for d in range(2000)}
    pipe.zadd(keys.campaign_domains(cid), domains)
    for d in domains:
        report[f"d|{d}|b"], report[f"d|{d}|o"], report[f"d|{d}|c"] = 2, 120, 20
    test = recipients // 5
    for name, rate in (("A", 0.030), ("B", 0.045), ("C", 0.031)):
        sent = test // 3 + (recipients - test if name == "B" else 0)
        report[f"v|{name}|s"], report[f"v|{name}|o"] = sent, int(sent * 0.25)
        report[f"v|{name}|c"] = int(sent * rate)
    pipe.hset(keys.campaign_report(cid), mapping=report)
    pipe.execute()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {create_api_key(store, 'bench')}"}
    return [(label, *_timed(client, path, headers, requests)) for label, path in (
        ("GET campaign (reference)", f"/api/v1/campaigns/{cid}"),
        ("GET report", f"/api/v1/campaigns/{cid}/report"),
        ("GET experiment", f"/api/v1/campaigns/{cid}/experiment"))]


def _ingest(store: Any, config: Any, leads: int) -> float:
    from outreach.people.ingest import apply_batch

    started = time.perf_counter()
    batch: list[tuple[str, dict[str, str]]] = []
    now_ms = int(time.time() * 1000)
    for i in range(leads):
        body = {"kind": "white_paper", "asset": "ab-paper", "email": f"lead{i}@company{i % 5000}.com",
                "first_name": f"First{i}", "consent": 1, "at": now_ms // 1000}
        batch.append((f"{now_ms}-{i}", {"d": json.dumps(body)}))
        if len(batch) == 500:
            apply_batch(store, config, batch)
            batch = []
    if batch:
        apply_batch(store, config, batch)
    return time.perf_counter() - started


def _dispatch_window(store: Any, config: Any, jobs: Any, cid: str) -> tuple[int, float]:
    """One dispatch call (the window of ``send_window_batches``): batches queued, seconds."""
    from outreach.campaigns import dispatch

    t0 = time.perf_counter()
    created = dispatch.dispatch(store, config, jobs, cid)
    return created, time.perf_counter() - t0


def _free_window(store: Any, cid: str) -> None:
    """What senders do when a batch is done: the batch leaves the window."""
    keys = store.keys
    batches = store.r.hkeys(keys.campaign_batches(cid))
    if batches:
        pipe = store.r.pipeline(transaction=False)
        for batch_no in batches:
            pipe.delete(keys.campaign_batch(cid, batch_no))
        pipe.delete(keys.campaign_batches(cid))
        pipe.execute()


def decision_at_size(app: Any, leads: int) -> dict[str, float]:
    from outreach.campaigns import lifecycle, model
    from outreach.campaigns.experiments import decision
    from outreach.campaigns.templates import create_template
    from outreach.platform.jobs import NoJobs

    store, config = app.extensions["outreach.store"], app.extensions["outreach.config"]
    keys = store.keys
    seeded = _ingest(store, config, leads)
    list_id = next(lid for lid in store.r.zrange(keys.lists, 0, -1)
                   if store.r.hget(keys.list(lid), "member_type") == "lead"
                   and store.r.zcard(keys.list_members(lid)) == leads)
    tpl = create_template(store, config, {"name": "ab", "subject": "Hi {{ first_name }}",
                                          "html": "<p>Hi</p>", "text": "Hi"})
    cid = model.create_campaign(store, config, {
        "name": "100k", "template_id": tpl["id"], "list_ids": [list_id],
        "experiment": {"variants": [{}, {"subject": "B"}], "test_share": 0.2,
                       "metric": "clicks", "decide_after": "PT2S", "confidence": 0.95}})["id"]
    jobs = NoJobs()
    lifecycle.launch(store, jobs, cid)
    started_at = float(store.r.hget(keys.campaign(cid), "started_at"))
    first_test_batches, first_test_window = _dispatch_window(store, config, jobs, cid)
    t0 = time.perf_counter()
    while not store.r.hget(keys.campaign(cid), "dispatched"):
        _free_window(store, cid)
        _dispatch_window(store, config, jobs, cid)
    test_walk = time.perf_counter() - t0 + first_test_window
    _free_window(store, cid)
    # the test share was sent; B's clicks clearly ahead (as finish_send / track_event count)
    ledger = store.r.hgetall(keys.campaign_ledger(cid))
    variants = store.r.hgetall(keys.campaign_variants(cid))
    pipe = store.r.pipeline(transaction=False)
    per = {"A": 0, "B": 0}
    for email, value in ledger.items():
        ref = value.split("|")[1]
        pipe.hset(keys.campaign_ledger(cid), email, f"S|{ref}|{int(started_at)}")
        per[variants[email]] += 1
    pipe.hset(keys.campaign(cid), "sent", len(ledger))
    pipe.hset(keys.campaign_report(cid), mapping={
        "v|A|s": per["A"], "v|A|c": per["A"] // 50, "v|B|s": per["B"], "v|B|c": per["B"] // 20})
    pipe.execute()
    tested = len(ledger)
    # the test phase took longer than decide_after here: the test starts again now, so the
    # decision is due in 1-2 s and the beat's drain finds it due (not the watch's look)
    started_at = float(int(time.time()))
    store.r.hset(keys.campaign(cid), "started_at", str(int(started_at)))
    due = started_at + 2
    decision.look(store, jobs, cid, store.r.hgetall(keys.campaign(cid)))  # the watch indexes it
    while time.time() < due:
        time.sleep(0.01)
    t_due = time.perf_counter()
    decided = decision.drain(store, config, jobs)
    t_decided = time.perf_counter()
    assert decided == 1 and store.r.hget(keys.campaign(cid), "x_winner") == "B"
    rest_batches, _ = _dispatch_window(store, config, jobs, cid)
    t_first_rest = time.perf_counter()
    assert rest_batches > 0
    while not store.r.hget(keys.campaign(cid), "dispatched"):
        _free_window(store, cid)
        _dispatch_window(store, config, jobs, cid)
    rest_walk = time.perf_counter() - t_decided
    targeted = int(store.r.hget(keys.campaign(cid), "targeted"))
    assert targeted == leads, (targeted, leads)
    return {"seeded_s": seeded, "tested": tested, "test_window_s": first_test_window,
            "first_test_batches": first_test_batches, "test_walk_s": test_walk,
            "decide_s": t_decided - t_due, "first_rest_s": t_first_rest - t_due,
            "rest_batches": rest_batches, "rest_walk_s": rest_walk}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()

    import outreach

    with private_server("bench-experiments-") as server:
        client = server.client()
        try:
            app = outreach.create_app({"redis_url": server.url,
                                       "key_prefix": "bench", "intake_rate_limit": "0",
                                       "secret_key": secrets.token_urlsafe(32)})
            pages = report_at_size(app, args.recipients, args.requests)
            decided = decision_at_size(app, args.leads)
        finally:
            client.close()
    print(load_note())
    print(f"1. {args.recipients:,}-recipient campaign, 3 variants ({args.requests} requests each)")
    print(f"   {'request':<26} {'median ms':>10} {'p95 ms':>8}")
    reference = pages[0][1]
    for name, med, p95 in pages:
        flag = "" if med <= 50 else "  over the 50 ms target"
        print(f"   {name:<26} {med:>10.2f} {p95:>8.2f}   {med / reference:.2f}x the reference{flag}")
    d = decided
    print(f"2. {args.leads:,} leads ingested in {d['seeded_s']:.1f} s; test share "
          f"{int(d['tested']):,} queued by {d['test_walk_s']:.2f} s of dispatch")
    print(f"   decision (beat drain: z-test, record, cursor reset)   {d['decide_s'] * 1000:8.1f} ms")
    print(f"   decide_after -> first rest window queued "
          f"({int(d['rest_batches'])} batches)   {d['first_rest_s'] * 1000:8.1f} ms"
          f"   (target 5 s; + the beat's 1 s interval at most)")
    print(f"   reference: the test phase's first window ({int(d['first_test_batches'])} batches) "
          f"{d['test_window_s'] * 1000:8.1f} ms -> ratio "
          f"{d['first_rest_s'] / d['test_window_s']:.2f}")
    print(f"   the whole rest phase walked (80 % queued, the test share skipped by the ledger) "
          f"in {d['rest_walk_s']:.2f} s")


if __name__ == "__main__":
    main()
