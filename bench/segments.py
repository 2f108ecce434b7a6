"""Segments: membership lag under changes, preview against a full scan, size and first page at
1M members, memory per membership, and the ingest ratio with 20 segments saved.

Each part prints its figure and, where DESIGN.md names one, the ratio against a reference
measured in the same run:

- lag: 20 saved (built) segments over --people leads; edits (country, company) and human
  opens of a campaign, paced at --rate changes/s for --seconds from --processes processes
  (as API and tracking workers) of --threads threads; a change's lag is from the moment it
  was due to be made to the moment its person's segments are settled (the API and tracking
  paths re-evaluate in the request), so a backlog counts. Afterwards every
  changed person is checked against a brute-force evaluation of all 20 segments (0 wrong).
- preview: --leads leads (real ingest); rules an index narrows (status, list, score) and one
  it does not (country: the pipelined full scan), each against the reference "a full scan
  of the leads in one pipelined pass" (HGETALL of every lead, pipelined 1000 at a time, and
  the same evaluation), same run.
- size and first page: a segment of --big members (seeded directly): GET size (BITCOUNT) and
  the first page of 50 members (target <= 20 ms).
- memory: the people first (real ingest), then INFO used_memory before and after their
  memberships, written as the live path writes them (a bit in the segment's bitmap, a field
  in the person's hash): 100k people in one segment, 5k people in 20 segments, and sparse
  segments (10 segments each holding a different 1 % of 100k people), per membership
  (target <= 64 B); with the person hash's field count and encoding before and after (it
  must stay a listpack).
- settle: the ingest's own work in this process (no Celery), with and without the 20
  segments: this process's CPU and the Redis server's, a registration.
- ingest: bench/ingest.py's run (same code, a real ``outreach worker -c 2`` against Celery
  no-ops) with 20 segments saved, so the worker settles every person for 20 segments (the
  drain hands the people its batches changed to ``outreach.ingest.settle`` tasks, which
  the worker processes run): timed until every registration is applied *and* every person it
  changed is settled (no dirty mark left).

    .venv/bin/python bench/segments.py [--parts lag,preview,size,memory,ingest]
        [--leads 100000] [--big 1000000] [--rate 500] [--seconds 10]

Redis database 11 only (FLUSHDB of that database before and after each part).
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, load_note, own_db  # noqa: E402

from outreach.campaigns import tracking  # noqa: E402
from outreach.config import Config  # noqa: E402
from outreach.people import records  # noqa: E402
from outreach.people.ingest import apply_batch  # noqa: E402
from outreach.people.segments import build, catalog, members, membership, reading  # noqa: E402
from outreach.people.segments.evaluate import evaluate  # noqa: E402
from outreach.people.segments.facts import Facts, load  # noqa: E402
from outreach.platform import refs  # noqa: E402
from outreach.store import Store, connect  # noqa: E402
from outreach.tokens import Tokens  # noqa: E402

DB = 11
URL = f"redis://127.0.0.1:6379/{DB}"
PREFIX = "bseg"
COUNTRIES = ["DE", "FR", "US", "GB", "ES", "IT", "NL", "PL", "SE", "AT"]
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def store_and_config() -> tuple[Store, Config]:
    config = Config.from_env({"OUTREACH_REDIS_URL": URL, "OUTREACH_KEY_PREFIX": PREFIX})
    return connect(URL, PREFIX), config


def seed(store: Store, config: Config, leads: int, qualified: float = 0.1) -> None:
    """``leads`` leads through the real ingest (20 white papers, ten countries, 1 in 7 also
    at an event: a higher score), then ``qualified`` of them marked qualified directly."""
    rng = random.Random(7)
    rows = []
    now = int(time.time())  # scores fade: registrations of long ago would score nothing
    for i in range(leads):
        rows.append({"kind": "white_paper", "asset": f"paper-{i % 20}", "email": f"l{i}@c{i % 5000}.com",
                     "company": f"Company {i % 5000}", "country": COUNTRIES[i % len(COUNTRIES)],
                     "consent": 1, "at": now})
        if i % 7 == 0:
            rows.append({"kind": "event", "asset": "summit", "email": f"l{i}@c{i % 5000}.com",
                         "consent": 1, "at": now})
    for start in range(0, len(rows), 1000):
        chunk = rows[start:start + 1000]
        apply_batch(store, config, [(f"{start + j + 1}-0", {"d": json.dumps(r)})
                                    for j, r in enumerate(chunk)])
    keys = store.keys
    ids = store.r.zrange(keys.leads, 0, -1, withscores=True)
    pipe = store.r.pipeline(transaction=False)
    for lead_id, seq in ids:
        if rng.random() < qualified:
            pipe.hset(keys.lead(lead_id), "status", "qualified")
            pipe.zadd(keys.leads_by_status("qualified"), {lead_id: seq})
            pipe.zrem(keys.lead_candidates, lead_id)
        if len(pipe) > 3000:
            pipe.execute()
    pipe.execute()


def list_of(store: Store, asset: str) -> str:
    for list_id in store.r.zrange(store.keys.lists, 0, -1):
        slug, member_type = store.r.hmget(store.keys.list(list_id), "slug", "member_type")
        if slug == asset and member_type == "lead":
            return list_id
    raise LookupError(asset)


def _trees(list_id: str) -> list[dict[str, Any]]:
    trees: list[dict[str, Any]] = []
    for i, country in enumerate(COUNTRIES):
        trees.append({"field": "country", "op": "eq", "value": country})
        trees.append({"all": [{"field": "company", "op": "starts_with", "value": f"Company {i}"},
                              {"any": [{"opened": {"within": "-P30D"}},
                                       {"field": "score", "op": "gte", "value": 15 + i}]}]})
    trees[-1] = {"all": [{"in_list": list_id}, {"opened": {"campaign_id": "cp1"}}]}
    trees[-2] = {"not": {"field": "status", "op": "eq", "value": "qualified"}}
    return trees


def twenty_segments(store: Store, list_id: str) -> list[dict[str, Any]]:
    return [catalog.create_segment(store, f"s{i}", "lead", t)
            for i, t in enumerate(_trees(list_id))]


# ---------------------------------------------------------------- lag

def wrong_memberships(store: Store, saved: list[dict[str, Any]], lead_ids: Iterable[str]) -> int:
    """How many (lead, saved segment) memberships differ from a brute-force evaluation now."""
    defs = membership.definitions(store, [s["id"] for s in saved])
    wrong = 0
    now = time.time()
    for lead_id in lead_ids:
        facts = load(store, refs.lead_ref(lead_id), [d["rules"] for d in defs.values()])
        assert facts is not None
        for segment_id, d in defs.items():
            want = (evaluate(d["rules"], facts, now).value
                    and membership.eligible(d["member_type"], facts))
            wrong += want != (segment_id in facts.segments)
    return wrong


def _drive(share: list[tuple[float, str, str, str, int]], start: float,
           threads: int) -> tuple[list[float], set[str]]:
    """One process's changes, each made at its moment; their lags (done - due)."""
    store, config = store_and_config()
    tokens = Tokens(config.secret_key)
    lags: list[float] = []
    changed: set[str] = set()
    lock = threading.Lock()

    def one(item: tuple[float, str, str, str, int]) -> None:
        at, lead_id, kind, country, company = item
        due = start + at
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        if kind == "country":
            records.update_lead(store, lead_id, {"country": country})
        elif kind == "company":
            records.update_lead(store, lead_id, {"company": f"Company {company}"})
        else:
            tracking.record_open(store, config, tokens.sign("open", ["cp1", refs.lead_ref(lead_id)]),
                                 BROWSER)
        done = time.time()
        with lock:
            lags.append(done - due)
            changed.add(lead_id)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, share))
    return lags, changed


