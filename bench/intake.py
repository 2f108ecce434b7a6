"""Intake throughput: POST /api/v1/registrations req/s against a bare Flask JSON endpoint.

Both apps run under the same gunicorn setup (default ``-w 2 -k sync``), the load comes
from ``wrk`` (one thread, 16 connections, unique addresses, realistic profile fields)
and the ratio outreach / bare Flask is printed (target >= 0.6, docs: DESIGN.md).
Extra reference lines put the figure in context and split outreach's cost: bare Flask
+ one XADD per request; + outreach's registration loader without Redis; + outreach's
accept_registration without the loader; + both, i.e. outreach's work per request in a
minimal Flask app (see bare_app.py). One more line, ``limited``, is outreach as shipped:
the default per-client rate limit (30/minute) on, behind one trusted proxy, every request
from its own forwarded client address (each wrk request carries X-Forwarded-For; the
other variants ignore it). The target ratio is taken with the rate limit off.

Run: .venv/bin/python bench/intake.py [--duration 5] [--rounds 8] [--only bare,outreach]
Redis db 14 is used (and flushed) for the store, the stream of the XADD reference and
the Celery broker that the kick of outreach's intake writes to (no worker consumes it).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from _common import (
    BENCH_DBS,
    BENCH_DIR,
    KEY_PREFIX,
    VENV_BIN,
    CpuWatch,
    fmt_rate,
    free_port,
    header,
    load_note,
    median,
    own_db,
    redis_url,
    start,
    stop,
    wait_http,
    wait_quiet,
)

DB = BENCH_DBS["intake"]
TARGET = 0.6
WRK_SCRIPT = BENCH_DIR / "post_registration.lua"


def make_assets(url: str) -> None:
    """The assets the wrk script posts to, made as a marketer would before publishing their
    forms: a registration without an API key for an unknown slug is a 422 (issue 17), and
    the asset check (per-process rules cache) is part of what is measured."""
    from outreach.config import Config
    from outreach.people.assets import create_asset
    from outreach.store import from_config

    block = re.search(r"local assets = \{(.*?)\}", WRK_SCRIPT.read_text(), re.S)
    store = from_config(Config(redis_url=url, key_prefix=KEY_PREFIX))
    for slug in re.findall(r'"([a-z0-9-]+)"', block.group(1) if block else ""):
        create_asset(store, {"slug": slug, "kind": "white_paper", "title": slug})


@dataclass
class Variant:
    name: str
    label: str
    app: str
    env: dict[str, str]
    pythonpath: str = ""
    rates: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # gunicorn CPU per request


@dataclass
class WrkResult:
    rate: float
    requests: int
    non202: int
    socket_errors: str
    latency: str
    cpu_us: float = 0.0


def variants() -> list[Variant]:
    url = redis_url(DB)
    outreach_env = {
        "OUTREACH_REDIS_URL": url,
        "OUTREACH_KEY_PREFIX": KEY_PREFIX,
        "OUTREACH_INTAKE_RATE_LIMIT": "0",
    }
    bare = str(BENCH_DIR)
    chosen = [
        Variant("bare", "bare Flask JSON endpoint (reference)", "bare_app:create_app()",
                {"BENCH_VARIANT": "bare"}, bare),
        Variant("outreach", "outreach POST /api/v1/registrations", "outreach:create_app()",
                outreach_env),
        Variant("xadd", "bare Flask + one XADD per request", "bare_app:create_app()",
                {"BENCH_VARIANT": "xadd", "BENCH_REDIS_URL": url}, bare),
        Variant("schema", "bare Flask + load_registration", "bare_app:create_app()",
                {"BENCH_VARIANT": "schema"}, bare),
        Variant("lua", "bare Flask + accept_registration (one XADD)", "bare_app:create_app()",
                {**outreach_env, "BENCH_VARIANT": "lua"}, bare),
        Variant("full", "bare Flask + load_registration + accept_registration",
                "bare_app:create_app()", {**outreach_env, "BENCH_VARIANT": "full"}, bare),
        Variant("limited", "outreach, default rate limit on (30/min per forwarded client)",
                "outreach:create_app()",
                {**outreach_env, "OUTREACH_INTAKE_RATE_LIMIT": "30/minute",
                 "OUTREACH_TRUSTED_PROXIES": "1"}),
    ]
    return chosen


def gunicorn_argv(args: argparse.Namespace, port: int, variant: Variant) -> list[str]:
    argv = [
        str(VENV_BIN / "gunicorn"),
        "-w", str(args.workers),
        "-k", args.worker_class,
        "-b", f"127.0.0.1:{port}",
        "--backlog", "2048",
        "--log-level", "warning",
    ]
    if args.worker_class == "gthread":
        argv += ["--threads", str(args.threads)]
    if variant.pythonpath:
        argv += ["--pythonpath", variant.pythonpath]
    return [*argv, variant.app]


def run_wrk(args: argparse.Namespace, port: int, duration: float, tag: str) -> WrkResult:
    argv = [
        args.wrk, "-t", str(args.wrk_threads), "-c", str(args.connections),
        "-d", f"{duration:g}s", "--latency", "-s", str(WRK_SCRIPT),
        f"http://127.0.0.1:{port}/api/v1/registrations", "--", tag,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=duration + 60)
    text = out.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    marker = re.search(r"BENCH requests=(\d+) non202=(\d+)", text)
    if marker is None:
        raise RuntimeError("wrk output without the BENCH line:\n" + text + out.stderr)
    errors = re.search(r"Socket errors: (.*)", text)
    latency = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", text)
    p99 = re.search(r"99%\s+(\S+)", text)
    return WrkResult(
        rate=rate,
        requests=int(marker.group(1)),
        non202=int(marker.group(2)),
        socket_errors=errors.group(1) if errors else "none",
        latency=(f"avg {latency.group(1)}" if latency else "?")
        + (f", p99 {p99.group(1)}" if p99 else ""),
    )


@dataclass
class Slice:
    result: WrkResult
    foreign: float  # share of the machine's CPU that other work took meanwhile
    limit: float  # --max-foreign

    @property
    def clean(self) -> bool:
        return self.foreign <= self.limit


def measure(args: argparse.Namespace, variant: Variant, port: int, pgid: int, tag: str) -> Slice:
    """One wrk slice; tried again (up to ``--attempts``) while other work on the machine
    took more than ``--max-foreign`` of the CPU."""
    for attempt in range(1, args.attempts + 1):
        wait_quiet(args.max_foreign / 2, pgid, timeout=args.quiet_timeout)
        watch = CpuWatch(pgid)
        result = run_wrk(args, port, args.duration, f"{tag}a{attempt}")
        foreign = watch.foreign_share()
        result.cpu_us = watch.groups_cpu() / max(result.requests, 1) * 1e6
        if foreign <= args.max_foreign:
            break
    return Slice(result, foreign, args.max_foreign)


def clean_or_all(values: list[float], slices: list[Slice]) -> list[float]:
    """The values of undisturbed slices, or all of them when none was undisturbed."""
    picked = [v for v, s in zip(values, slices, strict=True) if s.clean]
    return picked or values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk slice")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up load")
    parser.add_argument("--rounds", type=int, default=8,
                        help="rounds; each runs one slice per variant, in rotating order")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", default="sync", choices=("sync", "gthread"))
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--only", default="", help="comma-separated variants (default: all)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    parser.add_argument("--max-foreign", type=float, default=0.1,
                        help="a slice is disturbed when other processes took more of the CPU")
    parser.add_argument("--attempts", type=int, default=2, help="tries per slice")
    parser.add_argument("--quiet-timeout", type=float, default=20.0,
                        help="seconds to wait for a quiet machine before each try")
    args = parser.parse_args()
    if not shutil.which(args.wrk):
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2

    chosen = variants()
    if args.only:
        wanted = set(args.only.split(","))
        chosen = [v for v in chosen if v.name in wanted]
    header("intake: POST /api/v1/registrations req/s vs bare Flask (target >= 0.6)")
    setup = f"gunicorn -w {args.workers} -k {args.worker_class}"
    if args.worker_class == "gthread":
        setup += f" --threads {args.threads}"
    print(
        f"# setup: {setup} (one server per variant, all up, idle while another is loaded); "
        f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration:g}s slices, "
        f"{args.rounds} rounds in rotating order, {args.warmup:g}s warm-up each; Redis db {DB}; "
        f"rate limit off (but in 'limited'); slices with > {args.max_foreign:.0%} foreign CPU tried again "
        f"(up to {args.attempts}x) and left out of the medians when clean ones exist"
    )
    failures = 0
    slices: dict[str, list[Slice]] = {v.name: [] for v in chosen}
    with own_db(DB) as client, tempfile.TemporaryDirectory(prefix="bench-intake-") as logdir:
        make_assets(redis_url(DB))
        stream = f"{{{KEY_PREFIX}}}:intake"
        servers: dict[str, tuple[int, int]] = {}
        procs = []
        try:
            for variant in chosen:
                port = free_port()
                log = open(f"{logdir}/{variant.name}.log", "wb")  # noqa: SIM115 - closed below
                proc = start(gunicorn_argv(args, port, variant), env=variant.env, log=log)
                procs.append((proc, log))
                servers[variant.name] = (port, proc.pid)
            for variant, (proc, _) in zip(chosen, procs, strict=True):
                port, _pgid = servers[variant.name]
                wait_http(f"http://127.0.0.1:{port}/healthz", proc)
                run_wrk(args, port, args.warmup, f"w{variant.name}")
            for round_no in range(1, args.rounds + 1):
                shift = (round_no - 1) % len(chosen)
                for variant in chosen[shift:] + chosen[:shift]:
                    port, pgid = servers[variant.name]
                    stores = variant.name in ("outreach", "lua", "full", "limited")
                    before = client.xlen(stream) if stores else 0
                    piece = measure(args, variant, port, pgid, f"r{round_no}{variant.name}")
                    slices[variant.name].append(piece)
                    result = piece.result
                    note = "" if piece.clean else "  (disturbed)"
                    if stores:
                        stored = client.xlen(stream) - before
                        if stored < 0:
                            note += "  (stream emptied by another client meanwhile: not checked)"
                        elif stored < result.requests:
                            note += f"  ONLY {stored} STORED"
                            failures += 1
                    if result.non202:
                        note += f"  {result.non202} NON-202 ANSWERS"
                        failures += 1
                    print(
                        f"round {round_no} {variant.name:>9}: {fmt_rate(result.rate):>6} req/s "
                        f"({result.requests} requests, latency {result.latency}, socket errors: "
                        f"{result.socket_errors}; gunicorn CPU {result.cpu_us:.0f} us/request; "
                        f"foreign CPU {piece.foreign:.0%}){note}",
                        flush=True,
                    )
        finally:
            for proc, log in procs:
                stop(proc)
                log.close()

    print(f"# end: {load_note()}")
    for variant in chosen:
        variant.rates = [s.result.rate for s in slices[variant.name]]
        variant.cpu_us = [s.result.cpu_us for s in slices[variant.name]]
    by_name = {v.name: v for v in chosen}
    bare = by_name.get("bare")

    def rate(v: Variant) -> float:
        return median(clean_or_all(v.rates, slices[v.name]))

    def cpu(v: Variant) -> float:
        return median(clean_or_all(v.cpu_us, slices[v.name]))

    print()
    print("| variant | req/s (median) | undisturbed slices | vs bare | gunicorn CPU us/request "
          "| bare CPU / this |")
    print("|---|---:|---:|---:|---:|---:|")
    for variant in chosen:
        clean = sum(s.clean for s in slices[variant.name])
        vs = f"{rate(variant) / rate(bare):.2f}" if bare else "-"
        cpu_vs = f"{cpu(bare) / cpu(variant):.2f}" if bare and cpu(variant) else "-"
        print(f"| {variant.label} | {fmt_rate(rate(variant))} | {clean}/{len(variant.rates)} "
              f"| {vs} | {cpu(variant):.0f} | {cpu_vs} |")
    if bare and "outreach" in by_name:
        ours = by_name["outreach"]
        ratio = rate(ours) / rate(bare)
        pairs = [o.result.rate / b.result.rate
                 for o, b in zip(slices["outreach"], slices["bare"], strict=True)]
        print()
        print("per-round outreach/bare: " + ", ".join(f"{r:.2f}" for r in pairs))
        print(
            f"RATIO intake outreach/bare = {ratio:.2f} (target >= {TARGET}) -> "
            f"{'MET' if ratio >= TARGET else 'MISSED'}; by gunicorn CPU per request: "
            f"{cpu(bare) / cpu(ours):.2f}"
        )
    if failures:
        print(f"{failures} slice(s) had wrong answers or lost registrations", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
