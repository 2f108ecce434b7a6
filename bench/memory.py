"""Redis memory per lead at 100k leads, lists and indexes included (target <= 1 KiB).

Fills a dedicated db with 100k registrations (distinct addresses; first and last name,
company, job title, country, consent; 20 assets) through the real path: the intake Lua
appends them to the stream, ``drain`` (``apply_batch``, the ingest Lua) applies them.
Prints the ``used_memory`` delta per lead and, per key family, the ``MEMORY USAGE`` sum
(exact, ``SAMPLES 0``), which counts only this db's keys. ``used_memory`` is the figure
judged, unless other databases of the server changed during the fill: then the db-local
sum (plus the db's key table) is, and the delta is marked unreliable.

Run: .venv/bin/python bench/memory.py [--leads 100000] [--repeat-share 0]
Redis db 15 is used (and flushed). ``used_memory`` is server-wide: other clients of the
same server add noise to it; the per-key sum does not have that problem.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter, defaultdict

import redis
from _common import (
    BENCH_DBS,
    KEY_PREFIX,
    fill_stream,
    header,
    load_note,
    make_registrations,
    own_db,
    redis_url,
)

from outreach.config import Config
from outreach.people.ingest import drain
from outreach.store import connect

DB = BENCH_DBS["memory"]
TARGET = 1024


def family(key: str) -> str:
    """``{bench}:lead:ld3f`` -> ``lead:*``; ``{bench}:list:ls1:m`` -> ``list:*:m``."""
    parts = key.split(":")[1:]
    out = []
    for part in parts:
        out.append("*" if re.match(r"^(ld|ls|ct|ac|op)[0-9a-z]+$", part) else part)
    return ":".join(out)


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def per_family(client: redis.Redis) -> dict[str, tuple[int, int, str]]:
    """family -> (keys, bytes, an encoding seen) over every key of the db."""
    sizes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    encodings: dict[str, Counter[str]] = defaultdict(Counter)
    batch: list[str] = []

    def flush() -> None:
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.memory_usage(key, samples=0)
            pipe.object("encoding", key)
        replies = pipe.execute()
        for i, key in enumerate(batch):
            fam = family(key)
            sizes[fam][0] += 1
            sizes[fam][1] += int(replies[2 * i] or 0)
            encodings[fam][str(replies[2 * i + 1])] += 1
        batch.clear()

    for key in client.scan_iter(count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            flush()
    if batch:
        flush()
    return {
        fam: (n, size, ", ".join(f"{enc} {k}" for enc, k in encodings[fam].most_common()))
        for fam, (n, size) in sizes.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument(
        "--repeat-share", type=float, default=0.0,
        help="extra registrations from known leads, as a share of --leads (default: none)",
    )
    args = parser.parse_args()
    header("memory: Redis bytes per lead (target <= 1024)")

    registrations = int(args.leads * (1 + args.repeat_share))
    share = args.repeat_share / (1 + args.repeat_share)
    payloads = make_registrations(registrations, share, seed=11)
    distinct = len({str(p["email"]).lower() for p in payloads})
    config = Config()
    with own_db(DB) as client:
        store = connect(redis_url(DB), KEY_PREFIX)
        store.ensure_ingest_group()
        for name in ("intake", "ingest"):  # load the scripts before the baseline
            store.scripts[name].sha = client.script_load(store.scripts[name].script)
        client.execute_command("MEMORY", "PURGE")
        time.sleep(0.2)
        others_before = other_dbs(client)
        before = used_memory(client)
        fill_stream(store, payloads)
        result = drain(store, config, "bench-memory", time_budget=3600)
        client.execute_command("MEMORY", "PURGE")
        time.sleep(0.2)
        after = used_memory(client)
        others_changed = other_dbs(client) != others_before
        keys_in_db = client.dbsize()
        listpack_value = client.config_get("hash-max-listpack-value")["hash-max-listpack-value"]
        leads = client.hlen(store.keys.lead_by_email)
        families = per_family(client)
        store.r.close()

    print(f"# end: {load_note()}")
    if result.processed != registrations or leads != distinct:
        print(f"processed {result.processed}/{registrations}, {leads} leads for {distinct} "
              "addresses: the fill went wrong", file=sys.stderr)
        return 1
    keyspace = sum(size for _, size, _ in families.values())
    print(
        f"# setup: {registrations} registrations ({registrations - distinct} repeats) -> "
        f"{leads} leads over 20 assets; profile: first/last name, company, job title, country, "
        f"consent; Redis db {DB}, hash-max-listpack-value {listpack_value}"
    )
    print()
    print("| key family | keys | bytes | bytes/lead | encoding |")
    print("|---|---:|---:|---:|---|")
    for fam, (n, size, enc) in sorted(families.items(), key=lambda kv: -kv[1][1]):
        print(f"| {fam} | {n} | {size:,} | {size / leads:.0f} | {enc} |")
    print(f"| all keys (MEMORY USAGE sum) | {sum(n for n, _, _ in families.values())} | "
          f"{keyspace:,} | {keyspace / leads:.0f} | |")
    print()
    delta = after - before
    table = 8 * (1 << max(keys_in_db - 1, 1).bit_length())  # the db's key table: one pointer a slot
    local = (keyspace + table) / leads
    print(f"used_memory delta: {delta:,} bytes = {delta / leads:.0f} per lead"
          + ("  (UNRELIABLE: other databases changed meanwhile)" if others_changed else ""))
    print(f"this db alone: MEMORY USAGE of every key {keyspace:,} + key table {table:,} bytes "
          f"= {local:.0f} per lead")
    figure = local if others_changed else delta / leads
    print(f"BYTES PER LEAD = {figure:.0f} ({'this db alone' if others_changed else 'used_memory delta'}"
          f"; target <= {TARGET}) -> {'MET' if figure <= TARGET else 'MISSED'}")
    return 0


def other_dbs(client: redis.Redis) -> dict[str, int]:
    """Key counts of the server's other databases: if they move, used_memory is not ours."""
    return {db: int(info["keys"]) for db, info in client.info("keyspace").items()
            if db != f"db{DB}"}


if __name__ == "__main__":
    sys.exit(main())
