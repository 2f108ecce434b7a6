"""Campaign sending rate into Postfix's smtp-sink vs a plain smtplib loop, in one run.

Reference: ``--connections`` processes (the worker's concurrency), each with one reused
smtplib connection, sending ``EmailMessage`` multipart text+HTML messages of the same
size as the campaign's, one recipient per transaction.
Ours: a real ``outreach worker -c <connections>`` subprocess sends a campaign of
``--recipients`` consenting leads (written by the product's ingest), created and
launched through the marketer API (Flask test client); timed from the launch until
``stats.sent`` reaches the audience size. Target (DESIGN.md): ours / reference >= 0.8.

Rounds alternate: reference, campaign, reference, campaign, ..., reference (one worker
for all; each campaign is a new one on the same list, so it has its own ledger and sends
to everyone again). A round's ratio uses the mean of the two reference runs around it;
the median over the rounds is reported, so that drift in the machine's load shows and
matters less. ``--profile`` samples the worker's pool processes
with py-spy during the campaign and prints where their time goes.

    .venv/bin/python bench/send.py [--recipients 20000] [--connections 2] [--rounds 3] [--profile DIR]

Redis database 12 (FLUSHDB before and after), key prefix ``bench``; smtp-sink on
127.0.0.1:2525 (started here when nothing listens there).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import smtplib
import statistics
import subprocess
import sys
import time
from collections import Counter
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_note, own_db  # noqa: E402
from send_common import (  # noqa: E402
    FROM_EMAIL,
    SEND_DB,
    SMTP_HOST,
    SMTP_PORT,
    Api,
    Worker,
    create_audience,
    fmt_table,
    service_env,
    smtp_sink,
    tree_cpu_seconds,
    worker,
)

# ------------------------------------------------------------------------------ reference


def reference_message(to: str, body: dict[str, str]) -> EmailMessage:
    """What a hand-written loop builds: the campaign's parts and headers, a fresh Date and
    Message-ID, one recipient."""
    msg = EmailMessage()
    msg["From"] = FROM_EMAIL
    msg["To"] = to
    msg["Subject"] = body["Subject"]
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(idstring="ref", domain="mail.example.com")
    for name in ("List-Unsubscribe", "List-Unsubscribe-Post", "X-Outreach-Campaign"):
        msg[name] = body[name]
    msg.set_content(body["text"])
    msg.add_alternative(body["html"], subtype="html")
    return msg


def _reference_sender(index: int, count: int, body: dict[str, str], barrier: Any,
                      times: Any) -> None:
    conn = smtplib.SMTP(SMTP_HOST, SMTP_PORT, timeout=30)
    conn.ehlo()
    barrier.wait()
    began, cpu = time.time(), time.process_time()
    for i in range(count):
        to = f"ref{index}.{i}@example.org"
        conn.send_message(reference_message(to, body), FROM_EMAIL, [to])
    times[3 * index: 3 * index + 3] = [began, time.time(), time.process_time() - cpu]
    conn.quit()


def reference_rate(connections: int, per_connection: int,
                   body: dict[str, str]) -> tuple[float, float]:
    """Messages/s of ``connections`` processes each sending ``per_connection`` messages, and
    their CPU milliseconds per message."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(connections)
    times = ctx.Array("d", 3 * connections)
    procs = [ctx.Process(target=_reference_sender, args=(i, per_connection, body, barrier, times))
             for i in range(connections)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a reference sender exited with {p.exitcode}")
    began = min(times[0::3])
    ended = max(times[1::3])
    total = connections * per_connection
    return total / (ended - began), 1000 * sum(times[2::3]) / total


# ------------------------------------------------------------------------------ profiling

# what a pool process's samples are spent on: the first rule (in this order) with a frame
# of that function in a sample's stack names it; frames are "function (file)". py-spy 0.4
# names a method without its class ("send (messenger.py", not "SmtpMessenger.send (messenger.py"),
# so the markers leave the class out (a marker matches either spelling).
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("send-run heartbeat thread (asleep between beats)", ("_loop (heartbeats.py",)),
    ("message to wire bytes (as_bytes + dot-stuffing)", ("dot_stuffed (messenger.py",)),
    ("ledger mark before DATA, in the SMTP dialogue (mark_data Lua)", ("before_data (deliver.py",)),
    ("SMTP round trips (MAIL, RCPT, DATA, body + reply)", ("send (messenger.py",)),
    ("DKIM: signing (OpenSSL)", ("_sign (dkim.py",)),
    ("DKIM: serialise once + canonicalise + hash", ("sign_message (dkim.py",)),
    ("build_message (headers + parts)", ("build_message (message.py",)),
    ("template render (Jinja2 sandbox)", ("render (rendering.py",)),
    ("link tracking + token signing", ("track (context.py", "sign (tokens.py")),
    ("finish_send Lua (1 round trip per message)", ("finish (outcome.py",)),
    ("rest of deliver_one", ("deliver_one (deliver.py",)),
    ("batch setup (campaign, ledger, people, context)", ("load_people (context.py",
                                                          "__init__ (context.py")),
    ("batch completion check + cleanup", ("_batch_done (batch.py",)),
    ("claim_send Lua (1 round trip per message)", ("run (__init__.py",)),
    ("rest of send_batch (heartbeat HSET every 20, ...)", ("send_batch (batch.py",)),
    ("dispatch task (audience pages)", ("dispatch (campaigns.py",)),
    ("watch task", ("watch (campaigns.py",)),
    ("Celery per-task overhead (trace, acks, publishing)", ("trace_task (trace.py",)),
]


