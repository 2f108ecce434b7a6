"""Bounces made by real software, through both intake doors, against real parts.

- **Postfix's own DSNs.** A real ``outreach worker`` sends a VERP campaign to a private
  Postfix instance (tests/integration/postfix_proc.py) that accepts every recipient at
  RCPT time and delivers with virtual(8): ``nouser@`` is not in its mailbox table (virtual
  bounces it, ``5.1.1 unknown user``), ``full@`` is an mbox file already at
  ``virtual_mailbox_limit`` (the write fails with EFBIG: ``5.2.2``). Postfix's bounce(8)
  writes the DSNs and returns them to the campaign's VERP envelope sender; a
  ``transport_maps`` entry sends mail for the bounce domain to a real ``outreach inbound``
  (SMTP door) or to a capture server whose messages are appended to a real Dovecot IMAP
  mailbox (mailbox door, tests/integration/dovecot_proc.py).
- **Real-world samples** (tests/fixtures/bounces/, sources and licences in its README): a
  Gmail DSN, two Exchange DSNs, Gmail's 5.2.2 over-quota reply in a relay's DSN, Yahoo's
  ARF complaint, and a plain-text Gmail bounce of 2006 that no DSN parser reads. Each
  names someone else, so only the failed recipient's address and the quoted original
  ``Message-ID`` are replaced by those of a message of the campaign (``_retarget``);
  nothing else is touched. flufl.bounce's scanner must find the same recipient.

Outcomes: 5.1.1 -> hard: ledger ``bounced``, campaign ``bounced``, suppressed
(``hard_bounce``); 5.2.2 -> soft: ``soft_bounced`` counted, not suppressed until
``OUTREACH_SOFT_BOUNCE_LIMIT`` (2 here) soft bounces (Postfix bounces ``full@`` again in a
second campaign); ARF -> ``complained``, suppressed (``complaint``); the unreadable bounce
changes nothing (the mailbox door keeps it for a human). Each event is on the person's
timeline. The mailbox door deletes what it processed.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from bounce_reports import BOUNCE_DOMAIN

from outreach.mail import verp
from outreach.mail.capture import SmtpCapture
from outreach.mail.reports import parse
from outreach.people.records import person_events

from .conftest import Service, wait_for
from .dovecot_proc import running_dovecot
from .postfix_proc import Postfix, free_port, running_postfix

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bounces"
PEOPLE = "people.example"


@dataclass(frozen=True)
class Sample:
    file: str
    rcpt: str  # the failed recipient the sample names
    message_id: str  # the Message-ID of the original message it quotes (without <>)
    kind: str  # the classifier's verdict for the sample's status
    status: str


# person (local part at PEOPLE) -> the sample retargeted at that person's message
CORPUS = {
    "gmail": Sample("sisimai-rhost-gsuite-14.eml", "libsisimai-2@googlegroups.com",
                    "144493c0-8548-4b2b-987f-ae719df82545@Spark", "hard", "5.1.1"),
    "exchange": Sample("flufl-dsn_13.txt", "marcooherbst@cardinal.com",
                       "mailman.8262.1143060203.1568.wed_ride@grizz.org", "hard", "5.1.1"),
    "exchange2013": Sample("sisimai-lhost-exchange2007-06.eml", "transports@agglo-saumur.fr",
                           "1513177790.ha3dsljxgizc2mjrgq2dkobx@mb.newsletter-autos.fr", "hard", "5.1.1"),
    "quota": Sample("sisimai-rhost-google-05.eml", "kijitora@google.example.com",
                    "qbddfL3NB0z0D2Ld@smtp-gw1.example.jp", "soft", "5.2.2"),
    "fbl": Sample("sisimai-arf-02.eml", "this-local-part-does-not-exist-on-yahoo@yahoo.com",
                  "000000000000000000000000.smtp@example.com", "complaint", ""),
}
UNREADABLE = "flufl-simple_17.txt"  # Gmail, 2006: "Delivery to the following recipient failed"

PEOPLE_LOCAL = ["ok", "nouser", "full", *CORPUS]
HARD = {f"{p}@{PEOPLE}" for p in ("nouser", "gmail", "exchange", "exchange2013")}
SOFT = {f"full@{PEOPLE}", f"quota@{PEOPLE}"}
COMPLAINED = {f"fbl@{PEOPLE}"}
MBOX_LIMIT = 200_000


def _addr(local: str) -> str:
    return f"{local}@{PEOPLE}"


def _retarget(sample: Sample, to: str, message_id: str) -> bytes:
    """The sample with its failed recipient and its original's Message-ID replaced by a
    message of ours; nothing else changes (line ends become CRLF, as mail travels)."""
    raw = (FIXTURES / sample.file).read_bytes()
    assert re.search(re.escape(sample.rcpt.encode()), raw, re.I), sample
    assert sample.message_id.encode() in raw, sample
    raw = re.sub(re.escape(sample.rcpt.encode()), to.encode(), raw, flags=re.I)
    raw = raw.replace(sample.message_id.encode(), message_id.strip("<>").encode())
    return _crlf(raw)


def _crlf(raw: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", raw)


def _flufl_finds(raw: bytes) -> set[str]:
    from flufl.bounce import scan_message

    return {a.decode().lower() for a in scan_message(email.message_from_bytes(raw))}


# ---------------------------------------------------------------- the parts


def _postfix(bounce_port: int) -> Any:
    """Postfix that takes every recipient at RCPT time and bounces later: ``nouser@`` is in
    no mailbox table, ``full@`` is an mbox at ``virtual_mailbox_limit``; mail for the
    bounce domain goes to 127.0.0.1:``bounce_port``."""
    return running_postfix(
        mailboxes="if !/^nouser@/\n/^full@/ full\n/^[^@]+@/ inbox/\nendif\n",
        main_extra=("smtpd_reject_unlisted_recipient = no\n"
                    "transport_maps = texthash:{etc}/transport\n"
                    f"virtual_mailbox_limit = {MBOX_LIMIT}\nmessage_size_limit = {MBOX_LIMIT // 2}\n"),
        files={"transport": f"{BOUNCE_DOMAIN} smtp:[127.0.0.1]:{bounce_port}\n"})


def _fill_the_full_mailbox(postfix: Postfix) -> None:
    mbox = postfix.maildir / "full"
    mbox.write_text("From old@example.org Thu Jan  1 00:00:00 2026\nSubject: old\n\n"
                    + "x" * (MBOX_LIMIT - 100) + "\n\n")
    shutil.chown(mbox, "postfix", "postfix")


@contextmanager
def _outreach_inbound(service: Service, tmp_path: Path, port: int) -> Iterator[None]:
    log = (tmp_path / "inbound.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "outreach.cli.main", "inbound", "--host", "127.0.0.1",
                             "--port", str(port)], env={**os.environ, **service.env}, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path)
    try:
        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        wait_for(lambda: listening() or proc.poll() is not None, timeout=30,
                 message="outreach inbound to listen")
        assert proc.poll() is None, (tmp_path / "inbound.log").read_text()
        yield
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        log.close()


def _service(make_service: Any, postfix: Postfix, **overrides: Any) -> Service:
    service = make_service(smtp_host="127.0.0.1", smtp_port=postfix.port, bounce_domain=BOUNCE_DOMAIN,
                           soft_bounce_limit=2, **overrides)
    service.start_worker()
    for local in PEOPLE_LOCAL:
        service.register(kind="white_paper", asset="fixtures", email=_addr(local), first_name="R",
                         consent=True)
    wait_for(lambda: service.processed_count() >= len(PEOPLE_LOCAL), message="ingest")
    return service


def _launch(service: Service, name: str) -> str:
    (list_id,) = [lst["id"] for lst in service.all_items("/api/v1/lists")
                  if lst["asset"] and lst["asset"]["slug"] == "fixtures" and lst["member_type"] == "lead"]
    template = service.post("/api/v1/templates", {
        "name": name, "subject": "Hello {{ first_name }}", "html": "<p>Hello</p>", "text": "Hello"},
        status=201)
    campaign_id = service.post("/api/v1/campaigns", {
        "name": name, "template_id": template["id"], "list_ids": [list_id],
        "from_email": "news@outreach.example"}, status=201)["id"]
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    wait_for(lambda: _stats(service, campaign_id)["status"] == "sent", timeout=60,
             message=f"campaign {name} to be sent")
    return campaign_id


def _stats(service: Service, campaign_id: str) -> dict[str, Any]:
    campaign = service.get(f"/api/v1/campaigns/{campaign_id}")
    return {**campaign["stats"], "status": campaign["status"]}


def _delivered(postfix: Postfix, count: int) -> dict[str, email.message.Message]:
    """What Postfix delivered to the inbox maildir, by recipient (its Delivered-To)."""
    wait_for(lambda: len(postfix.delivered()) >= count, timeout=30, message="Postfix's deliveries")
    out = {}
    for raw in postfix.delivered():
        msg = email.message_from_bytes(raw)
        out[str(msg["Delivered-To"]).strip()] = msg
    return out


def _recipients(service: Service, campaign_id: str, status: str) -> set[str]:
    return {r["email"] for r in
            service.all_items(f"/api/v1/campaigns/{campaign_id}/recipients?status={status}")}


def _suppressions(service: Service) -> dict[str, dict[str, Any]]:
    return {s["email"]: s for s in service.all_items("/api/v1/suppressions")}


def _timeline(service: Service, address: str) -> list[str]:
    lead_id = service.store.r.hget(service.store.keys.lead_by_email, address)
    return [e["type"] for e in person_events(service.store, f"l:{lead_id}")]


def _corpus_reports(service: Service, delivered: dict[str, email.message.Message]
                    ) -> list[tuple[str, str, bytes]]:
    """(person, VERP address of the message sent to them, the retargeted sample), each
    checked against flufl.bounce's scanner and our classifier first."""
    out = []
    for local, sample in CORPUS.items():
        sent = delivered[_addr(local)]
        mail_from = str(sent["Return-Path"]).strip("<> ")
        assert verp.read_return_path(service.config.secret_key, mail_from)
        raw = _retarget(sample, _addr(local), str(sent["Message-ID"]))
        parsed = parse(raw, service.config.secret_key, [])  # by the quoted Message-ID alone
        assert [(r.kind, r.status, r.recipient.lower()) for r in parsed.reports] == [
            (sample.kind, sample.status, _addr(local))], (sample.file, parsed)
        assert (parsed.reports[0].campaign_id, parsed.reports[0].ref) == verp.read_return_path(
            service.config.secret_key, mail_from)
        if sample.kind != "complaint":  # flufl.bounce reads bounces, not ARF
            assert _flufl_finds(raw) == {_addr(local)}, sample.file
        out.append((local, mail_from, raw))
    return out


