"""CSV import throughput, end to end through the CLI, against the ingest benchmark's rate.

Reference (same run, same machine): bench/ingest.py's measure, a real ``outreach worker -c 2``
draining M registrations from the intake stream (registrations/s).
Ours: a CSV file of N rows (20% repeats of an earlier address in another spelling, as the
ingest benchmark's registrations) imported with ``outreach import leads FILE --asset ...``
as a child process: rows/s from start to exit, and the child's peak RSS (VmHWM, polled).
The store is checked afterwards (leads == distinct addresses, every row counted).

Run: .venv/bin/python bench/import.py [--rows 1000000] [--registrations 50000] [--rounds 1]
Both run on a private redis-server of this benchmark (free port, no persistence; db 0 for
the import, db 1 for the reference's store and broker), so that no other benchmark's
FLUSHDB can touch them and both meet the same server.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ingest as ingest_bench
from _common import (
    COMPANIES,
    COUNTRIES,
    FIRST_NAMES,
    JOB_TITLES,
    KEY_PREFIX,
    LAST_NAMES,
    VENV_BIN,
    fmt_rate,
    header,
    load_note,
    make_registrations,
    median,
)
from _redis import RedisServer

from outreach.store import connect

DB, REF_DB = 0, 1
TARGET = 0.8
RSS_LIMIT_MB = 150


def write_csv(path: Path, rows: int, duplicates: float, seed: int = 11) -> int:
    """A CSV as a trade-show export looks: BOM, spelled-out headers, 20% repeats."""
    rng = random.Random(seed)
    seen: list[str] = []
    with open(path, "w", newline="", encoding="utf-8-sig") as out:
        writer = csv.writer(out)
        writer.writerow(["E-mail", "First Name", "Last Name", "Company", "Job Title", "Country",
                         "Opt In"])
        for n in range(rows):
            if seen and rng.random() < duplicates:
                email = rng.choice(seen).upper()
            else:
                email = f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}.{n}@example.com".lower()
                seen.append(email)
            writer.writerow([email, rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES),
                             rng.choice(COMPANIES), rng.choice(JOB_TITLES), rng.choice(COUNTRIES),
                             "yes" if rng.random() < 0.8 else "no"])
    return len(seen)


def run_import(path: Path, logdir: str, url: str) -> tuple[float, float, str]:
    """Seconds, peak RSS (MB) of the importing process, and its summary line."""
    env = {**os.environ, "OUTREACH_REDIS_URL": url, "OUTREACH_KEY_PREFIX": KEY_PREFIX}
    log = Path(logdir) / "import.log"
    with open(log, "wb") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [str(VENV_BIN / "outreach"), "import", "leads", str(path), "--asset", "expo-2026",
             "--kind", "event", "--source", "trade_show", "--consent", "column:Opt In"],
            env=env, stdout=out, stderr=subprocess.DEVNULL, start_new_session=True)
        # the child's own high-water mark (VmHWM: since its exec). wait4's ru_maxrss would
        # also count this big parent's pages copied into the child before exec.
        peak_kb = 0
        while proc.poll() is None:
            peak_kb = max(peak_kb, _vm_hwm_kb(proc.pid))
            time.sleep(0.1)
        elapsed = time.monotonic() - t0
    text = log.read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"import exited {proc.returncode}: {text[-2000:]}")
    return elapsed, peak_kb / 1024, text.strip().splitlines()[0]


def _vm_hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--registrations", type=int, default=50_000, help="ingest reference")
    parser.add_argument("--duplicates", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=1)
    # what bench/ingest.py's run_ingest reads from its arguments
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--max-foreign", type=float, default=0.5)
    parser.add_argument("--quiet-timeout", type=float, default=60.0)
    parser.add_argument("--loglevel", default="WARNING")
    args = parser.parse_args()

    header(f"import: CSV rows/s through `outreach import` vs ingest registrations/s "
           f"(target >= {TARGET}x, <= {RSS_LIMIT_MB} MB RSS)")
    print(f"# setup: {args.rows:,} CSV rows ({args.duplicates:.0%} repeats), private "
          f"redis-server db {DB}; reference: bench/ingest.py run_ingest, "
          f"{args.registrations:,} registrations, outreach worker -c {args.concurrency}, "
          f"same server db {REF_DB}")
    payloads = make_registrations(args.registrations, args.duplicates)
    distinct_regs = len({str(p["email"]).lower() for p in payloads})
    ratios, rates, refs, rss = [], [], [], []
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        path = Path(tmp) / "leads.csv"
        distinct = write_csv(path, args.rows, args.duplicates)
        size_mb = path.stat().st_size / 1e6
        print(f"# file: {size_mb:.0f} MB, {distinct:,} distinct addresses")
        server = RedisServer(Path(tmp) / "redis").start()
        url = f"redis://127.0.0.1:{server.port}"
        # the reference's worker, broker and store on the same private server
        ingest_bench.redis_url = lambda _db: f"{url}/{REF_DB}"
        store = connect(f"{url}/{DB}", KEY_PREFIX)
        for round_no in range(1, args.rounds + 1):
            ref_store = connect(f"{url}/{REF_DB}", KEY_PREFIX)
            ref_store.r.flushdb()
            app = ingest_bench.client_app()
            ref, check, foreign = ingest_bench.run_ingest(
                app, ref_store, payloads, distinct_regs, args, tmp, 1)
            app.close()
            ref_store.r.flushdb(asynchronous=True)
            store.r.flushdb(asynchronous=True)
            seconds, peak, summary = run_import(path, tmp, f"{url}/{DB}")
            leads = store.r.hlen(store.keys.lead_by_email)
            members = store.r.zcard(store.keys.list_members("ls1"))
            store.r.flushdb(asynchronous=True)  # millions of keys: not within a socket timeout
            rate = args.rows / seconds
            consistent = leads == distinct and members == distinct
            ok = ok and consistent and "MISMATCH" not in check
            ratios.append(rate / ref)
            rates.append(rate)
            refs.append(ref)
            rss.append(peak)
            print(f"round {round_no}: ingest {fmt_rate(ref)} regs/s ({check}); import "
                  f"{fmt_rate(rate)} rows/s ({seconds:.1f}s), peak RSS {peak:.0f} MB, ratio "
                  f"{rate / ref:.2f}x; {leads:,} leads, {members:,} list members"
                  f"{'' if consistent else '  MISMATCH'}; CLI: {summary}", flush=True)
        server.kill()
    print(f"# end: {load_note()}")
    ratio = median(ratios)
    print()
    print(f"reference: outreach ingest     {fmt_rate(median(refs))} registrations/s (median)")
    print(f"ours:      outreach import     {fmt_rate(median(rates))} rows/s (median), "
          f"peak RSS {max(rss):.0f} MB")
    print(f"RATIO import/ingest = {ratio:.2f}x (target >= {TARGET}x) -> "
          f"{'MET' if ratio >= TARGET else 'MISSED'}; RSS {max(rss):.0f} MB "
          f"(target <= {RSS_LIMIT_MB} MB) -> {'MET' if max(rss) <= RSS_LIMIT_MB else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
