"""Worker memory while a 1M-recipient campaign is dispatched and sent (target: flat, < 200 MB RSS).

One lead list of ``--recipients`` consenting leads is written straight into Redis with
pipelined commands under the store's key names (``--audience apply`` uses the product's
ingest instead; slower). A campaign on it is created and launched through the marketer
API (Flask test client) and sent by a real ``outreach worker -c <concurrency>`` into
Postfix's smtp-sink. The RSS of the worker's main process and of each pool process is
read from /proc every ``--interval`` seconds, and Redis memory (the ledger) is watched.

The audience is dispatched page by page as batches finish (at most
``send_window_batches`` ahead of the senders), so the dispatch of the whole audience
takes as long as sending it; ``--max-seconds`` (default 600) stops the measurement
after that much sending; ``--max-seconds 0`` runs until the campaign is sent.

    .venv/bin/python bench/dispatch_memory.py [--recipients 1000000] [--max-seconds 600]

Redis database 12 (FLUSHDB before and after), key prefix ``bench``; smtp-sink on
127.0.0.1:2525 (started here when nothing listens there).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_note, own_db  # noqa: E402
from send_common import (  # noqa: E402
    SEND_DB,
    Api,
    RssSampler,
    create_audience,
    create_audience_direct,
    fmt_table,
    pss_mb,
    service_env,
    smtp_sink,
    worker,
)

MB = 1024 * 1024


def redis_used_mb(api: Api) -> float:
    return float(api.store.r.info("memory")["used_memory"]) / MB


def key_bytes(api: Api, key: str) -> int:
    return int(api.store.r.memory_usage(key, samples=0) or 0)


def slope_mb_per_min(series: list[tuple[float, float]]) -> float:
    """Least-squares slope of RSS over the second half of the run, MiB per minute."""
    half = series[len(series) // 2:]
    if len(half) < 3:
        return 0.0
    n = len(half)
    mean_t = sum(t for t, _ in half) / n
    mean_v = sum(v for _, v in half) / n
    var = sum((t - mean_t) ** 2 for t, _ in half)
    if not var:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in half) / var * 60


def run(recipients: int, concurrency: int, max_seconds: float, interval: float, audience: str,
        overrides: dict[str, str]) -> dict[str, Any]:
    env = service_env(**overrides)
    api = Api(env)
    keys = api.store.keys
    base_mb = redis_used_mb(api)
    if audience == "direct":
        made = create_audience_direct(api.store, recipients)
    else:
        made = create_audience(api.store, api.config, recipients, chunk=2000)
    audience_mb = redis_used_mb(api)
    print(f"audience: {recipients:,} leads ({audience}) in {made:.1f}s; Redis used_memory "
          f"{base_mb:.1f} -> {audience_mb:.1f} MiB "
          f"({(audience_mb - base_mb) * MB / recipients:,.0f} bytes/lead)", flush=True)
    campaign_id = api.create_campaign(api.lead_list())
    ledger = keys.campaign_ledger(campaign_id)
    out: dict[str, Any] = {"audience_mb": audience_mb}
    with worker(env, concurrency=concurrency) as w:
        sampler = RssSampler(w.pid)
        for _ in range(3):  # idle baseline
            sampler.sample()
            time.sleep(interval / 3)
        out["idle"] = {pid: series[-1][1] for pid, series in sampler.samples.items()}
        began = time.monotonic()
        api.launch(campaign_id)
        next_report = 30.0
        peak_redis = audience_mb
        while True:
            time.sleep(interval)
            sampler.sample()
            elapsed = time.monotonic() - began
            c = api.campaign(campaign_id)
            stats = c["stats"]
            if elapsed >= next_report:
                used = redis_used_mb(api)
                peak_redis = max(peak_redis, used)
                rss = " ".join(f"{pid}:{series[-1][1]:.1f}" for pid, series in sampler.samples.items())
                print(f"  t={elapsed:6.0f}s sent={stats['sent']:>9,} "
                      f"({stats['sent'] / elapsed:,.0f}/s) ledger={api.store.r.hlen(ledger):,} "
                      f"redis={used:,.1f} MiB rss(MiB) {rss}", flush=True)
                next_report += 30.0
            if c["status"] not in ("sending",) or stats["sent"] >= recipients:
                break
            if max_seconds and elapsed >= max_seconds:
                break
        elapsed = time.monotonic() - began
        c = api.campaign(campaign_id)
        out["pss"] = {pid: pss_mb(pid) for pid in sampler.samples}
        out.update(seconds=elapsed, stats=c["stats"], status=c["status"],
                   rows=sampler.rows(), samples=sampler.samples, main=w.pid)
        h = api.store.r.hgetall(keys.campaign(campaign_id))
        out["dispatched"] = bool(h.get("dispatched"))
        out["outstanding_batches"] = int(api.store.r.hlen(keys.campaign_batches(campaign_id)))
        entries = int(api.store.r.hlen(ledger))
        out["ledger_entries"] = entries
        out["ledger_bytes"] = key_bytes(api, ledger)
        out["redis_end_mb"] = redis_used_mb(api)
        out["redis_peak_mb"] = max(peak_redis, out["redis_end_mb"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes")
    parser.add_argument("--max-seconds", type=float, default=600,
                        help="stop measuring after this much sending (0: until sent)")
    parser.add_argument("--interval", type=float, default=1.0, help="RSS sampling period (s)")
    parser.add_argument("--audience", choices=("direct", "apply"), default="direct",
                        help="pipelined writes (fast) or the product's ingest apply_batch")
    parser.add_argument("--batch-size", type=int, help="OUTREACH_SEND_BATCH_SIZE for the worker")
    parser.add_argument("--window", type=int, help="OUTREACH_SEND_WINDOW_BATCHES for the worker")
    args = parser.parse_args(argv)
    overrides: dict[str, str] = {}
    if args.batch_size:
        overrides["OUTREACH_SEND_BATCH_SIZE"] = str(args.batch_size)
    if args.window:
        overrides["OUTREACH_SEND_WINDOW_BATCHES"] = str(args.window)

    print(f"# dispatch memory: {args.recipients:,}-recipient campaign | {os.cpu_count()} CPUs | "
          f"{load_note()}", flush=True)
    with own_db(SEND_DB), smtp_sink() as sink_note:
        print(f"# {sink_note}; Redis db {SEND_DB}, prefix bench; overrides {overrides or 'none'}",
              flush=True)
        out = run(args.recipients, args.concurrency, args.max_seconds, args.interval,
                  args.audience, overrides)
    stats = out["stats"]
    done = "the whole campaign" if stats["sent"] >= args.recipients else (
        f"the first {out['seconds']:.0f}s of sending (stopped by --max-seconds)")
    print(f"\nmeasured {done}: sent {stats['sent']:,} of {args.recipients:,} in {out['seconds']:.0f}s "
          f"({stats['sent'] / out['seconds']:,.0f}/s); status {out['status']}; audience fully "
          f"dispatched: {out['dispatched']}; batches outstanding {out['outstanding_batches']}; "
          f"failed {stats['failed']}, unknown {stats['unknown']}")
    rows = []
    for role, pid, first, peak, last, _span in out["rows"]:
        idle = out["idle"].get(pid)
        pss = out["pss"].get(pid)
        rows.append((role, pid, f"{idle:.1f}" if idle is not None else "-", f"{first:.1f}",
                     f"{peak:.1f}", f"{last:.1f}", f"{last - first:+.1f}",
                     f"{slope_mb_per_min(out['samples'][pid]):+.2f}",
                     f"{pss:.1f}" if pss is not None else "-"))
    print("RSS in MiB (idle = before the launch, start = first sample); PSS = the end RSS with "
          "pages shared since the fork split between the processes")
    print(fmt_table(("process", "pid", "idle", "start", "max", "end", "end-start",
                     "2nd-half slope MiB/min", "end PSS"), rows))
    total_peak = max(r[3] for r in out["rows"])
    worst = "meets" if total_peak < 200 else "misses"
    pss_total = sum(v for v in out["pss"].values() if v is not None)
    print(f"largest process RSS {total_peak:.1f} MiB ({worst} < 200 MB); sum of peak RSS "
          f"{sum(r[3] for r in out['rows']):.1f} MiB, sum of end PSS {pss_total:.1f} MiB")
    entries = out["ledger_entries"]
    print(f"Redis used_memory (server-wide, other dbs included): {out['audience_mb']:.1f} MiB "
          f"after the audience, peak {out['redis_peak_mb']:.1f}, "
          f"end {out['redis_end_mb']:.1f} MiB; ledger {entries:,} entries = "
          f"{out['ledger_bytes'] / MB:.1f} MiB "
          f"({out['ledger_bytes'] / max(1, entries):.0f} bytes/recipient, "
          f"≈ {out['ledger_bytes'] / max(1, entries) * args.recipients / MB:,.0f} MiB at "
          f"{args.recipients:,}) | {load_note()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
