"""Registrations lost at a Sentinel failover, with OUTREACH_INTAKE_MIN_REPLICAS 0 and 1.

Per trial: one master, one replica, three sentinels (quorum 2, down-after 1 s) on free
local ports; the API under ``gunicorn -w 2`` following the master through the sentinels;
client threads posting registrations (each a new address) and keeping the id of every
202. A few seconds in, the master is SIGKILLed; the sentinels promote the replica; the old
master is started again from its data dir (it rejoins as the new master's replica, as an
operator's restart would). Load goes on until intake answers 202 again and a few
seconds more. Lost = ids answered 202 that are not in the new master's intake stream.

With 0 (asynchronous replication) what the replica had not received when the master
died is lost although it was answered 202 (on loopback the replica is microseconds
behind, so ``--replica-lag S`` cuts the replica off for the last S seconds before the
kill — stopped, its link dropped by the master — as a partition or a stalled replica
would); with 1 every 202 waited for the replica's acknowledgement (``WAIT 1 timeout``),
so none may be lost, and intake answers 503 while no replica acknowledges (after the
failover, until the old master is back as replica).

Run: .venv/bin/python bench/failover.py [--trials 3] [--threads 4] [--before 3]
No shared Redis database is touched: every server is the benchmark's own (tmp dir).
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from _common import KEY_PREFIX, VENV_BIN, free_port, load_note, start, stop, wait_http
from _redis import SentinelGroup, wait


class Load:
    """Threads posting registrations over keep-alive HTTP connections."""

    def __init__(self, port: int, threads: int, tag: str) -> None:
        self.port, self.tag = port, tag
        self.accepted: list[tuple[float, str]] = []  # (time, id) of every 202
        self.statuses: Counter[int] = Counter()
        self.slowest = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True)
                         for n in range(threads)]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _run(self, n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        i = 0
        while not self._stop.is_set():
            body = json.dumps({"kind": "white_paper", "asset": "failover-guide", "consent": True,
                               "email": f"{self.tag}.{n}.{i}@example.com"})
            i += 1
            started = time.monotonic()
            try:
                conn.request("POST", "/api/v1/registrations", body,
                             {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                status = 0  # no answer
                data = b""
            elapsed = time.monotonic() - started
            with self._lock:
                self.statuses[status] += 1
                self.slowest = max(self.slowest, elapsed)
                if status == 202:
                    self.accepted.append((time.monotonic(), json.loads(data)["id"]))
            if status != 202:
                time.sleep(0.05)

    def count(self) -> int:
        with self._lock:
            return len(self.accepted)


def trial(args: argparse.Namespace, replicas: int, number: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        group = SentinelGroup(Path(tmp), down_after_ms=args.down_after_ms, aof=args.aof).start()
        port = free_port()
        env = {
            "OUTREACH_REDIS_URL": "",
            "OUTREACH_REDIS_SENTINELS": group.addresses,
            "OUTREACH_REDIS_SENTINEL_MASTER": group.name,
            "OUTREACH_KEY_PREFIX": KEY_PREFIX,
            "OUTREACH_INTAKE_RATE_LIMIT": "0",
            "OUTREACH_INTAKE_MIN_REPLICAS": str(replicas),
            "OUTREACH_INTAKE_REPLICA_TIMEOUT_MS": str(args.wait_ms),
            "OUTREACH_SECRET_KEY": "bench-failover-secret-key-0123456789abcdef",
        }
        log = open(Path(tmp) / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
        api = start([str(VENV_BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}",
                     "--log-level", "warning", "outreach:create_app()"], env=env, log=log)
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", api)
            load = Load(port, args.threads, f"f{replicas}n{number}t{int(time.time())}").start()
            if args.replica_lag:
                # the link to the replica goes down (a partition, a stalled replica) and the
                # master dies before it is back: the replica is stopped and the master drops
                # its connection, so what the master takes meanwhile never reaches it
                time.sleep(max(0.0, args.before - args.replica_lag))
                group.replica.signal(signal.SIGSTOP)
                group.master.client().execute_command("CLIENT", "KILL", "TYPE", "replica")
                time.sleep(args.replica_lag)
            else:
                time.sleep(args.before)
            killed_at = time.monotonic()
            before_kill = load.count()
            group.master.kill()
            group.replica.signal(signal.SIGCONT)
            wait(lambda: group.master_port() == group.replica.port, 90, "the promotion")
            promoted_at = time.monotonic()
            group.master.start()  # back from its own data dir: the sentinels make it a replica
            at_restart = load.count()
            wait(lambda: load.count() > at_restart + 20, 90, "202 answers again")
            resumed_at = next(t for t, _ in load.accepted[at_restart:])
            time.sleep(args.after)
            load.stop()
            new_master = group.replica.client()
            stream = f"{{{KEY_PREFIX}}}:intake"
            ids = [rid for _, rid in load.accepted]
            present = 0
            for chunk in range(0, len(ids), 1000):
                pipe = new_master.pipeline(transaction=False)
                for rid in ids[chunk:chunk + 1000]:
                    pipe.xrange(stream, rid, rid, count=1)
                present += sum(1 for found in pipe.execute() if found)
            gaps = [b - a for (a, _), (b, _) in zip(load.accepted, load.accepted[1:], strict=False)
                    if b >= killed_at - args.replica_lag - 1]
            return {
                "replicas": replicas,
                "accepted": len(ids),
                "before_kill": before_kill,
                "lost": len(ids) - present,
                "statuses": dict(load.statuses),
                "promotion_s": promoted_at - killed_at,
                "no_202_s": max(gaps) if gaps else 0.0,
                "resumed_after_kill_s": resumed_at - killed_at,
                "slowest_s": load.slowest,
            }
        finally:
            stop(api)
            log.close()
            group.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="trials per setting")
    parser.add_argument("--threads", type=int, default=4, help="client threads")
    parser.add_argument("--before", type=float, default=3.0, help="seconds of load before the kill")
    parser.add_argument("--after", type=float, default=3.0,
                        help="seconds of load after intake answers 202 again")
    parser.add_argument("--replica-lag", type=float, default=0.0,
                        help="seconds the replica is stopped (falls behind) before the master dies")
    parser.add_argument("--down-after-ms", type=int, default=1000)
    parser.add_argument("--wait-ms", type=int, default=1000, help="WAIT timeout (min replicas 1)")
    parser.add_argument("--aof", default=None, choices=(None, "everysec", "always"),
                        help="AOF on master and replica (default: off)")
    parser.add_argument("--settings", default="0,1", help="min replicas settings to run")
    args = parser.parse_args()
    print("# failover: registrations answered 202 and then lost at a Sentinel failover")
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S %Z')} | {load_note()} | master+replica "
          f"(AOF {args.aof or 'off'}) + 3 sentinels, down-after {args.down_after_ms} ms; "
          f"gunicorn -w 2; {args.threads} client threads; master SIGKILLed after {args.before:g} s"
          + (f", the replica cut off for the last {args.replica_lag:g} s before it"
             if args.replica_lag else ", the replica in step"))
    totals: dict[int, Counter[str]] = {}
    failures = 0
    for replicas in (int(s) for s in args.settings.split(",")):
        total = totals.setdefault(replicas, Counter())
        for number in range(1, args.trials + 1):
            r = trial(args, replicas, number)
            others = {k: v for k, v in r["statuses"].items() if k not in (202, 503)}  # type: ignore[union-attr]
            print(f"min replicas {replicas} trial {number}: {r['accepted']} answered 202 "
                  f"({r['before_kill']} before the kill), LOST {r['lost']}; answers "
                  f"{r['statuses']}; promotion {r['promotion_s']:.1f} s after the kill; "
                  f"longest gap between 202s {r['no_202_s']:.1f} s; slowest request "
                  f"{r['slowest_s']:.1f} s", flush=True)
            total["accepted"] += int(r["accepted"])  # type: ignore[call-overload]
            total["lost"] += int(r["lost"])  # type: ignore[call-overload]
            total["trials"] += 1
            if others:
                failures += 1
                print(f"  answers other than 202/503: {others}", file=sys.stderr)
    print()
    print("| OUTREACH_INTAKE_MIN_REPLICAS | trials | answered 202 | lost at failover |")
    print("|---:|---:|---:|---:|")
    for replicas, total in totals.items():
        print(f"| {replicas} | {total['trials']} | {total['accepted']} | {total['lost']} |")
    if 1 in totals and totals[1]["lost"]:
        print("min replicas 1 lost registrations answered 202", file=sys.stderr)
        failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