def part_lag(args: argparse.Namespace) -> None:
    with own_db(DB):
        store, config = store_and_config()
        seed(store, config, args.people)
        list_id = list_of(store, "paper-3")
        store.r.hset(store.keys.campaign("cp1"), mapping={"name": "cp1"})
        t0 = time.monotonic()
        saved = twenty_segments(store, list_id)
        for s in saved:
            build.build(store, s["id"], time_budget=3600)
        built = time.monotonic() - t0
        lead_ids = store.r.zrange(store.keys.leads, 0, -1)
        rng = random.Random(1)
        total = int(args.rate * args.seconds)
        plan = [(n / args.rate, rng.choice(lead_ids), rng.choice(["country", "company", "open"]),
                 rng.choice(COUNTRIES), rng.randrange(5000)) for n in range(total)]
        # the changes arrive through --processes processes (as through API / tracking
        # workers), each with --threads threads, each change at its planned moment
        start = time.time() + 2.0
        shares = [plan[i::args.processes] for i in range(args.processes)]
        with multiprocessing.get_context("fork").Pool(args.processes) as pool:
            results = pool.starmap(_drive, [(share, start, args.threads) for share in shares])
        lags = [lag for part, _ in results for lag in part]
        changed = {lead_id for _, part in results for lead_id in part}
        elapsed = max(at for at, *_ in plan) + max(lags)
        wrong = wrong_memberships(store, saved, changed)
        print(f"lag: 20 segments over {args.people:,} leads (built in {built:.1f}s); {total} "
              f"changes (edits, opens) asked at {args.rate:.0f}/s from {args.processes} processes "
              f"x {args.threads} threads, all made within {elapsed:.1f}s of the first")
        print(f"  lag p50 {statistics.median(lags) * 1000:.1f} ms, p99 {pct(lags, 99) * 1000:.1f} ms, "
              f"max {max(lags) * 1000:.1f} ms (target p99 <= 5 s); wrong memberships of the "
              f"{len(changed)} changed people x 20 segments: {wrong} (target 0)")
        print(f"  dirty marks left: {store.r.scard(store.keys.segment_dirty)}")