def _assert_first_campaign(service: Service, campaign_id: str) -> None:
    stats = _stats(service, campaign_id)
    assert (stats["bounced"], stats["soft_bounced"], stats["complained"]) == (4, 2, 1), stats
    assert _recipients(service, campaign_id, "bounced") == HARD
    assert _recipients(service, campaign_id, "complained") == COMPLAINED
    suppressions = _suppressions(service)
    assert set(suppressions) == HARD | COMPLAINED  # one soft bounce each is below the limit
    for address in HARD:
        assert suppressions[address]["reason"] == "hard_bounce"
        assert suppressions[address]["campaign_id"] == campaign_id
        assert "bounce" in _timeline(service, address)
    assert suppressions[_addr("fbl")]["reason"] == "complaint"
    assert "complaint" in _timeline(service, _addr("fbl"))
    for address in SOFT:
        assert "soft_bounce" in _timeline(service, address)
    assert _timeline(service, _addr("ok")) == []


def _assert_full_suppressed_by_the_second(service: Service, second: str) -> None:
    stats = _stats(service, second)
    assert stats["sent"] == 3, stats  # ok, full, quota: the suppressed are not mailed again
    assert stats["soft_bounced"] == 1 and stats["bounced"] == 0, stats
    suppressions = _suppressions(service)
    assert set(suppressions) == HARD | COMPLAINED | {_addr("full")}
    assert suppressions[_addr("full")]["campaign_id"] == second
    assert _recipients(service, second, "bounced") == {_addr("full")}
    assert _timeline(service, _addr("full")).count("soft_bounce") == 2


