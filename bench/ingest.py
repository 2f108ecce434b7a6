"""Ingest throughput: registrations deduplicated into lists per second, against Celery no-ops.

Reference: a Celery worker (``celery -A bench.noop_app``, outreach's own Celery settings,
prefork, concurrency 2, same broker) consumes N no-op messages, one per registration.
Ours: a real ``outreach worker -c 2`` drains M registrations (20% of them repeats from a
known address in another spelling) that were put in the intake stream with the product's
intake Lua; one ``outreach.ingest.drain`` task is sent and the clock stops when the
registrations hash holds M results. Prints both rates and the ratio (target >= 20x).

Run: .venv/bin/python bench/ingest.py [--noop 3000] [--registrations 50000] [--rounds 1]
Redis db 13 is used (and flushed) for both the broker and the store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import (
    BENCH_DBS,
    KEY_PREFIX,
    ROOT,
    VENV_BIN,
    CpuWatch,
    fill_stream,
    fmt_rate,
    header,
    load_note,
    make_registrations,
    median,
    own_db,
    redis_url,
    start,
    stop,
    wait_quiet,
)
from celery import Celery

from outreach.config import Config
from outreach.store import Store, connect
from tasks import celery_settings

DB = BENCH_DBS["ingest"]
TARGET = 20.0
QUEUE = "ingest"


def env() -> dict[str, str]:
    return {"OUTREACH_REDIS_URL": redis_url(DB), "OUTREACH_KEY_PREFIX": KEY_PREFIX}


def client_app() -> Celery:
    app = Celery("bench_client")
    app.config_from_object(celery_settings(Config.from_env(env())))
    return app


def wait_for(check: Callable[[], bool], timeout: float, what: str, poll: float = 0.005) -> float:
    """Poll ``check`` until it is true; returns the monotonic time it was first seen true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(poll)
    raise TimeoutError(f"{what}: not done after {timeout}s")


def queue_idle(store: Store) -> bool:
    """No message waiting in the ingest queue, none delivered and not yet acknowledged."""
    pipe = store.r.pipeline(transaction=False)
    pipe.llen(QUEUE)
    pipe.hlen("unacked")
    waiting, unacked = pipe.execute()
    return waiting == 0 and unacked == 0


def evalsha_usec(store: Store) -> int:
    """Server-wide time spent in EVALSHA so far (other clients of the server add to it)."""
    stats = store.r.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("usec", 0))


