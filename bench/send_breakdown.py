"""What one campaign message costs, step by step, in one process (no Celery, no pool).

The product's per-message steps (``outreach.campaigns.sending``) are timed on their own
against the reference loop's (``EmailMessage`` + ``smtplib.send_message``), so that the
gap measured by ``send.py`` can be attributed: rendering, link tracking and token
signing, building the message, turning it into wire bytes, the two Lua round trips
(claim before, finish after the SMTP transaction) and the SMTP transaction itself.

    .venv/bin/python bench/send_breakdown.py [--messages 3000]

Redis database 12 (FLUSHDB before and after), key prefix ``bench``; smtp-sink on
127.0.0.1:2525 (started here when nothing listens there).
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
import sys
import time
from collections.abc import Callable
from email.generator import BytesGenerator
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_note, own_db  # noqa: E402
from send import reference_message  # noqa: E402
from send_common import (  # noqa: E402
    FROM_EMAIL,
    SEND_DB,
    SMTP_HOST,
    SMTP_PORT,
    Api,
    create_audience,
    fmt_table,
    service_env,
    smtp_sink,
)


def per_call_us(fn: Callable[[int], object], n: int, repeats: int = 3) -> float:
    """Median over ``repeats`` of the mean microseconds of ``fn(i)`` for i in range(n)."""
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        for i in range(n):
            fn(i)
        runs.append((time.perf_counter() - began) / n * 1e6)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=3000, help="iterations per step")
    args = parser.parse_args(argv)
    n = args.messages

    from outreach.campaigns import dispatch, lifecycle
    from outreach.campaigns.sending.batch import send_batch
    from outreach.campaigns.sending.context import CampaignContext, load_people
    from outreach.mail.message import build_message
    from outreach.mail.smtp.messenger import SmtpMessenger, dot_stuffed
    from outreach.platform.jobs import NoJobs

    print(f"# send breakdown: per-message steps, one process | {load_note()}", flush=True)
    rows: list[tuple[str, str, str]] = []
    with own_db(SEND_DB), smtp_sink() as sink_note:
        print(f"# {sink_note}")
        api = Api(service_env())
        store, config, keys = api.store, api.config, api.store.keys
        create_audience(store, config, n + 10)
        campaign_id = api.create_campaign(api.lead_list())
        body, _ = api.sample_message(campaign_id)
        h = store.r.hgetall(keys.campaign(campaign_id))
        ctx = CampaignContext(store, config, campaign_id, h)
        people = [load_people(store, [f"l:ld{i}"])[f"l:ld{i}"] for i in (1, 2, 3)]
        person = people[0]
        email = str(person["email"])
        unsubscribe = f"{ctx.base}/u/" + ctx.tokens.sign("unsubscribe", [campaign_id, "l:ld1"])
        variables = {**person, "email": email, "person": dict(person),
                     "unsubscribe_url": unsubscribe, "asset": ctx.asset, "campaign": ctx.campaign}
        subject, html, text = ctx.template.render(variables)

        def ref_build(i: int) -> bytes:
            msg = reference_message(f"r{i}@example.org", body)
            out = BytesIO()
            BytesGenerator(out, policy=msg.policy.clone(linesep="\r\n")).flatten(msg)
            return out.getvalue()

        def ours_build(i: int) -> bytes:
            msg = build_message(from_email=ctx.from_email, to_email=f"r{i}@example.org",
                                subject=subject, text=text, html=body["html"],
                                unsubscribe_url=unsubscribe, unsubscribe_mailto="mailto:u@x.org",
                                campaign_id=campaign_id)
            return dot_stuffed(msg)

        def ours_build_only(i: int) -> object:
            return build_message(from_email=ctx.from_email, to_email=f"r{i}@example.org",
                                 subject=subject, text=text, html=body["html"],
                                 unsubscribe_url=unsubscribe, unsubscribe_mailto="mailto:u@x.org",
                                 campaign_id=campaign_id)

        def ours_render(i: int) -> object:
            return ctx.template.render(variables)

        def ours_track(i: int) -> object:
            ctx.tokens.sign("unsubscribe", [campaign_id, f"l:ld{i}"])
            return ctx.track(html, f"l:ld{i}")

        class WireOnly:
            """A messenger that makes the wire bytes and sends nothing."""

            def send(self, msg: object, mail_from: str, rcpt_to: str) -> str:
                dot_stuffed(msg)  # type: ignore[arg-type]
                return "250 ok"

        def whole_send_batches(count: int) -> tuple[float, float, int]:
            """The product's send_batch (claim, render, track, build, wire bytes, finish) on
            a launched campaign, SMTP left out; returns (µs/message sent, µs/recipient in
            dispatch, messages)."""
            jobs = NoJobs()
            cid = api.create_campaign(api.lead_list())
            lifecycle.launch(store, jobs, cid)
            sent = 0
            send_s = dispatch_s = 0.0
            dispatched = 0
            while sent < count:
                jobs.calls.clear()
                began = time.perf_counter()
                dispatch.dispatch(store, config, jobs, cid)
                dispatch_s += time.perf_counter() - began
                batches = [args[1] for name, args in jobs.calls if name == "send_batch"]
                if not batches:
                    break
                dispatched += 100 * len(batches)
                for batch_no in batches:
                    began = time.perf_counter()
                    result = send_batch(store, config, WireOnly(), jobs, cid, int(batch_no))
                    send_s += time.perf_counter() - began
                    sent += result.sent
            store.r.hset(keys.campaign(cid), "status", "cancelled")
            return send_s / max(1, sent) * 1e6, dispatch_s / max(1, dispatched) * 1e6, sent

        wire = ours_build(0)
        ref_msg = reference_message("r@example.org", body)
        conn = smtplib.SMTP(SMTP_HOST, SMTP_PORT)
        conn.ehlo()
        messenger = SmtpMessenger(config)

        def ref_smtp(i: int) -> object:
            return conn.send_message(ref_msg, FROM_EMAIL, [f"r{i}@example.org"])

        def ours_smtp_wire(i: int) -> object:
            c = messenger._connection()
            c.mail(FROM_EMAIL)
            c.rcpt(f"r{i}@example.org")
            c.docmd("data")
            c.send(wire)
            return c.getreply()

        def bare_smtp(i: int) -> object:
            return conn.sendmail(FROM_EMAIL, [f"r{i}@example.org"], wire[:-3])

        steps: list[tuple[str, str, Callable[[int], object]]] = [
            ("reference: EmailMessage + flatten (what send_message does before SMTP)", "ref",
             ref_build),
            ("reference: send_message of a built EmailMessage (flatten + SMTP)", "ref",
             ref_smtp),
            ("ours: template render (subject, html, text)", "ours", ours_render),
            ("ours: unsubscribe token + link tracking (2 links, pixel)", "ours", ours_track),
            ("ours: build_message", "ours", ours_build_only),
            ("ours: build_message + dot_stuffed (wire bytes)", "ours", ours_build),
            ("ours: SMTP transaction with ready bytes (MAIL, RCPT, DATA, body)", "ours",
             ours_smtp_wire),
            ("either: smtplib.sendmail with ready bytes", "-", bare_smtp),
        ]
        for label, who, fn in steps:
            us = per_call_us(fn, n)
            rows.append((label, who, f"{us:,.0f}"))
            print(f"  {label}: {us:,.0f} µs", flush=True)
        runs = [whole_send_batches(n) for _ in range(3)]
        per_message = statistics.median(r[0] for r in runs)
        per_dispatch = statistics.median(r[1] for r in runs)
        rows.append((f"ours: sending.send_batch without SMTP, per message ({runs[0][2]:,} sent)",
                     "ours", f"{per_message:,.0f}"))
        rows.append(("ours: campaigns.dispatch, per recipient queued", "ours", f"{per_dispatch:,.0f}"))
        print(f"  send_batch w/o SMTP {per_message:,.0f} µs/msg; dispatch {per_dispatch:,.0f} µs")
        conn.quit()
        messenger.close()
    print()
    print(fmt_table(("step (per message)", "side", "µs"), rows))
    print(f"| {load_note()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