def _frames(stack: str) -> list[str]:
    """'func (path/to/file.py:12)' -> 'func (file.py'."""
    out = []
    for frame in stack.split(";"):
        name, _, where = frame.partition(" (")
        out.append(f"{name} ({where.rsplit(':', 1)[0].rsplit('/', 1)[-1]}")
    return out


def summarise_profile(paths: list[Path]) -> str:
    """Shares of the py-spy samples (raw format, idle samples included) by category."""
    totals: Counter[str] = Counter()
    smtp_steps: Counter[str] = Counter()
    samples = 0
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            samples += count
            frames = _frames(stack)
            joined = ";".join(frames)
            label = next((name for name, markers in CATEGORIES
                          if any(m in joined for m in markers)),
                         "pool loop: waiting for / receiving the next task")
            totals[label] += count
            if label.startswith("SMTP round trips"):
                step = next((f.split(" (")[0].rpartition(".")[2] for f in frames
                             if f.endswith("(smtplib.py") and f.split(" (")[0].rpartition(".")[2]
                             in ("mail", "rcpt", "docmd", "send", "getreply")), "other")
                smtp_steps[step] += count
    if not samples:
        return "(no samples)"
    rows = [(name, f"{100 * n / samples:.1f}%") for name, n in totals.most_common()]
    out = fmt_table(("where the pool processes' time goes (wall clock, idle included)", "share"),
                    rows)
    if smtp_steps:
        smtp_total = sum(smtp_steps.values())
        rows = [(name, f"{100 * n / smtp_total:.1f}%") for name, n in smtp_steps.most_common()]
        out += "\n\n" + fmt_table(("inside the SMTP round trips (outermost smtplib call)", "share"),
                                   rows)
    return out + f"\n({samples} py-spy samples over {len(paths)} pool processes)"


