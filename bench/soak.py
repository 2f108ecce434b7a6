"""Soak: intake at 300 req/s for 10 minutes while a 100,000-recipient campaign sends and
the conversion pass runs; API and worker memory sampled, every count checked at the end.

Everything is real and runs as an operator runs it: a redis-server of this benchmark's own
(private port and tmp dir, AOF everysec as in docker-compose), the API under
``gunicorn -w 2``, one ``outreach worker -c 2`` (ingest, send, default), ``outreach beat``
(conversion pass every ``--conversion-every`` seconds, safety nets), Postfix's
``smtp-sink`` (else: exit with a message). The 100,000 leads are written first by the
product's ingest (``apply_batch``); the campaign is paced (``rate_per_second``) to span
about 80 % of the soak. The intake load is paced client threads over keep-alive
connections: a share of the registrations repeat addresses of an "engaged" pool, whose
scores then cross the promotion threshold, so the conversion pass has work.

Printed: RSS of the API (gunicorn master + workers) and of the worker (Celery main
process + pool) every ``--sample`` seconds, their least-squares slope (MiB/min, first 20 %
of the samples left out as warm-up), non-2xx answers, and the checks at the end: every
202 processed (metric), the campaign sent to exactly the audience (ledger: nothing
queued, in flight, failed or unknown), no lead above the threshold left unconverted.

Run: .venv/bin/python bench/soak.py [--minutes 10] [--rate 300] [--recipients 100000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from _common import VENV_BIN, free_port, header, load_note, start, stop, wait_http
from _redis import RedisServer
from send_common import Api, child_pids, create_audience, rss_mb, service_env, smtp_sink, worker


class PacedLoad:
    """``rate`` registrations per second from ``threads`` threads, each on its own
    keep-alive connection, on an absolute schedule (a slow answer is caught up)."""

    def __init__(self, port: int, rate: float, threads: int, repeat_share: float,
                 engaged: list[str]) -> None:
        self.port, self.rate, self.repeat_share, self.engaged = port, rate, repeat_share, engaged
        self.statuses: Counter[int] = Counter()
        self.accepted = 0
        self.slowest = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n, threads), daemon=True)
                         for n in range(threads)]

    def start(self) -> PacedLoad:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _run(self, n: int, threads: int) -> None:
        rng = random.Random(n)
        interval = threads / self.rate
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        i = 0
        while not self._stop.is_set():
            due = self.started + (i * threads + n) / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, interval))
                continue
            kind, asset = "event", "soak-summit"
            if rng.random() < self.repeat_share:
                # an engaged lead registers for another asset: its score rises (a new asset,
                # an event after a white paper) until the conversion pass promotes it
                email = rng.choice(self.engaged)
                kind = "event" if rng.random() < 0.3 else "white_paper"
                asset = f"soak-{kind.replace('_', '-')}-{rng.randrange(10)}"
            else:
                email = f"soak.{n}.{i}@example.net"
            body = json.dumps({"kind": kind, "asset": asset, "email": email,
                               "first_name": "Soak", "company": f"Soak Testing {n}",
                               "consent": True})
            i += 1
            began = time.monotonic()
            try:
                conn.request("POST", "/api/v1/registrations", body,
                             {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                status = 0
            with self._lock:
                self.statuses[status] += 1
                self.accepted += status == 202
                self.slowest = max(self.slowest, time.monotonic() - began)


def tree_rss(pid: int) -> float:
    """RSS (MiB) of ``pid`` and its children (gunicorn workers, the Celery pool)."""
    return sum(rss_mb(p) or 0.0 for p in (pid, *child_pids(pid)))


def slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope in MiB per minute, the first 20 % of the samples left out."""
    kept = samples[len(samples) // 5:]
    if len(kept) < 3:
        return 0.0
    n = len(kept)
    mean_t = sum(t for t, _ in kept) / n
    mean_v = sum(v for _, v in kept) / n
    var = sum((t - mean_t) ** 2 for t, _ in kept)
    cov = sum((t - mean_t) * (v - mean_v) for t, v in kept)
    return cov / var * 60 if var else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=300.0, help="registrations per second")
    parser.add_argument("--threads", type=int, default=6, help="client threads")
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--repeat-share", type=float, default=0.2,
                        help="share of registrations from the engaged pool (repeats)")
    parser.add_argument("--engaged", type=int, default=2000, help="size of the engaged pool")
    parser.add_argument("--conversion-every", type=float, default=60.0)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    args = parser.parse_args()
    header(f"soak: intake {args.rate:g}/s for {args.minutes:g} min + a "
           f"{args.recipients:,}-recipient campaign + conversion pass")
    duration = args.minutes * 60
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        server = RedisServer(Path(tmp) / "redis", aof="everysec").start()
        smtp_port = free_port()
        env = service_env(
            OUTREACH_REDIS_URL=server.url, OUTREACH_SMTP_PORT=str(smtp_port),
            OUTREACH_SECRET_KEY="bench-soak-secret-key-0123456789abcdefghij",
            OUTREACH_CONVERSION_INTERVAL_SECONDS=str(args.conversion_every))
        procs = []
        try:
            with smtp_sink(port=smtp_port) as sink_note:
                print(f"# {sink_note}; redis-server {server.port} (AOF everysec, tmp dir)")
                api_app = Api(env)
                store, config = api_app.store, api_app.config
                seconds = create_audience(store, config, args.recipients)
                print(f"# audience: {args.recipients:,} leads written by the product's ingest "
                      f"in {seconds:.1f} s")
                metrics = store.keys.metrics
                processed_before = int(store.r.hget(metrics, "registrations_processed") or 0)
                with worker(env, concurrency=2, queues="ingest,send,default") as w:
                    beat_log = open(Path(tmp) / "beat.log", "wb")  # noqa: SIM115 - closed below
                    beat = start([sys.executable, "-m", "outreach.cli.main", "beat", "-l", "INFO",
                                  "-s", str(Path(tmp) / "beat-schedule")], env=env, log=beat_log,
                                 cwd=Path(tmp))
                    api_port = free_port()
                    api_log = open(Path(tmp) / "gunicorn.log", "wb")  # noqa: SIM115
                    api = start([str(VENV_BIN / "gunicorn"), "-w", "2", "-b",
                                 f"127.0.0.1:{api_port}", "--log-level", "warning",
                                 "outreach:create_app()"], env=env, log=api_log)
                    procs += [(beat, beat_log), (api, api_log)]
                    wait_http(f"http://127.0.0.1:{api_port}/healthz", api)
                    campaign_rate = args.recipients / (0.8 * duration)
                    list_id = api_app.lead_list()
                    builtin = next(t for t in api_app.get("/api/v1/templates/builtin")
                                   if t["name"] == "white_paper_followup")
                    template = api_app.post("/api/v1/templates", {
                        k: builtin[k] for k in ("name", "subject", "html", "text")}, status=201)
                    campaign_id = api_app.post("/api/v1/campaigns", {
                        "name": "Soak", "template_id": template["id"], "list_ids": [list_id],
                        "from_email": "news@mail.example.com",
                        "rate_per_second": round(campaign_rate, 1)}, status=201)["id"]
                    api_app.launch(campaign_id)
                    print(f"# campaign {campaign_id}: {args.recipients:,} recipients at "
                          f"{campaign_rate:.0f}/s; intake {args.rate:g}/s from {args.threads} "
                          f"threads, {args.repeat_share:.0%} repeats from {args.engaged} engaged "
                          f"addresses; conversion pass every {args.conversion_every:g} s")
                    engaged = [f"engaged.{i}@example.net" for i in range(args.engaged)]
                    load = PacedLoad(api_port, args.rate, args.threads, args.repeat_share,
                                     engaged).start()
                    api_rss: list[tuple[float, float]] = []
                    worker_rss: list[tuple[float, float]] = []
                    began = time.monotonic()
                    print("| t (s) | accepted | non-2xx | sent | API RSS MiB | worker RSS MiB "
                          "| Redis used MiB |")
                    print("|---:|---:|---:|---:|---:|---:|---:|")
                    while time.monotonic() - began < duration:
                        time.sleep(args.sample)
                        t = time.monotonic() - began
                        a, wk = tree_rss(api.pid), tree_rss(w.pid)
                        api_rss.append((t, a))
                        worker_rss.append((t, wk))
                        sent = api_app.campaign(campaign_id)["stats"]["sent"]
                        used = int(server.client().info("memory")["used_memory"]) / 2**20
                        bad = sum(v for k, v in load.statuses.items() if not 200 <= k < 300)
                        print(f"| {t:.0f} | {load.accepted} | {bad} | {sent} | {a:.1f} | "
                              f"{wk:.1f} | {used:.1f} |", flush=True)
                    load.stop()
                    elapsed = time.monotonic() - load.started
                    achieved = sum(load.statuses.values()) / elapsed
                    print(f"# intake: {sum(load.statuses.values())} requests in {elapsed:.0f} s "
                          f"({achieved:.0f}/s), answers {dict(load.statuses)}, slowest "
                          f"{load.slowest:.2f} s")
                    non2xx = sum(v for k, v in load.statuses.items() if not 200 <= k < 300)
                    if non2xx:
                        failures.append(f"{non2xx} non-2xx answers")
                    # drain: the campaign finishes, every accepted registration is processed
                    deadline = time.monotonic() + 900
                    expected = processed_before + load.accepted
                    while time.monotonic() < deadline:
                        campaign = api_app.campaign(campaign_id)
                        processed = int(store.r.hget(metrics, "registrations_processed") or 0)
                        if campaign["status"] == "sent" and processed >= expected:
                            break
                        time.sleep(2)
                    campaign = api_app.campaign(campaign_id)
                    processed = int(store.r.hget(metrics, "registrations_processed") or 0)
                    print(f"# after the load: campaign {campaign['status']} {campaign['stats']} "
                          f"{time.monotonic() - began - duration:.0f} s after the soak's end")
                    print(f"# registrations processed: {processed - processed_before} of "
                          f"{load.accepted} accepted")
                    if processed - processed_before != load.accepted:
                        failures.append(f"processed {processed - processed_before} != accepted "
                                        f"{load.accepted}")
                    stats = campaign["stats"]
                    if campaign["status"] != "sent" or stats["sent"] != args.recipients:
                        failures.append(f"campaign {campaign['status']}, sent {stats['sent']} of "
                                        f"{args.recipients}")
                    if stats.get("failed") or stats.get("unknown"):
                        failures.append(f"failed {stats.get('failed')} unknown {stats.get('unknown')}")
                    ledger = Counter(v[0] for v in store.r.hvals(
                        store.keys.campaign_ledger(campaign_id)))
                    print(f"# ledger states: {dict(ledger)} (S sent; q/s would be queued/in flight)")
                    if ledger.get("S", 0) != args.recipients or set(ledger) - {"S"}:
                        failures.append(f"ledger {dict(ledger)}")
                    # conversion: the passes ran; one more finds only what crossed the
                    # threshold since the last one, and then nothing is left above it
                    from outreach.sales.qualify import run_conversion

                    last = run_conversion(store, config)["promoted"]
                    left = 0
                    ids = store.r.zrangebyscore(store.keys.lead_scores,
                                                config.promotion_threshold, "+inf")
                    pipe = store.r.pipeline(transaction=False)
                    for lead_id in ids:
                        pipe.hmget(store.keys.lead(lead_id), "status", "consent")
                    for status, consent in pipe.execute():
                        left += status == "new" and consent == "1"
                    beat_runs = (Path(tmp) / "beat.log").read_text(errors="replace").count(
                        "outreach.conversion.run")
                    print(f"# conversion: {len(ids)} leads at or above {config.promotion_threshold}; "
                          f"beat sent the pass {beat_runs} time(s); a final pass promoted {last}; "
                          f"left unconverted: {left}")
                    if left:
                        failures.append(f"{left} leads above the threshold not converted")
                    if not beat_runs:
                        failures.append("the conversion pass never ran")
                    if not ids:
                        failures.append("no lead reached the threshold: the pass had no work")
                    print(f"# RSS slope (MiB/min, first 20 % left out): API {slope(api_rss):+.2f} "
                          f"({api_rss[0][1]:.1f} -> {api_rss[-1][1]:.1f} MiB), worker "
                          f"{slope(worker_rss):+.2f} ({worker_rss[0][1]:.1f} -> "
                          f"{worker_rss[-1][1]:.1f} MiB)")
        finally:
            for proc, log in procs:
                stop(proc)
                log.close()
            server.kill()
    print(f"# end: {load_note()}")
    if failures:
        print("SOAK FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    print("SOAK OK: 0 non-2xx, every count exact")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
