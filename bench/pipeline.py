"""The pipeline report and a user's task list at 100,000 opportunities and 1,000,000
activities, on the real Redis (its own database), through the Flask app (server time of
each request measured in-process around the WSGI call).

Data is written in the format the services write (opportunity hashes with stage history,
activity hashes in their record's set, tasks in the open-task indexes) with pipelining,
then the pipeline aggregates are built once by ``pipeline_rebuild.lua`` (the path an
installation whose opportunities predate them takes), and 2,000 stage/status changes go
through the real ``opportunities.update_opportunity`` (``opp_write.lua``) so the aggregates are the
maintained ones. Redis memory per activity: ``used_memory`` before/after the activities.

Usage: python bench/pipeline.py [--opportunities 100000] [--activities 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import KEY_PREFIX, header, load_note, median, own_db, redis_url  # noqa: E402

DB = 10
OWNERS = [f"rep{n}@sales.example.com" for n in range(20)]
STAGES = ("qualify", "develop", "propose", "close")


def _fill(r, keys, opportunities: int, activities: int, rng: random.Random) -> dict[str, float]:
    now = int(time.time())
    pipe = r.pipeline(transaction=False)
    for n in range(1, opportunities + 1):
        opp_id = f"op{n}"
        status = rng.choices(("open", "won", "lost"), (70, 20, 10))[0]
        stage = rng.choices(STAGES, (85, 10, 4, 1))[0]  # most deals are early; "close" is rare
        owner = OWNERS[n % len(OWNERS)]
        h = {"topic": f"Deal {n}", "lead_id": f"ld{n}", "contact_id": f"ct{n}",
             "account_id": f"ac{n % 20000}", "estimated_revenue": repr(float(rng.randint(1, 500) * 100)),
             "estimated_close_date": f"2027-{rng.randint(1, 12):02d}-15",
             "probability": str(rng.randint(0, 100)), "status": status, "stage": stage,
             "stages": json.dumps([{"stage": "qualify", "at": now, "by": owner}]),
             "owner": owner, "created_at": str(now), "updated_at": str(now)}
        if status == "lost":
            h["lost_reason"] = rng.choice(("outsold", "cancelled", "no_decision", "price", "other"))
        pipe.hset(keys.opportunity(opp_id), mapping=h)
        pipe.zadd(keys.opportunities, {opp_id: n})
        pipe.zadd(keys.opportunities_by_status(status), {opp_id: n})
        pipe.zadd(keys.opportunities_by_owner(owner), {opp_id: n})
        if status == "open":
            pipe.zadd(keys.open_opportunities_by_stage(stage), {opp_id: n})
        if n % 5000 == 0:
            pipe.execute()
    pipe.execute()
    before = int(r.info("memory")["used_memory"])
    t0 = time.perf_counter()
    for n in range(1, activities + 1):
        act_id = f"av{n}"
        opp = rng.randint(1, opportunities)
        ref = f"opportunity:op{opp}"
        at = now - rng.randint(0, 365 * 86400)
        kind = rng.choices(("note", "call", "meeting", "email", "task"), (30, 30, 15, 15, 10))[0]
        h = {"type": kind, "subject": f"{kind} about deal {opp}",
             "body": "Discussed seats, pricing and the timeline for the decision.",
             "at": repr(float(at)), "by": OWNERS[opp % len(OWNERS)], "refs": ref,
             "created_at": str(at), "updated_at": str(at)}
        pipe.hset(keys.activity(act_id), mapping=h)
        pipe.zadd(keys.record_activities(ref), {act_id: at})
        if kind == "task":
            owner = OWNERS[n % len(OWNERS)]
            due = now + rng.randint(-30 * 86400, 60 * 86400)
            pipe.hset(keys.activity(act_id), mapping={"due_at": repr(float(due)), "owner": owner,
                                                      "status": "open"})
            pipe.zadd(keys.tasks_open(), {act_id: due})
            pipe.zadd(keys.tasks_open(owner), {act_id: due})
            pipe.zadd(keys.task_reminders, {act_id: due})
        if n % 5000 == 0:
            pipe.execute()
    pipe.execute()
    fill_s = time.perf_counter() - t0
    after = int(r.info("memory")["used_memory"])
    return {"bytes_per_activity": (after - before) / activities, "activity_fill_s": fill_s}


def _server_ms(client, path: str, headers: dict[str, str], runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, response.get_json()
    times.sort()
    return median(times), times[int(len(times) * 0.95) - 1]


def _console_client(app, email: str, password: str):  # type: ignore[no-untyped-def]
    """A test client signed in to the console as ``email``."""
    import re

    client = app.test_client()
    page = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    signed_in = client.post("/console/login", data={"email": email, "password": password,
                                                    "csrf_token": token})
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)[:300]
    return client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    os.environ.update({"OUTREACH_REDIS_URL": redis_url(DB), "OUTREACH_KEY_PREFIX": KEY_PREFIX,
                       "OUTREACH_SECRET_KEY": "bench-secret-" + "x" * 32})
    import outreach
    from outreach.platform.apikeys import create_api_key
    from outreach.platform.users import create_user
    from outreach.sales import opportunities
    from outreach.sales.pipeline import REBUILD_CHUNK

    header(f"pipeline and tasks: {args.opportunities:,} opportunities, "
           f"{args.activities:,} activities")
    print(load_note())
    rng = random.Random(7)
    with own_db(DB) as r:
        app = outreach.create_app()
        store = app.extensions["outreach.store"]
        keys = store.keys
        filled = _fill(r, keys, args.opportunities, args.activities, rng)
        held = r.zcard(keys.opportunities)
        assert held == args.opportunities, f"only {held} opportunities in db {DB}: flushed?"
        t0 = time.perf_counter()
        while not store.run("pipeline_rebuild", args=[keys.tag, REBUILD_CHUNK]):
            pass
        rebuild_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(2000):
            opp_id = f"op{rng.randint(1, args.opportunities)}"
            change = rng.choice([{"stage": rng.choice(STAGES)},
                                 {"status": "lost", "lost_reason": "price"},
                                 {"status": "won"}, {"status": "open"}])
            opportunities.update_opportunity(store, opp_id, change, by="bench")
        write_ms = (time.perf_counter() - t0) / 2000 * 1000
        create_user(store, OWNERS[3], "sales", "bench-password-1")
        auth = {"Authorization": f"Bearer {create_api_key(store, 'bench', user=OWNERS[3])}"}
        client = app.test_client()
        pipeline_med, pipeline_p95 = _server_ms(client, "/api/v1/pipeline", auth, args.runs)
        tasks_med, tasks_p95 = _server_ms(client, "/api/v1/tasks?owner=me&status=open", auth,
                                          args.runs)
        cutoff = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time()))
        overdue_med, _ = _server_ms(client, f"/api/v1/tasks?owner=me&due_before={cutoff}", auth,
                                    args.runs)
        opps_med, _ = _server_ms(client, "/api/v1/opportunities?owner=me&limit=50", auth, args.runs)
        timeline_med, _ = _server_ms(client, "/api/v1/opportunities/op77/timeline", auth, args.runs)
        console = _console_client(app, OWNERS[3], "bench-password-1")
        board_med, board_p95 = _server_ms(console, "/console/pipeline", {}, args.runs)
        my_tasks_med, my_tasks_p95 = _server_ms(console, "/console/tasks", {}, args.runs)
        report = client.get("/api/v1/pipeline", headers=auth).get_json()
        rebuilt_check = dict(report)
        r.delete(keys.pipeline)
        assert client.get("/api/v1/pipeline", headers=auth).get_json() == rebuilt_check, \
            "maintained aggregates differ from a rebuild"
        open_tasks = r.zcard(keys.tasks_open(OWNERS[3]))
    print(f"open opportunities by stage: {[s['count'] for s in report['stages']]}, "
          f"won {report['won']['count']}, lost {report['lost']['count']}")
    print(f"GET /api/v1/pipeline                 median {pipeline_med:6.2f} ms  p95 {pipeline_p95:6.2f} ms")
    print(f"GET /api/v1/tasks?owner=me (of {open_tasks} open) median {tasks_med:6.2f} ms  "
          f"p95 {tasks_p95:6.2f} ms")
    print(f"GET /api/v1/tasks?owner=me&due_before=now median {overdue_med:6.2f} ms")
    print(f"GET /api/v1/opportunities?owner=me   median {opps_med:6.2f} ms")
    print(f"GET /api/v1/opportunities/<id>/timeline median {timeline_med:6.2f} ms")
    print(f"GET /console/pipeline (stage columns) median {board_med:6.2f} ms  p95 {board_p95:6.2f} ms")
    print(f"GET /console/tasks (my tasks)        median {my_tasks_med:6.2f} ms  p95 {my_tasks_p95:6.2f} ms")
    print(f"PATCH opportunity (opp_write.lua, aggregates kept): {write_ms:.2f} ms each")
    print(f"aggregates built from scratch (pipeline_rebuild.lua): {rebuild_s:.2f} s "
          f"(maintained == rebuilt: yes)")
    print(f"Redis memory per activity: {filled['bytes_per_activity']:.0f} B "
          f"(10 % tasks, 60-byte bodies; filled in {filled['activity_fill_s']:.0f} s)")


if __name__ == "__main__":
    main()
