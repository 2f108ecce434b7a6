"""Conversion pass over 100k leads (10% engaged): time and Redis commands per promoted lead.

Reference, measured in the same run: the least work any conversion must do, written as
plainly as possible -- for each engaged lead, one pipelined HSET each for a contact, an
opportunity and the lead. The ratio says how close the real pass (account matching,
contact linking, list moves, indexes, atomic Lua per lead) comes to that floor.

    .venv/bin/python bench/conversion.py [--leads 100000] [--engaged 0.1]

Uses Redis database 11 only (FLUSHDB of that database before and after).
"""

from __future__ import annotations

import argparse
import json
import time

import redis

from outreach.config import Config
from outreach.people.ingest import apply_batch
from outreach.sales.qualify import run_conversion
from outreach.store import connect

URL = "redis://127.0.0.1:6379/11"


def _entries(start: int, rows: list[tuple[str, str, str, str]]) -> list[tuple[str, dict[str, str]]]:
    return [(f"{start + i}-0", {"d": json.dumps({"kind": kind, "asset": asset, "email": email,
                                               "company": company, "consent": 1, "at": 1})})
            for i, (email, kind, asset, company) in enumerate(rows)]


def fill(store, config: Config, leads: int, engaged_ratio: float) -> int:  # type: ignore[no-untyped-def]
    """``leads`` leads over 20 white papers; every 1/ratio-th also registers for 2 events."""
    engaged_every = max(1, round(1 / engaged_ratio))
    rows: list[tuple[str, str, str, str]] = []
    engaged = 0
    for i in range(leads):
        email, company = f"lead{i}@company{i % 5000}.com", f"Company {i % 5000}"
        rows.append((email, "white_paper", f"paper-{i % 20}", company))
        if i % engaged_every == 0:
            engaged += 1
            rows.append((email, "event", f"event-{i % 2}", company))
            rows.append((email, "event", f"event-{(i + 1) % 2}", company))
    seq = 1
    for start in range(0, len(rows), 500):
        chunk = rows[start:start + 500]
        apply_batch(store, config, _entries(seq, chunk))
        seq += len(chunk)
    return engaged


def commands(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if not k.endswith(("info", "config|get")))


def reference(client: redis.Redis, lead_ids: list[str]) -> float:
    start = time.perf_counter()
    for i in range(0, len(lead_ids), 500):
        pipe = client.pipeline(transaction=False)
        for lead_id in lead_ids[i:i + 500]:
            pipe.hset(f"ref:contact:{lead_id}", mapping={"email": "x", "lead_id": lead_id})
            pipe.hset(f"ref:opp:{lead_id}", mapping={"lead_id": lead_id, "status": "open"})
            pipe.hset(f"ref:lead:{lead_id}", mapping={"status": "qualified"})
        pipe.execute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--engaged", type=float, default=0.1)
    args = parser.parse_args()
    config = Config(redis_url=URL, key_prefix="bench", promotion_threshold=20,
                    score_repeat_registration=10, score_event_after_white_paper=0)
    store = connect(URL, "bench")
    store.r.flushdb()
    try:
        t0 = time.perf_counter()
        engaged = fill(store, config, args.leads, args.engaged)
        print(f"filled {args.leads} leads ({engaged} engaged, 44 lists) "
              f"in {time.perf_counter() - t0:.1f}s")
        store.r.config_resetstat()
        before = commands(store.r)
        t0 = time.perf_counter()
        result = run_conversion(store, config)
        elapsed = time.perf_counter() - t0
        used = commands(store.r) - before
        promoted = result["promoted"]
        assert promoted == engaged, (promoted, engaged)
        ids = store.r.zrange(store.keys.leads_by_status("qualified"), 0, -1)
        ref = reference(store.r, ids)
        print(f"conversion pass: {promoted} promoted in {elapsed:.2f}s "
              f"= {promoted / elapsed:,.0f} leads/s; "
              f"{used / promoted:.1f} Redis commands per promoted lead (Lua-internal included)")
        print(f"reference (3 pipelined HSETs per lead): {promoted / ref:,.0f} leads/s")
        print(f"ratio conversion / reference = {ref / elapsed:.2f}")
    finally:
        store.r.flushdb()


if __name__ == "__main__":
    main()