def wait_ready(app: Celery, proc_log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return
    raise TimeoutError("worker did not answer ping; log:\n" + proc_log.read_text()[-3000:])


def run_noop(
    app: Celery, store: Store, count: int, args: argparse.Namespace, logdir: str
) -> tuple[float, float, float]:
    """No-op messages/s, the share of the CPU other work took, worker CPU us per message."""
    log_path = Path(logdir) / "noop.log"
    with open(log_path, "wb") as log:
        proc = start(
            [str(VENV_BIN / "celery"), "-A", "bench.noop_app", "worker",
             "-c", str(args.concurrency), "-Q", "ingest,send,default", "-l", args.loglevel,
             "-n", "bench-noop@%h"],
            env=env(), log=log, cwd=ROOT,  # bench.noop_app is found from the checkout
        )
        try:
            wait_ready(app, log_path)
            for _ in range(200):  # warm up the pool processes and the connections
                app.send_task("bench.noop", queue=QUEUE)
            wait_for(lambda: queue_idle(store), 120, "warm-up no-ops")
            # stop consuming, queue everything, then time from consuming again to all acked
            if not app.control.cancel_consumer(QUEUE, reply=True, timeout=5):
                raise RuntimeError("worker did not confirm cancel_consumer")
            with app.producer_or_acquire() as producer:
                for _ in range(count):
                    app.send_task("bench.noop", queue=QUEUE, producer=producer)
            if store.r.llen(QUEUE) != count:
                raise RuntimeError(f"expected {count} queued no-ops, found {store.r.llen(QUEUE)}")
            wait_quiet(args.max_foreign / 2, proc.pid, timeout=args.quiet_timeout)
            watch = CpuWatch(proc.pid)
            t0 = time.monotonic()
            app.control.add_consumer(QUEUE, reply=True, timeout=5)
            t1 = wait_for(lambda: queue_idle(store), 600, "no-ops")
            foreign = watch.foreign_share()
            cpu_us = watch.groups_cpu() / count * 1e6
        finally:
            stop(proc)
    return count / (t1 - t0), foreign, cpu_us


def run_ingest(
    app: Celery, store: Store, payloads: list[dict[str, object]], distinct: int,
    args: argparse.Namespace, logdir: str, kicks: int, timings: dict[str, float] | None = None,
) -> tuple[float, str, float]:
    """Registrations/s, a note (consistency, CPU), and the share of the CPU other work took.
    ``timings``: filled with the seconds until every registration was in its lists
    (``lists``) and until every person was settled for the saved segments too (``settled``,
    what the rate is of)."""
    log_path = Path(logdir) / "outreach.log"
    total = len(payloads)
    metrics = store.keys.metrics
    with open(log_path, "wb") as log:
        proc = start(
            [str(VENV_BIN / "outreach"), "worker", "-c", str(args.concurrency),
             "-l", args.loglevel,
             "-n", "bench-outreach@%h"],
            env={**env(), "OUTREACH_INGEST_BATCH_SIZE": str(args.batch_size)}, log=log,
        )
        try:
            wait_ready(app, log_path)
            # the worker drains once on start (empty stream); let that finish first
            wait_for(lambda: queue_idle(store), 60, "start-up drain")
            fill_stream(store, payloads)
            wait_quiet(args.max_foreign / 2, proc.pid, timeout=args.quiet_timeout)
            watch = CpuWatch(proc.pid)
            lua_before = evalsha_usec(store)
            t0 = time.monotonic()
            for _ in range(kicks):
                app.send_task("outreach.ingest.drain", queue=QUEUE)
            t_lists = wait_for(
                lambda: int(store.r.hget(metrics, "registrations_processed") or 0) >= total,
                900, "ingest", poll=0.01)
            # with segments saved, done once every person changed is settled too (their
            # dirty marks, written by the ingest script, are gone): segments are current
            t1 = wait_for(lambda: store.r.scard(store.keys.segment_dirty) == 0, 900,
                          "segments settled", poll=0.01)
            lua = (evalsha_usec(store) - lua_before) / 1e6
            if timings is not None:
                timings.update(lists=t_lists - t0, settled=t1 - t0)
            foreign = watch.foreign_share()
            cpu_us = watch.groups_cpu() / total * 1e6
            wait_for(lambda: queue_idle(store), 60, "drain task end")
        finally:
            stop(proc)
    leads = store.r.hlen(store.keys.lead_by_email)
    left = store.r.xlen(store.keys.intake_stream)
    today = int(time.time() // 86_400)  # the results hashes of the run's days (one per UTC day)
    rejected = sum(1 for day in (today - 1, today)
                   for v in store.r.hvals(store.keys.registrations_of_day(day)) if v.startswith("x|"))
    check = (f"{leads} leads for {distinct} distinct addresses, {rejected} rejected, "
             f"{left} left in the stream; worker CPU {cpu_us:.0f} us/registration, "
             f"Redis in EVALSHA {lua:.1f}s of {t1 - t0:.1f}s (lists done at {t_lists - t0:.2f}s)")
    if leads != distinct or left or rejected:
        check += "  MISMATCH"
    return total / (t1 - t0), check, foreign


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noop", type=int, default=3000, help="no-op messages (reference)")
    parser.add_argument("--registrations", type=int, default=50_000)
    parser.add_argument("--duplicates", type=float, default=0.2, help="share of repeat addresses")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--kicks", type=int, default=1, help="drain tasks sent at once")
    parser.add_argument("--batch-size", type=int, default=Config().ingest_batch_size,
                        help="OUTREACH_INGEST_BATCH_SIZE for the worker")
    parser.add_argument("--max-foreign", type=float, default=0.1,
                        help="repeat a round when other processes took more of the CPU")
    parser.add_argument("--quiet-timeout", type=float, default=120.0,
                        help="seconds to wait for a quiet machine before each timing")
    parser.add_argument("--what-if", action="store_true",
                        help="also time two drain tasks sent at once (both pool processes)")
    parser.add_argument("--loglevel", default="INFO",
                        help="worker log level, both workers (outreach worker defaults to INFO)")
    args = parser.parse_args()

    header("ingest: registrations deduplicated into lists /s vs Celery no-op tasks (target >= 20x)")
    print(
        f"# setup: prefork -c {args.concurrency}, -l {args.loglevel}, broker+store Redis db {DB}; "
        f"{args.noop} no-ops vs {args.registrations} registrations "
        f"({args.duplicates:.0%} repeats), batch {args.batch_size}, {args.kicks} drain task(s)"
    )
    payloads = make_registrations(args.registrations, args.duplicates)
    distinct = len({str(p["email"]).lower() for p in payloads})
    app = client_app()
    store = connect(redis_url(DB), KEY_PREFIX)
    refs: list[float] = []
    ours: list[float] = []
    what_ifs: dict[str, list[tuple[float, float]]] = {}
    ok = True
    with own_db(DB) as client, tempfile.TemporaryDirectory(prefix="bench-ingest-") as logdir:
        round_no = attempts = 0
        while round_no < args.rounds and attempts < args.rounds * 3:
            attempts += 1
            client.flushdb()
            ref, ref_foreign, ref_cpu = run_noop(app, store, args.noop, args, logdir)
            client.flushdb()
            rate, check, foreign = run_ingest(
                app, store, payloads, distinct, args, logdir, args.kicks
            )
            ok = ok and "MISMATCH" not in check
            note = f"foreign CPU {ref_foreign:.0%} / {foreign:.0%}"
            if max(ref_foreign, foreign) > args.max_foreign:
                print(f"(disturbed by other work on the machine, {note}: "
                      f"no-op {fmt_rate(ref)}/s, ingest {fmt_rate(rate)}/s; again)", flush=True)
                continue
            round_no += 1
            refs.append(ref)
            ours.append(rate)
            print(
                f"round {round_no}: no-op {fmt_rate(ref)} msg/s, ingest {fmt_rate(rate)} regs/s, "
                f"ratio {rate / ref:.1f}x (no-op worker CPU {ref_cpu:.0f} us/message; "
                f"{check}; {note})",
                flush=True,
            )
            if not args.what_if:
                continue
            # what-if: two drain tasks at once, i.e. both pool processes draining
            client.flushdb()
            rate, check, foreign = run_ingest(app, store, payloads, distinct, args, logdir, 2)
            ok = ok and "MISMATCH" not in check
            what_ifs.setdefault("2 drain tasks", []).append((rate, rate / ref))
            print(f"round {round_no}:   what-if 2 drain tasks: {fmt_rate(rate)} regs/s, "
                  f"ratio {rate / ref:.1f}x ({check}; foreign CPU {foreign:.0%})", flush=True)
        app.close()
    if not refs:
        print("every round was disturbed by other work on the machine", file=sys.stderr)
        return 1
    print(f"# end: {load_note()}")
    ratios = [o / r for o, r in zip(ours, refs, strict=True)]
    ratio = median(ratios)
    print()
    print(f"reference: Celery no-op tasks  {fmt_rate(median(refs))} msg/s (median)")
    print(f"ours:      outreach ingest     {fmt_rate(median(ours))} registrations/s (median)")
    for label, runs in what_ifs.items():
        print(f"what-if:   {label:<33} {fmt_rate(median([r for r, _ in runs]))} "
              f"registrations/s, {median([x for _, x in runs]):.1f}x "
              "(prototype, not the product)")
    print("per-round ratios: " + ", ".join(f"{r:.1f}x" for r in ratios))
    print(f"RATIO ingest/no-op = {ratio:.1f}x (target >= {TARGET:.0f}x) -> "
          f"{'MET' if ratio >= TARGET else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