# ---------------------------------------------------------------- the SMTP door


def test_postfix_and_real_world_bounces_through_outreach_inbound(make_service, tmp_path):
    port = free_port()
    with _postfix(port) as postfix:
        _fill_the_full_mailbox(postfix)
        service = _service(make_service, postfix)
        with _outreach_inbound(service, tmp_path, port):
            first = _launch(service, "first")
            # Postfix's bounce(8) DSNs reach outreach inbound through Postfix's smtp(8)
            wait_for(lambda: _stats(service, first)["bounced"] == 1
                     and _stats(service, first)["soft_bounced"] == 1, timeout=30,
                     message="Postfix's DSNs to be applied")
            assert _recipients(service, first, "bounced") == {_addr("nouser")}
            suppressions = _suppressions(service)
            assert set(suppressions) == {_addr("nouser")}  # full@: one soft bounce, below the limit
            assert suppressions[_addr("nouser")]["reason"] == "hard_bounce"
            log = postfix.maillog()
            assert re.search(r"to=<nouser@people\.example>.*dsn=5\.1\.1, status=bounced", log)
            assert re.search(r"to=<full@people\.example>.*dsn=5\.2\.2, status=bounced", log)
            assert len(re.findall(rf"to=<b-[^>]+@{re.escape(BOUNCE_DOMAIN)}>, relay=127\.0\.0\.1"
                                  rf"\[127\.0\.0\.1\]:{port},.* status=sent", log)) == 2

            delivered = _delivered(postfix, len(PEOPLE_LOCAL) - 2)
            reports = _corpus_reports(service, delivered)
            ok_sender = str(delivered[_addr("ok")]["Return-Path"]).strip("<> ")
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                for local, mail_from, raw in reports:
                    # a DSN goes back to the envelope sender; an ARF report to the FBL address
                    to = f"fbl@{BOUNCE_DOMAIN}" if local == "fbl" else mail_from
                    smtp.sendmail("", [to], raw)
                # a bounce nobody can parse, to ok@'s VERP address: accepted, changes nothing
                smtp.sendmail("", [ok_sender], _crlf((FIXTURES / UNREADABLE).read_bytes()))
                for local, mail_from, raw in reports:  # the same reports again: no change
                    smtp.sendmail("", [f"fbl@{BOUNCE_DOMAIN}" if local == "fbl" else mail_from], raw)
            wait_for(lambda: _stats(service, first)["bounced"] == 4
                     and _stats(service, first)["soft_bounced"] == 2
                     and _stats(service, first)["complained"] == 1, timeout=30,
                     message="the samples to be applied")
            _assert_first_campaign(service, first)

            # a second campaign: Postfix bounces full@ again, the second soft bounce suppresses
            second = _launch(service, "second")
            wait_for(lambda: _addr("full") in _suppressions(service), timeout=30,
                     message="the second 5.2.2 to suppress full@")
            _assert_full_suppressed_by_the_second(service, second)
            assert _stats(service, first)["bounced"] == 4  # the first campaign's counts stay
            assert _stats(service, first)["soft_bounced"] == 2


