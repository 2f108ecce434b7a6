"""What durability costs on the intake path: req/s with AOF and with min replicas 1.

The same ``POST /api/v1/registrations`` (gunicorn -w 2 -k sync, wrk, bench/intake.py's
machinery: all servers up, short slices in rotating order, disturbed slices measured
again) against Redis servers of this benchmark's own, one per setup:

- ``default``: Redis without persistence, OUTREACH_INTAKE_MIN_REPLICAS=0 (the reference)
- ``everysec``: ``appendonly yes``, ``appendfsync everysec`` (docker-compose's setting)
- ``always``: ``appendonly yes``, ``appendfsync always`` (every write on disk before the reply)
- ``replica1``: a master and one replica, OUTREACH_INTAKE_MIN_REPLICAS=1 (WAIT 1 per request)
- ``always+replica1``: both

Run: .venv/bin/python bench/durability.py [--rounds 5] [--duration 5] [--only default,always]
No shared Redis database is touched (private servers in a tmp dir).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from _common import KEY_PREFIX, fmt_rate, free_port, header, load_note, median, start, stop, wait_http
from _redis import RedisServer, wait
from intake import Slice, Variant, clean_or_all, gunicorn_argv, measure, run_wrk

SETUPS = {
    "default": ("no persistence, min replicas 0 (reference)", None, 0),
    "everysec": ("AOF appendfsync everysec", "everysec", 0),
    "always": ("AOF appendfsync always", "always", 0),
    "replica1": ("one replica, OUTREACH_INTAKE_MIN_REPLICAS=1", None, 1),
    "always+replica1": ("AOF always + min replicas 1", "always", 1),
}


def round_trips(args: argparse.Namespace, names: list[str]) -> None:
    """The store's share alone: one connection, the intake's write (``XADD``, and ``WAIT``
    in the same round trip with min replicas), one at a time — latency-bound, so it moves
    less with the machine's load than req/s does."""
    import json
    import time

    from outreach.store import connect

    body = json.dumps({"kind": "white_paper", "asset": "bench", "email": "a@example.com"})
    print()
    print(f"store round trip of the intake write, {args.round_trips} sequential writes per setup:")
    print("| setup | median µs | p99 µs | vs default (median) |")
    print("|---|---:|---:|---:|")
    medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-durability-rt-") as tmp:
        for name in names:
            label, aof, replicas = SETUPS[name]
            servers = [RedisServer(Path(tmp) / name / "master", aof=aof).start()]
            try:
                if replicas:
                    servers.append(RedisServer(Path(tmp) / name / "replica", aof=aof,
                                               replica_of=servers[0].port).start())
                    wait(lambda r=servers[1]: r.client().info("replication").get(
                        "master_link_status") == "up", 60, "the replica to sync")
                store = connect(servers[0].url, KEY_PREFIX)
                stream = store.keys.intake_stream
                timings = []
                for _ in range(args.round_trips):
                    began = time.perf_counter()
                    if replicas:
                        _, acked = store.durable(replicas, 1000, "XADD", stream, "*", "d", body)
                        if acked < replicas:
                            raise RuntimeError(f"{name}: WAIT returned {acked}")
                    else:
                        store.direct("XADD", stream, "*", "d", body)
                    timings.append((time.perf_counter() - began) * 1e6)
                timings.sort()
                medians[name] = median(timings)
                p99 = timings[int(len(timings) * 0.99) - 1]
                vs = f"{medians[name] / medians['default']:.1f}x" if "default" in medians else "-"
                print(f"| {label} | {medians[name]:.0f} | {p99:.0f} | {vs} |", flush=True)
            finally:
                for server in servers:
                    server.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="sync", choices=("sync", "gthread"))
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--only", default="")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    parser.add_argument("--max-foreign", type=float, default=0.1)
    parser.add_argument("--attempts", type=int, default=2)
    parser.add_argument("--quiet-timeout", type=float, default=20.0)
    parser.add_argument("--round-trips", type=int, default=2000,
                        help="sequential intake writes per setup, timed one by one (0: skip)")
    args = parser.parse_args()
    if not shutil.which(args.wrk):
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    names = [n for n in SETUPS if not args.only or n in args.only.split(",")]
    header("durability: intake req/s with AOF and min replicas vs no persistence")
    print(f"# setup: gunicorn -w {args.workers} -k {args.worker_class}; wrk -t{args.wrk_threads} "
          f"-c{args.connections} -d{args.duration:g}s slices, {args.rounds} rounds in rotating order; "
          "one private redis-server (and replica) per setup, data on this machine's disk")
    failures = 0
    slices: dict[str, list[Slice]] = {n: [] for n in names}
    servers: list[RedisServer] = []
    procs = []
    with tempfile.TemporaryDirectory(prefix="bench-durability-") as tmp:
        try:
            endpoints: dict[str, tuple[int, int, RedisServer]] = {}
            for name in names:
                label, aof, replicas = SETUPS[name]
                master = RedisServer(Path(tmp) / name / "master", aof=aof).start()
                servers.append(master)
                if replicas:
                    replica = RedisServer(Path(tmp) / name / "replica", aof=aof,
                                          replica_of=master.port).start()
                    servers.append(replica)
                    wait(lambda r=replica: r.client().info("replication").get(
                        "master_link_status") == "up", 60, "the replica to sync")
                env = {"OUTREACH_REDIS_URL": master.url, "OUTREACH_KEY_PREFIX": KEY_PREFIX,
                       "OUTREACH_INTAKE_RATE_LIMIT": "0",
                       "OUTREACH_INTAKE_MIN_REPLICAS": str(replicas),
                       "OUTREACH_SECRET_KEY": "bench-durability-secret-key-0123456789abcdef"}
                port = free_port()
                log = open(Path(tmp) / f"{name}.log", "wb")  # noqa: SIM115 - closed below
                variant = Variant(name, label, "outreach:create_app()", env)
                proc = start(gunicorn_argv(args, port, variant), env=env, log=log)
                procs.append((proc, log))
                endpoints[name] = (port, proc.pid, master)
            for name, (port, _pgid, _master) in endpoints.items():
                wait_http(f"http://127.0.0.1:{port}/healthz", next(p for p, _ in procs
                                                                     if p.pid == _pgid))
                run_wrk(args, port, args.warmup, f"w{name}")
            stream = f"{{{KEY_PREFIX}}}:intake"
            for round_no in range(1, args.rounds + 1):
                shift = (round_no - 1) % len(names)
                for name in names[shift:] + names[:shift]:
                    port, pgid, master = endpoints[name]
                    before = master.client().xlen(stream)
                    piece = measure(args, Variant(name, name, "", {}), port, pgid,
                                    f"r{round_no}{name.replace('+', '')}")
                    slices[name].append(piece)
                    result = piece.result
                    stored = master.client().xlen(stream) - before
                    note = "" if piece.clean else "  (disturbed)"
                    if stored < result.requests - result.non202:
                        note += f"  ONLY {stored} STORED"
                        failures += 1
                    if result.non202:
                        note += f"  {result.non202} NON-202 ANSWERS"
                        failures += 1
                    print(f"round {round_no} {name:>15}: {fmt_rate(result.rate):>6} req/s "
                          f"({result.requests} requests, latency {result.latency}; "
                          f"foreign CPU {piece.foreign:.0%}){note}", flush=True)
        finally:
            for proc, log in procs:
                stop(proc)
                log.close()
            for server in servers:
                server.kill()
    print(f"# end: {load_note()}")
    if args.round_trips:
        round_trips(args, names)

    def rate(name: str) -> float:
        return median(clean_or_all([s.result.rate for s in slices[name]], slices[name]))

    if not args.rounds:
        return 0
    reference = rate("default") if "default" in slices else None
    print()
    print("| setup | req/s (median) | undisturbed slices | vs default |")
    print("|---|---:|---:|---:|")
    for name in names:
        clean = sum(s.clean for s in slices[name])
        vs = f"{rate(name) / reference:.2f}" if reference else "-"
        print(f"| {SETUPS[name][0]} | {fmt_rate(rate(name))} | {clean}/{len(slices[name])} | {vs} |")
    if failures:
        print(f"{failures} slice(s) had wrong answers or lost registrations", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