# ---------------------------------------------------------------- preview

def full_scan(store: Store, rules: dict[str, Any], now: float, page: int = 1000) -> int:
    """The reference: every lead's hash, pipelined ``page`` at a time, evaluated."""
    keys = store.keys
    count = offset = 0
    while True:
        ids = store.r.zrange(keys.leads, offset, offset + page - 1)
        if not ids:
            return count
        pipe = store.r.pipeline(transaction=False)
        for lead_id in ids:
            pipe.hgetall(keys.lead(lead_id))
        for lead_id, h in zip(ids, pipe.execute(), strict=True):
            if h and evaluate(rules, Facts(refs.lead_ref(lead_id), h), now).value:
                count += 1
        offset += page


def timed(fn: Callable[[], Any], rounds: int = 3) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def part_preview(args: argparse.Namespace) -> None:
    with own_db(DB):
        store, config = store_and_config()
        t0 = time.monotonic()
        seed(store, config, args.leads)
        print(f"preview: {args.leads:,} leads seeded through the ingest in "
              f"{time.monotonic() - t0:.0f}s")
        list_id = list_of(store, "paper-0")
        now = time.time()
        cases = {
            "status=qualified and country=DE (status index)": {"all": [
                {"field": "status", "op": "eq", "value": "qualified"},
                {"field": "country", "op": "eq", "value": "DE"}]},
            "on a list and country=DE (list members)": {"all": [
                {"in_list": list_id}, {"field": "country", "op": "eq", "value": "DE"}]},
            "score >= 15 (answered by the score index alone)": {"field": "score", "op": "gte",
                                                                 "value": 15},
            "score >= 15 and country=DE (score index, then evaluated)": {"all": [
                {"field": "score", "op": "gte", "value": 15},
                {"field": "country", "op": "eq", "value": "DE"}]},
            "country=DE (no index: the full scan)": {"field": "country", "op": "eq", "value": "DE"},
        }
        reference_rules = cases["country=DE (no index: the full scan)"]
        rounds = 1 if args.leads > 200_000 else 3
        ref_time, ref_count = timed(lambda: full_scan(store, reference_rules, now),
                                    rounds=min(rounds, 2))
        print(f"  reference, one pipelined pass over every lead: {ref_time:.2f}s ({ref_count:,} match)")
        for name, rules in cases.items():
            spent, got = timed(lambda rules=rules: reading.preview(store, "lead", rules, now=now,
                                                                   budget=600.0), rounds)
            if "list" in name:  # the scan's facts hold no lists: count the list's DE members
                ids = store.r.zrange(store.keys.list_members(list_id), 0, -1)
                pipe = store.r.pipeline(transaction=False)
                for lead_id in ids:
                    pipe.hget(store.keys.lead(lead_id), "country")
                check = sum(1 for c in pipe.execute() if (c or "").lower() == "de")
            else:
                check = full_scan(store, rules, now) if "no index" not in name else ref_count
            ok = "ok" if got["count"] == check else f"MISMATCH (scan says {check})"
            print(f"  {name}: {spent:.3f}s, count {got['count']:,} {ok}; "
                  f"{ref_time / spent:.1f}x faster than the scan")