def start_profilers(pids: list[int], seconds: int, out_dir: Path) -> list[tuple[subprocess.Popen[bytes],
                                                                                  Path]]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    started = []
    for pid in pids:
        path = out_dir / f"worker-child-{pid}.txt"
        proc = subprocess.Popen([py_spy, "record", "--pid", str(pid), "--duration", str(seconds),
                                 "--rate", "200", "--idle", "--nonblocking", "--format", "raw",
                                 "--output", str(path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append((proc, path))
    return started


# ------------------------------------------------------------------------------ ours


EXPERIMENT = {"experiment": {"variants": [{}, {"subject": "A second subject"}], "test_share": 0.5,
                             "decide_after": "PT1S"}}


class Campaign:
    """The audience in Redis (once), then campaigns on it, each launched and timed with a
    real worker. Every campaign has its own ledger, so each one sends to the whole list."""

    def __init__(self, recipients: int, overrides: dict[str, str],
                 extra: dict[str, Any] | None = None) -> None:
        self.recipients = recipients
        self.extra = extra  # an A/B experiment on every timed campaign (``--experiment``)
        self.env = service_env(**overrides)
        self.api = Api(self.env)
        self.audience_seconds = create_audience(self.api.store, self.api.config, recipients)
        self.list_id = self.api.lead_list()
        probe = self.api.create_campaign(self.list_id)
        self.body, wire = self.api.sample_message(probe)
        self.api.post(f"/api/v1/campaigns/{probe}/cancel")
        self.wire_bytes, self.wire = len(wire), wire
        ref = reference_message("ada.lovelace.123456@example.org", self.body)
        self.reference_bytes = len(ref.as_bytes(policy=ref.policy.clone(linesep="\r\n")))

    def run(self, w: Worker, profile: Path | None, timeout: float) -> dict[str, Any]:
        """Launch a new campaign on the list; time it until ``stats.sent`` is the list size."""
        api = self.api
        campaign_id = api.create_campaign(self.list_id, extra=self.extra)
        profilers: list[tuple[subprocess.Popen[bytes], Path]] = []
        cpu = tree_cpu_seconds(w.pid)
        began = time.perf_counter()
        api.launch(campaign_id)
        if profile is not None:
            profilers = start_profilers(w.children(), max(5, int(self.recipients / 1500)), profile)
        first_at = None
        while True:
            c = api.campaign(campaign_id)
            sent = c["stats"]["sent"]
            elapsed = time.perf_counter() - began
            if sent and first_at is None:
                first_at = elapsed
            if sent >= self.recipients or c["status"] not in ("sending", "sent"):
                break
            if elapsed > timeout:
                raise RuntimeError(f"timed out: {c}")
            time.sleep(0.1)
        elapsed = time.perf_counter() - began
        cpu = tree_cpu_seconds(w.pid) - cpu
        for proc, _ in profilers:
            proc.wait(timeout=120)
        result: dict[str, Any] = {"seconds": elapsed, "first_sent_after": first_at,
                                  "stats": c["stats"], "rate": c["stats"]["sent"] / elapsed,
                                  "cpu_ms": 1000 * cpu / max(1, c["stats"]["sent"])}
        if profilers:
            result["profile"] = summarise_profile([p for _, p in profilers if p.exists()])
        # the watch marks it sent within campaign_watch_seconds; wait so rounds do not overlap
        deadline = time.monotonic() + 30
        while api.campaign(campaign_id)["status"] == "sending" and time.monotonic() < deadline:
            time.sleep(0.2)
        return result


def dkim_overrides(algorithm: str) -> dict[str, str]:
    """A fresh key in a temporary file, and the settings that make the worker sign with it."""
    import atexit
    import tempfile

    from outreach.mail.dkim import generate_key

    fd, path = tempfile.mkstemp(prefix="bench-dkim-", suffix=".pem")
    os.write(fd, generate_key(algorithm))
    os.close(fd)
    atexit.register(os.unlink, path)
    return {"OUTREACH_DKIM_DOMAIN": "example.com", "OUTREACH_DKIM_SELECTOR": "bench",
            "OUTREACH_DKIM_PRIVATE_KEY_FILE": path,
            # outside `outreach dev` the service wants a secret of 32+ bytes
            "OUTREACH_SECRET_KEY": "bench-secret-for-the-dkim-rounds-0123456789"}


def check_signed(wire: bytes, overrides: dict[str, str]) -> str:
    """Whether the campaign's sample message verifies with dkimpy (the published key)."""
    import dkim

    from outreach.mail.dkim import DkimSigner

    signer = DkimSigner.from_file("example.com", "bench", overrides["OUTREACH_DKIM_PRIVATE_KEY_FILE"])
    data = wire[:-3].replace(b"\r\n..", b"\r\n.")  # DATA as sent: no final dot, unstuffed
    ok = dkim.verify(data, dnsfunc=lambda name, timeout=5: signer.dns_record().encode())
    if not ok:
        raise RuntimeError("the campaign's message does not verify")
    return "the campaign's message verifies with dkimpy"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=20_000, help="campaign audience size")
    parser.add_argument("--connections", type=int, default=2,
                        help="worker concurrency = reference connections (processes)")
    parser.add_argument("--per-connection", type=int, default=0,
                        help="reference messages per connection (default: recipients/connections)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="reference, campaign, reference, campaign, ..., reference")
    parser.add_argument("--batch-size", type=int, help="OUTREACH_SEND_BATCH_SIZE for the worker")
    parser.add_argument("--window", type=int, help="OUTREACH_SEND_WINDOW_BATCHES for the worker")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="py-spy the worker's pool processes during the last campaign")
    parser.add_argument("--timeout", type=float, default=900, help="give up on a campaign after")
    parser.add_argument("--dkim", choices=["rsa", "ed25519"],
                        help="the worker signs every message (RSA-2048 or Ed25519); the "
                             "reference stays unsigned")
    parser.add_argument("--experiment", action="store_true",
                        help="every timed campaign is an A/B test (two subjects, test share 50 "
                             "%%, decided after 1 s by the watch while the test share sends)")
    args = parser.parse_args(argv)
    overrides: dict[str, str] = {}
    if args.dkim:
        overrides.update(dkim_overrides(args.dkim))
    if args.batch_size:
        overrides["OUTREACH_SEND_BATCH_SIZE"] = str(args.batch_size)
    if args.window:
        overrides["OUTREACH_SEND_WINDOW_BATCHES"] = str(args.window)
    per_connection = args.per_connection or max(1, args.recipients // args.connections)
    n = args.connections

    print(f"# send: campaign vs smtplib into smtp-sink | {os.cpu_count()} CPUs | {load_note()}",
          flush=True)
    references: list[tuple[float, float]] = []
    results: list[dict[str, Any]] = []
    with own_db(SEND_DB), smtp_sink() as sink_note:
        print(f"# {sink_note}; Redis db {SEND_DB}, prefix bench; overrides {overrides or 'none'}")
        campaign = Campaign(args.recipients, overrides, EXPERIMENT if args.experiment else None)
        if args.dkim:
            print(f"# DKIM {args.dkim}: {check_signed(campaign.wire, overrides)}")
        print(f"audience: {args.recipients:,} leads via ingest apply_batch in "
              f"{campaign.audience_seconds:.1f}s; message bytes: ours {campaign.wire_bytes:,}, "
              f"reference {campaign.reference_bytes:,}", flush=True)
        with worker(campaign.env, concurrency=n) as w:
            # the reference sends the campaign's own rendered message (same size on the wire)
            references.append(reference_rate(n, per_connection, campaign.body))
            print(f"  reference {references[-1][0]:,.0f} msgs/s | {load_note()}", flush=True)
            for round_no in range(args.rounds):
                last = round_no == args.rounds - 1
                results.append(campaign.run(w, args.profile if last else None, args.timeout))
                print(f"  ours      {results[-1]['rate']:,.0f} msgs/s | {load_note()}", flush=True)
                references.append(reference_rate(n, per_connection, campaign.body))
                print(f"  reference {references[-1][0]:,.0f} msgs/s | {load_note()}", flush=True)
    rows = []
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    for i, result in enumerate(results):
        reference = (references[i][0] + references[i + 1][0]) / 2
        reference_cpu = (references[i][1] + references[i + 1][1]) / 2
        ratios.append(result["rate"] / reference)
        cpu_ratios.append(reference_cpu / result["cpu_ms"])
        stats = result["stats"]
        rows.append((i + 1, f"{reference:,.0f}", f"{reference_cpu:.2f}", f"{stats['sent']:,}",
                     f"{result['seconds']:.1f}", f"{result['rate']:,.0f}", f"{result['cpu_ms']:.2f}",
                     f"{ratios[-1]:.2f}", f"{cpu_ratios[-1]:.2f}",
                     f"{stats['failed']}/{stats['unknown']}"))
    print()
    print(f"reference = {n} processes x {per_connection:,} messages, the mean of the runs before "
          "and after the round; CPU = user+sys of the senders (reference) or of the worker's "
          "main and pool processes (ours), per message")
    print(fmt_table(("round", "ref msgs/s", "ref CPU ms/msg", "ours sent", "ours s", "ours msgs/s",
                     "ours CPU ms/msg", "ratio msgs/s", "ratio CPU", "failed/unknown"), rows))
    ratio = statistics.median(ratios)
    verdict = "meets" if ratio >= 0.8 else "misses"
    print(f"median ratio ours/reference = {ratio:.2f} ({verdict} the 0.8 target); CPU-per-message "
          f"ratio {statistics.median(cpu_ratios):.2f} (less sensitive to other load); reference "
          f"{statistics.median(r[0] for r in references):,.0f} msgs/s, ours "
          f"{statistics.median(r['rate'] for r in results):,.0f} msgs/s (medians); worker -c {n}, "
          f"first message {results[0]['first_sent_after']:.2f}s after launch | {load_note()}")
    if "profile" in results[-1]:
        print()
        print(results[-1]["profile"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