# ---------------------------------------------------------------- the mailbox door


def _imap(dovecot: Any) -> imaplib.IMAP4:
    imap = imaplib.IMAP4("127.0.0.1", dovecot.port, timeout=30)
    imap.login(dovecot.user, dovecot.password)
    return imap


def _append(dovecot: Any, messages: list[bytes]) -> None:
    imap = _imap(dovecot)
    try:
        for raw in messages:
            status, _ = imap.append("INBOX", None, None, raw)
            assert status == "OK"
    finally:
        imap.logout()


def _mailbox(dovecot: Any) -> list[bytes]:
    """Every message left in INBOX (without marking it \\Seen)."""
    imap = _imap(dovecot)
    try:
        imap.select("INBOX", readonly=True)
        _, data = imap.uid("SEARCH", None, "ALL")
        out = []
        for uid in (data[0] or b"").split():
            _, fetched = imap.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
            out += [item[1] for item in fetched if isinstance(item, tuple)]
        return out
    finally:
        imap.logout()


def _poll(service: Service) -> None:
    """The beat task, run by the real worker (whose env names the mailbox)."""
    service.app.extensions["celery"].send_task("outreach.bounces.poll_mailbox", queue="default")


def test_postfix_and_real_world_bounces_through_the_imap_mailbox(make_service, tmp_path):
    capture = SmtpCapture().start()
    try:
        with _postfix(capture.port) as postfix, running_dovecot() as dovecot:
            _fill_the_full_mailbox(postfix)
            service = _service(make_service, postfix, bounce_mailbox=dovecot.url("INBOX"))
            first = _launch(service, "first")
            wait_for(lambda: len(capture.messages) >= 2, timeout=30, message="Postfix's DSNs")
            dsns = {m.rcpt_tos[0]: m for m in capture.messages}
            assert all(m.mail_from in ("", "<>") for m in capture.messages)  # the null sender
            by_person = {}
            for rcpt, captured in dsns.items():
                campaign_id, ref = verp.read_return_path(service.config.secret_key, rcpt)
                assert campaign_id == first
                lead_key = service.store.keys.lead(ref.split(":")[1])
                by_person[service.store.r.hget(lead_key, "email")] = captured
            assert set(by_person) == {_addr("nouser"), _addr("full")}
            for address, status in ((_addr("nouser"), "5.1.1"), (_addr("full"), "5.2.2")):
                raw = by_person[address].data
                assert b"From: Mail Delivery System <MAILER-DAEMON@relay.test>" in raw  # bounce(8)
                assert _flufl_finds(raw) == {address}
                # through the mailbox there is no envelope: the quoted Message-ID must do
                (report,) = parse(raw, service.config.secret_key, []).reports
                assert report.status == status and report.recipient == address

            delivered = _delivered(postfix, len(PEOPLE_LOCAL) - 2)
            reports = _corpus_reports(service, delivered)
            unreadable = _crlf((FIXTURES / UNREADABLE).read_bytes())
            _append(dovecot, [by_person[_addr("nouser")].data, by_person[_addr("full")].data,
                              *[raw for _, _, raw in reports], unreadable])
            assert len(_mailbox(dovecot)) == 2 + len(reports) + 1

            _poll(service)
            wait_for(lambda: len(_mailbox(dovecot)) == 1, timeout=30,
                     message="the poll to delete what it processed")
            (left,) = _mailbox(dovecot)
            assert left.replace(b"\r\n", b"\n") == unreadable.replace(b"\r\n", b"\n")  # kept
            _assert_first_campaign(service, first)

            # the same reports again, through the mailbox: nothing changes, all deleted
            _append(dovecot, [raw for _, _, raw in reports])
            _poll(service)
            wait_for(lambda: len(_mailbox(dovecot)) == 1, timeout=30, message="the second poll")
            _assert_first_campaign(service, first)

            # a second campaign: Postfix bounces full@ again; through the mailbox it suppresses
            capture.clear()
            second = _launch(service, "second")
            wait_for(lambda: len(capture.messages) >= 1, timeout=30, message="the second DSN")
            (again,) = capture.messages
            assert verp.read_return_path(service.config.secret_key, again.rcpt_tos[0])[0] == second
            _append(dovecot, [again.data])
            _poll(service)
            wait_for(lambda: _addr("full") in _suppressions(service), timeout=30,
                     message="the second 5.2.2 to suppress full@")
            _assert_full_suppressed_by_the_second(service, second)
            wait_for(lambda: len(_mailbox(dovecot)) == 1, timeout=30, message="the DSN deleted")
    finally:
        capture.stop()