# ---------------------------------------------------------------- size and first page

def part_build(args: argparse.Namespace) -> None:
    """Building a new segment over --leads leads (seeded through the real ingest), page by
    page as the background build does it: a profile-and-score tree and an engagement tree;
    time per lead, and the number of members checked against the preview's (which is
    property-tested against brute force, and reads the people its own way)."""
    with own_db(DB):
        store, config = store_and_config()
        seed(store, config, args.leads)
        trees = {"country and score": {"all": [{"field": "country", "op": "eq", "value": "DE"},
                                               {"field": "score", "op": "gte", "value": 5}]},
                 "opened or at the summit": {"any": [{"opened": {"within": "-P30D"}},
                                                     {"registered": {"asset": "summit"}}]}}
        for name, tree in trees.items():
            segment = catalog.create_segment(store, name, "lead", tree)
            started = time.perf_counter()
            while build.build(store, segment["id"], time_budget=3600):
                pass
            took = time.perf_counter() - started
            size = members.size(store, segment["id"])
            expected = reading.preview(store, "lead", tree, budget=3600)["count"]
            print(f"  {name}: built over {args.leads:,} leads in {took:.2f} s "
                  f"({took / args.leads * 1e6:.0f} us a lead); {size:,} members, the preview "
                  f"counts {expected:,}")


def part_size(args: argparse.Namespace) -> None:
    with own_db(DB):
        store, config = store_and_config()
        seed(store, config, 100)
        keys = store.keys
        segment = catalog.create_segment(store, "big", "lead",
                                         {"field": "country", "op": "exists", "value": True})
        store.r.hset(keys.segment(segment["id"]), "build_state", "ready")
        store.r.zrem(keys.segment_builds, segment["id"])
        real = [refs.lead_ref(i) for i in store.r.zrange(keys.leads, 0, -1)]
        t0 = time.monotonic()
        pipe = store.r.pipeline(transaction=False)
        for ref in real:
            members.add(store, pipe, segment["id"], ref, 1_000_000)
        # the rest: bits of lead numbers nobody has (their pages skip them)
        for n in range(len(real) + 1, args.big + 1):
            pipe.setbit(keys.segment_leads(segment["id"]), n, 1)
            if len(pipe) >= 5000:
                pipe.execute()
        pipe.execute()
        print(f"size and first page: {members.size(store, segment['id']):,} members seeded in "
              f"{time.monotonic() - t0:.0f}s")
        sizes, pages = [], []
        for _ in range(20):
            t0 = time.perf_counter()
            found = catalog.get_segment(store, segment["id"])
            sizes.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            page = reading.members(store, segment["id"], limit=50)
            pages.append(time.perf_counter() - t0)
        assert found["size"] == args.big and len(page["items"]) == 50
        print(f"  GET segment (size {found['size']:,}): median {statistics.median(sizes) * 1000:.2f} ms; "
              f"first page of 50 members: median {statistics.median(pages) * 1000:.2f} ms "
              f"(target <= 20 ms each)")


# ---------------------------------------------------------------- memory

