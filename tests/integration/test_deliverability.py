"""Deliverability end to end: a real worker sends a DKIM-signed, VERP-addressed campaign to
a real SMTP server; a DSN is delivered by smtplib to a real ``outreach inbound`` process;
the recipient shows ``bounced`` and is suppressed."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys

import dkim
import pytest
from bounce_reports import BOUNCE_DOMAIN, arf, dsn

from outreach.mail.dkim import DkimSigner, generate_key

from .conftest import wait_for

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_campaign_signed_and_a_dsn_through_outreach_inbound_suppresses(make_service, tmp_path):
    key = tmp_path / "sel.private.pem"
    key.write_bytes(generate_key("rsa"))
    service = make_service(bounce_domain=BOUNCE_DOMAIN, dkim_domain="mail.example.com",
                           dkim_selector="sel", dkim_private_key_file=str(key))
    service.start_worker()
    emails = [f"r{i}@example.org" for i in range(6)]
    for email in emails:
        service.register(kind="white_paper", asset="guide", email=email, first_name="R", consent=True)
    wait_for(lambda: service.processed_count() >= len(emails), timeout=60, message="ingest")
    (list_id,) = [lst["id"] for lst in service.all_items("/api/v1/lists")
                  if lst["asset"] and lst["asset"]["slug"] == "guide" and lst["member_type"] == "lead"]
    template = service.post("/api/v1/templates", {
        "name": "t", "subject": "Grüße, {{ first_name }}", "html": "<p>Hello</p>",
        "text": "Hello"}, status=201)
    campaign_id = service.post("/api/v1/campaigns", {
        "name": "c", "template_id": template["id"], "list_ids": [list_id],
        "from_email": "news@mail.example.com"}, status=201)["id"]
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    wait_for(lambda: service.get(f"/api/v1/campaigns/{campaign_id}")["stats"]["sent"] == len(emails),
             timeout=90, message="the campaign to be sent")

    signer = DkimSigner.from_file("mail.example.com", "sel", str(key))
    by_rcpt = {}
    for captured in service.smtp.messages:
        assert captured.mail_from.startswith("b-") and captured.mail_from.endswith("@" + BOUNCE_DOMAIN)
        assert dkim.verify(captured.data, dnsfunc=lambda name, timeout=5: signer.dns_record().encode())
        header = captured.data.split(b"\r\n\r\n", 1)[0].lower().replace(b"\r\n\t", b" ")
        assert b"list-unsubscribe:list-unsubscribe-post" in header.replace(b"\r\n ", b"")
        by_rcpt[captured.rcpt_tos[0]] = captured
    assert set(by_rcpt) == set(emails)

    port = _free_port()
    log = (tmp_path / "inbound.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "outreach.cli.main", "inbound", "--host", "127.0.0.1",
                             "--port", str(port)], env={**os.environ, **service.env}, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path)
    try:
        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        wait_for(listening, timeout=30, message="outreach inbound to listen")
        hard, soft = by_rcpt["r0@example.org"], by_rcpt["r1@example.org"]
        complaint = by_rcpt["r2@example.org"]
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.ehlo()
            smtp.mail("")
            code, _ = smtp.rcpt("someone@example.net")
            assert code == 550  # no relaying
            smtp.rset()
            for _ in range(2):  # the same DSN twice counts once
                smtp.sendmail("", [hard.mail_from], dsn(
                    hard.data, "r0@example.org", "5.1.1",
                    "550 5.1.1 <r0@example.org>: Recipient address rejected: User unknown"))
            smtp.sendmail("", [soft.mail_from], dsn(soft.data, "r1@example.org", "4.2.2",
                                                    "452 4.2.2 Mailbox full", action="delayed"))
            smtp.sendmail("", [f"fbl@{BOUNCE_DOMAIN}"], arf(complaint.data, "r2@example.org"))

        def stats() -> dict:
            return service.get(f"/api/v1/campaigns/{campaign_id}")["stats"]
        wait_for(lambda: stats()["bounced"] == 1 and stats()["complained"] == 1
                 and stats()["soft_bounced"] == 1, timeout=30, message="the reports to be applied")
        bounced = service.all_items(f"/api/v1/campaigns/{campaign_id}/recipients?status=bounced")
        assert [r["email"] for r in bounced] == ["r0@example.org"]
        complained = service.all_items(f"/api/v1/campaigns/{campaign_id}/recipients?status=complained")
        assert [r["email"] for r in complained] == ["r2@example.org"]
        suppressions = {s["email"]: s for s in service.all_items("/api/v1/suppressions")}
        assert suppressions["r0@example.org"]["reason"] == "hard_bounce"
        assert suppressions["r0@example.org"]["campaign_id"] == campaign_id
        assert suppressions["r2@example.org"]["reason"] == "complaint"
        assert "r1@example.org" not in suppressions  # one soft bounce is below the limit
        assert stats()["bounced"] == 1  # the duplicate changed nothing
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
        log.close()


def test_inbound_refuses_to_start_without_a_bounce_domain(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTREACH_")}
    env.update({"OUTREACH_REDIS_URL": "redis://127.0.0.1:6379/9",
                "OUTREACH_SECRET_KEY": "integration-secret-key-0123456789-abcdefghijkl"})
    done = subprocess.run([sys.executable, "-m", "outreach.cli.main", "inbound", "--port", str(_free_port())],
                          env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode != 0
    assert "OUTREACH_BOUNCE_DOMAIN" in done.stderr