def part_memory(args: argparse.Namespace) -> None:
    """The people first (real ingest: realistic lead hashes), then used_memory before and
    after writing the memberships as the live path does (``members.add``: a bit in the
    segment's bitmap, a field in the person's hash)."""
    with own_db(DB) as client:
        store, config = store_and_config()
        keys = store.keys

        def fill(people: int, segments: int, every: int = 1) -> None:
            client.flushdb()
            seed(store, config, people, qualified=0)
            leads = [refs.lead_ref(i) for i in store.r.zrange(keys.leads, 0, -1)]
            sample = keys.person(leads[0])
            fields_before = int(client.hlen(sample))
            encoding_before = client.object("encoding", sample)
            # segment s holds every person (every=1), or one in ``every`` from the s-th on
            held = {f"sg{s + 1}": leads[s % every::every] for s in range(segments)}
            chosen = sorted(set().union(*held.values()))
            hashes_before = hash_memory(chosen)
            before = int(client.info("memory")["used_memory"])
            for segment_id, mine in held.items():
                for first in range(0, len(mine), 1000):
                    pipe = store.r.pipeline(transaction=False)
                    for ref in mine[first:first + 1000]:
                        members.add(store, pipe, segment_id, ref, 1_765_000_000 + first)
                    pipe.execute()
            after = int(client.info("memory")["used_memory"])
            count = sum(len(mine) for mine in held.values())
            bitmaps = sum(int(client.memory_usage(keys.segment_leads(f"sg{s + 1}"), samples=0) or 0)
                          for s in range(segments))
            fields = hash_memory(chosen) - hashes_before
            assert sum(members.sizes(store, [f"sg{s + 1}" for s in range(segments)])) == count
            print(f"memory per membership, {segments} segment(s), {people:,} people, "
                  f"{len(held['sg1']):,} in each segment ({count:,} memberships): "
                  f"used_memory {(after - before) / count:.1f} B; "
                  f"by key (MEMORY USAGE, whatever other clients of the server do) "
                  f"{(bitmaps + fields) / count:.1f} B: bitmaps {bitmaps / count:.1f} B, the "
                  f"person hashes' growth {fields / count:.1f} B (target <= 64 B)")
            print(f"  a person hash: {fields_before} fields, {encoding_before} -> "
                  f"{int(client.hlen(sample))} fields, {client.object('encoding', sample)}")

        def hash_memory(person_refs: list[str]) -> int:
            total = 0
            for first in range(0, len(person_refs), 1000):
                pipe = store.r.pipeline(transaction=False)
                for ref in person_refs[first:first + 1000]:
                    pipe.memory_usage(keys.person(ref), samples=0)
                total += sum(int(n or 0) for n in pipe.execute())
            return total

        fill(100_000, 1)
        fill(5_000, 20)
        fill(100_000, 10, every=100)  # sparse: each segment 1 % of the people (others each)


# ---------------------------------------------------------------- ingest with 20 segments

def part_settle(args: argparse.Namespace) -> None:
    """The ingest's own work in this process, without Celery: --registrations (20 % repeats)
    applied in batches of 250 (``apply_batch``), without segments and with the 20 of
    ``twenty_segments``; with them, each batch's people are kept and settled after every
    batch is in (``settle_touched``), so that the settling is timed alone: this process's
    CPU and the Redis server's (INFO cpu) for each phase, seen apart from the workers' and
    the broker's."""
    from _common import make_registrations

    payloads = make_registrations(args.registrations, 0.2)

    def phase(client: Any, work: Callable[[], None]) -> tuple[float, float, float]:
        def server_cpu() -> float:
            info = client.info("cpu")
            return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

        wall, mine, server = time.perf_counter(), time.process_time(), server_cpu()
        work()
        return time.perf_counter() - wall, time.process_time() - mine, server_cpu() - server

    def show(what: str, figures: tuple[float, float, float]) -> None:
        wall, mine, server = figures
        print(f"  {what}: wall {wall:.2f} s; this process's CPU {mine / len(payloads) * 1e6:.0f} us "
              f"and Redis's {server / len(payloads) * 1e6:.0f} us a registration (the whole "
              "server: run it on a quiet one)")

    for count in (0, 20):
        with own_db(DB) as client:
            store, config = store_and_config()
            saved = twenty_segments(store, "ls1") if count else []
            for segment in saved:
                build.build(store, segment["id"])
            touched: list[list[str]] = []
            ingest = functools.partial(_apply_all, store, config, payloads,
                                       lambda _, reported, kept=touched: kept.append(reported))
            settle = functools.partial(_settle_all, store, touched)
            show(f"{count} segments, ingest", phase(client, ingest))
            if count:
                show(f"{count} segments, settling", phase(client, settle))
                leads = store.r.zrange(store.keys.leads, 0, -1)
                print(f"  dirty marks left {store.r.scard(store.keys.segment_dirty)}; wrong "
                      f"memberships (brute force): {wrong_memberships(store, saved, leads)}")


def _apply_all(store: Store, config: Config, payloads: list[dict[str, Any]],
               settler: Callable[[Store, list[str]], Any]) -> None:
    from outreach.people.ingest import apply_batch

    for first in range(0, len(payloads), 250):
        apply_batch(store, config, [(f"{first + i + 1}-0", {"d": json.dumps(p)})
                                    for i, p in enumerate(payloads[first:first + 250])], settler)


def _settle_all(store: Store, batches: list[list[str]]) -> None:
    from outreach.people.ingest import settle_touched

    for reported in batches:
        settle_touched(store, list(reported))


def _worker_bench() -> tuple[Any, Any]:
    """bench/ingest.py on this part's database, with a secret key for the worker: the module
    and a Celery client app."""
    import ingest as ingest_bench

    ingest_bench.DB = DB
    secret = secrets.token_urlsafe(32)  # the worker refuses the built-in development key
    ingest_bench.env = lambda: {"OUTREACH_REDIS_URL": ingest_bench.redis_url(DB),
                                "OUTREACH_KEY_PREFIX": ingest_bench.KEY_PREFIX,
                                "OUTREACH_SECRET_KEY": secret}
    return ingest_bench, ingest_bench.client_app()


def part_ingest(args: argparse.Namespace) -> None:
    from _common import make_registrations

    ingest_bench, app = _worker_bench()
    payloads = make_registrations(args.registrations, 0.2)
    distinct = len({str(p["email"]).lower() for p in payloads})
    ns = argparse.Namespace(concurrency=2, loglevel="WARNING", max_foreign=0.5,
                            quiet_timeout=20.0, batch_size=Config().ingest_batch_size)
    rates, lists_rates = {}, {}
    for count in (0, 20):  # the same run without segments, then with twenty saved
        with own_db(DB), tempfile.TemporaryDirectory(prefix="bench-segments-") as logdir:
            store = connect(ingest_bench.redis_url(DB), ingest_bench.KEY_PREFIX)
            saved = twenty_segments(store, "ls1") if count else []
            for s in saved:
                build.build(store, s["id"])
            if count == 0:
                noop_rate, _, _ = ingest_bench.run_noop(app, store, args.noop, ns, logdir)
            timings: dict[str, float] = {}
            rate, check, _ = ingest_bench.run_ingest(app, store, payloads, distinct, ns, logdir, 1,
                                                     timings)
            rates[count] = rate
            lists_rates[count] = len(payloads) / timings["lists"]
            print(f"  {count} segments: {rate:,.0f} registrations/s; {check}; dirty marks left "
                  f"{store.r.scard(store.keys.segment_dirty)}")
    print(f"ingest vs {noop_rate:,.0f} Celery no-ops/s: {rates[0] / noop_rate:.1f}x without "
          f"segments, {rates[20] / noop_rate:.1f}x with 20 segments saved, timed until every "
          f"person is settled (target >= 20x); into the lists alone (segments settling behind): "
          f"{lists_rates[0] / noop_rate:.1f}x / {lists_rates[20] / noop_rate:.1f}x")


def part_reglag(args: argparse.Namespace) -> None:
    """Registrations at --rate/s for --seconds, each a new person, stored as the API stores
    them (an XADD to the intake stream at its moment, and the API's throttled kick), drained
    by a real ``outreach worker -c 2`` (which hands settling to its settle task); a
    registration's lag: from its intake entry (its id: Redis's clock) to the entry of its
    person's move into their country's segment in the segment moves stream (written in the
    transaction of the move), so it counts the kick's throttle, the drain and the settling."""
    from _common import start, stop

    from outreach.people.intake import IngestKicker
    from outreach.people.segments import moves

    ingest_bench, app = _worker_bench()
    with own_db(DB), tempfile.TemporaryDirectory(prefix="bench-segments-") as logdir:
        store = connect(ingest_bench.redis_url(DB), ingest_bench.KEY_PREFIX)
        config = Config.from_env(ingest_bench.env())
        seed(store, config, args.people)
        saved = twenty_segments(store, list_of(store, "paper-3"))
        for s in saved:
            build.build(store, s["id"], time_budget=3600)
        moves.listen(store, [s["id"] for s in saved])
        log_path = Path(logdir) / "worker.log"
        with open(log_path, "wb") as log:
            proc = start([str(ingest_bench.VENV_BIN / "outreach"), "worker", "-c", "2",
                          "-l", "WARNING", "-n", "bench-reglag@%h"],
                         env=ingest_bench.env(), log=log)
            try:
                ingest_bench.wait_ready(app, log_path)
                ingest_bench.wait_for(lambda: ingest_bench.queue_idle(store), 60, "start-up")
                kick = IngestKicker(lambda: app.send_task("outreach.ingest.drain", queue="ingest"),
                                    config.ingest_kick_ms / 1000)
                total = int(args.rate * args.seconds)
                stored: dict[str, int] = {}  # email -> intake entry ms
                start_at = time.monotonic() + 1.0
                for n in range(total):
                    wait = start_at + n / args.rate - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    email = f"r{n}@n{n % 997}.example"
                    body = json.dumps({"kind": "white_paper", "asset": f"paper-{n % 20}",
                                       "email": email, "company": f"Company {n % 5000}",
                                       "country": COUNTRIES[n % len(COUNTRIES)], "consent": 1,
                                       "at": int(time.time())})
                    entry = store.r.xadd(store.keys.intake_stream, {"d": body})
                    stored[email] = int(entry.partition("-")[0])
                    kick()
                produced = time.monotonic() - start_at
                ingest_bench.wait_for(
                    lambda: store.r.hlen(store.keys.lead_by_email) >= args.people + total
                    and store.r.scard(store.keys.segment_dirty) == 0, 120, "settled", poll=0.05)
            finally:
                stop(proc)
        country_segments = {s["id"] for s, tree in zip(saved, _trees(list_of(store, "paper-3")),
                                                       strict=True)
                            if tree.get("field") == "country"}
        entered: dict[str, int] = {}
        for entry_id, fields in store.r.xrange(store.keys.segment_moves):
            if fields["segment_id"] in country_segments and fields["move"] == "in":
                entered.setdefault(fields["ref"], int(entry_id.partition("-")[0]))
        lead_ids = {email: store.r.hget(store.keys.lead_by_email, email) for email in stored}
        lags = [(entered[refs.lead_ref(lead_ids[email])] - at) / 1000
                for email, at in stored.items() if refs.lead_ref(lead_ids[email]) in entered]
        wrong = wrong_memberships(store, saved, lead_ids.values())
        print(f"registration lag: {total} new people registered at {args.rate:.0f}/s "
              f"(stored in {produced:.1f}s) over {args.people:,} leads and 20 segments; "
              f"{len(lags)} moves into their country's segment seen")
        print(f"  lag p50 {statistics.median(lags) * 1000:.0f} ms, p99 {pct(lags, 99) * 1000:.0f} "
              f"ms, max {max(lags) * 1000:.0f} ms (target p99 <= 5 s; the API's kick is "
              f"throttled to one every {config.ingest_kick_ms} ms); wrong memberships of the "
              f"{len(lead_ids)} new people x 20 segments: {wrong} (target 0)")


def main() -> int:
    global DB, URL
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="lag,preview,size,memory,ingest")
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--people", type=int, default=2000, help="leads for the lag part")
    parser.add_argument("--processes", type=int, default=4, help="lag: driving processes")
    parser.add_argument("--threads", type=int, default=4, help="lag: threads per process")
    parser.add_argument("--registrations", type=int, default=20_000)
    parser.add_argument("--noop", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--db", type=int, default=11,
                        help="the Redis database (>= 10, or OUTREACH_BENCH_DB; flushed)")
    args = parser.parse_args()
    DB, URL = args.db, f"redis://127.0.0.1:6379/{args.db}"
    header("segments: lag, preview vs a full scan, size/page at 1M, memory, ingest with 20 segments")
    print(load_note())
    parts = {"lag": part_lag, "reglag": part_reglag, "preview": part_preview, "build": part_build,
             "size": part_size, "memory": part_memory, "settle": part_settle,
             "ingest": part_ingest}
    for name in args.parts.split(","):
        parts[name](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
