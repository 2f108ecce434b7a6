"""Blaming the right party, and international addresses, against real SMTP servers.

- aiosmtpd with ``enable_SMTPUTF8`` on and off, scripted for exact replies (535 at AUTH,
  554 5.7.1 at RCPT for everyone, 550 5.1.1 for 10 % of addresses);
- Postfix (Debian's ``postfix``) run here as its own instance on a free port with
  ``smtputf8_enable = yes``, delivering to a maildir that the test reads back.

Every campaign mixes ASCII addresses, non-ASCII local parts, IDN domains in both spellings
and ordinary addresses in the same batches. Real Redis, real ``outreach worker`` processes.
"""

from __future__ import annotations

import email
import email.policy
import os
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from .conftest import wait_for
from .postfix_proc import running_postfix

TEMPLATE = {
    "name": "hello",
    "subject": "Grüße, {{ first_name or 'there' }}",
    "html": "<p>Hallo {{ first_name }}</p><p><a href=\"{{ unsubscribe_url }}\">Abmelden</a></p>",
    "text": "Hallo {{ first_name }}\nAbmelden: {{ unsubscribe_url }}",
}

# (as the person typed it, first name); the two spellings of anna's domain are one person
INTERNATIONAL = [
    ("Zoë.Umlaut@people.example", "Zoë"),
    ("Søren@people.example", "Søren"),
    ("anna@bücher.example", "Anna"),
    ("ANNA@xn--bcher-kva.example", "Anna"),
    ("ben@xn--mller-kva.example", "Ben"),
    ("chloé@müller.example", "Chloé"),
]
UTF8_LOCAL = {"zoë.umlaut@people.example", "søren@people.example", "chloé@müller.example"}
# stored form -> what the envelope carries
WIRE = {
    "zoë.umlaut@people.example": "zoë.umlaut@people.example",
    "søren@people.example": "søren@people.example",
    "anna@bücher.example": "anna@xn--bcher-kva.example",
    "ben@müller.example": "ben@xn--mller-kva.example",
    "chloé@müller.example": "chloé@müller.example",
}
# stored form -> what To: shows: the person's latest own spelling, written as it travels
# (raw UTF-8 with SMTPUTF8, else an A-label domain); the normal form when they used it
TO_SHOWN = {**WIRE, "zoë.umlaut@people.example": "Zoë.Umlaut@people.example",
            "søren@people.example": "Søren@people.example",
            "anna@bücher.example": "ANNA@xn--bcher-kva.example"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    smtputf8: bool


class _Script:
    """The relay's answers: ``rcpt(address)`` -> a reply line to refuse with, or None."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.refused: list[str] = []
        self.rcpt = None
        self.mail = None  # mail_from -> a reply line to refuse MAIL FROM with, or None

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        answer = self.mail(address) if self.mail else None
        if answer:
            return answer
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        answer = self.rcpt(address) if self.rcpt else None
        if answer:
            with self.lock:
                self.refused.append(address)
            return answer
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          bytes(envelope.content), bool(envelope.smtp_utf8)))
        return "250 2.0.0 Message accepted"


class ScriptedRelay:
    """aiosmtpd with a chosen SMTPUTF8 setting, optional AUTH and scripted RCPT replies."""

    def __init__(self, smtputf8: bool = True, auth: bool = False) -> None:
        self.script = _Script()
        self.port = _free_port()
        self.password_ok = True
        self.logins = 0
        extra: dict[str, Any] = {}
        if auth:
            extra = {"authenticator": self._authenticate, "auth_require_tls": False}
        self.controller = Controller(self.script, hostname="127.0.0.1", port=self.port,
                                     enable_SMTPUTF8=smtputf8, **extra)
        self.controller.start()

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        self.logins += 1
        ok = self.password_ok and auth_data.password == b"secret"
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535

    def stop(self) -> None:
        self.controller.stop()

    def deliveries(self) -> Counter[str]:
        with self.script.lock:
            return Counter(r for m in self.script.received for r in m.rcpt_tos)

    def messages_to(self, address: str) -> list[Received]:
        with self.script.lock:
            return [m for m in self.script.received if address in m.rcpt_tos]


@pytest.fixture
def relays():
    made: list[ScriptedRelay] = []

    def make(**kwargs: Any) -> ScriptedRelay:
        relay = ScriptedRelay(**kwargs)
        made.append(relay)
        return relay

    yield make
    for relay in made:
        relay.stop()


def _people(service, plain: int, asset: str) -> dict[str, str]:
    """Register the international people and ``plain`` ordinary ones, interleaved, so that
    they share batches; returns {stored address: first name}."""
    people = list(INTERNATIONAL)
    for i in range(plain):
        people.insert((i * 7) % (len(people) + 1), (f"r{i}@example.org", f"R{i}"))
    for address, first in people:
        service.register(kind="white_paper", asset=asset, email=address, first_name=first,
                         consent=True)
    wait_for(lambda: service.processed_count() == len(people), message="ingest")
    expected = {a.lower(): f for a, f in people if a.isascii() and "xn--" not in a}
    expected.update({"zoë.umlaut@people.example": "Zoë", "søren@people.example": "Søren",
                     "anna@bücher.example": "Anna", "ben@müller.example": "Ben",
                     "chloé@müller.example": "Chloé"})
    leads = service.all_items("/api/v1/leads")
    assert sorted(lead["email"] for lead in leads) == sorted(expected)  # one anna
    return expected


def _campaign(service, asset: str, **extra: Any) -> str:
    lists = service.all_items("/api/v1/lists")
    (list_id,) = [lst["id"] for lst in lists
                  if lst["asset"] and lst["asset"]["slug"] == asset and lst["member_type"] == "lead"]
    template = service.post("/api/v1/templates", TEMPLATE, status=201)
    body = {"name": asset, "template_id": template["id"], "list_ids": [list_id],
            "from_email": "news@outreach.example", **extra}
    campaign_id = service.post("/api/v1/campaigns", body, status=201)["id"]
    service.post(f"/api/v1/campaigns/{campaign_id}/launch", status=200)
    return campaign_id


def _wait_status(service, campaign_id: str, status: str, timeout: float = 90) -> dict:
    return wait_for(lambda: (c := service.get(f"/api/v1/campaigns/{campaign_id}"))["status"]
                    == status and c, timeout=timeout, message=f"campaign {status}")


def _recipients(service, campaign_id: str, status: str) -> dict[str, str | None]:
    return {r["email"]: r["error"] for r in service.all_items(
        f"/api/v1/campaigns/{campaign_id}/recipients?status={status}")}


def _service(make_service, relay_port: int, **extra: Any):
    return make_service(smtp_host="127.0.0.1", smtp_port=relay_port, **extra)


# ---------------------------------------------------------------- aiosmtpd, SMTPUTF8 on/off


def test_international_addresses_through_a_relay_with_smtputf8(make_service, relays, tmp_path,
                                                               monkeypatch):
    relay = relays(smtputf8=True)
    service = _service(make_service, relay.port)
    # an error of our own in the middle of a batch: one person's message cannot be built
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import outreach.campaigns.sending.deliver as s\n"
        "_real = s.build_message\n"
        "def build_message(**kw):\n"
        "    if kw['to_email'] == 'r7@example.org':\n"
        "        raise UnicodeEncodeError('ascii', 'zo\\xeb', 2, 3, 'ordinal not in range(128)')\n"
        "    return _real(**kw)\n"
        "s.build_message = build_message\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p))
    service.start_worker()
    people = _people(service, 24, "intl")
    campaign_id = _campaign(service, "intl")
    campaign = _wait_status(service, campaign_id, "sent")

    deliveries = relay.deliveries()
    expected_wire = {WIRE.get(a, a) for a in people} - {"r7@example.org"}
    assert set(deliveries) == expected_wire and max(deliveries.values()) == 1
    for stored, wire in WIRE.items():
        (msg,) = relay.messages_to(wire)
        assert msg.smtputf8 is (stored in UTF8_LOCAL)  # IDN + ASCII local: A-label, no SMTPUTF8
        parsed = email.message_from_bytes(msg.data, policy=email.policy.SMTPUTF8)
        assert parsed["To"] == TO_SHOWN[stored]
        assert parsed["Subject"] == f"Grüße, {people[stored]}"
        assert f"Hallo {people[stored]}" in parsed.get_body(("plain",)).get_content()
        if stored in UTF8_LOCAL:
            assert f"To: {TO_SHOWN[stored]}\r\n".encode() in msg.data  # RFC 6532: raw UTF-8
        else:
            assert msg.data.split(b"\r\n\r\n")[0].isascii()
    assert _recipients(service, campaign_id, "failed") == {
        "r7@example.org": "UnicodeEncodeError: 'ascii' codec can't encode character '\\xeb' "
                          "in position 2: ordinal not in range(128)"}
    assert (campaign["stats"]["sent"], campaign["stats"]["failed"],
            campaign["stats"]["unknown"]) == (len(people) - 1, 1, 0)
    assert service.store.r.hlen(service.store.keys.suppressed) == 0
    log = service.workers[0].log.read_text(errors="replace")
    assert log.count("UnicodeEncodeError: 'ascii' codec") >= 1


def test_international_addresses_through_a_relay_without_smtputf8(make_service, relays):
    relay = relays(smtputf8=False)
    service = _service(make_service, relay.port)
    service.start_worker()
    people = _people(service, 24, "ascii")
    campaign_id = _campaign(service, "ascii")
    campaign = _wait_status(service, campaign_id, "sent")

    deliveries = relay.deliveries()
    assert set(deliveries) == {WIRE.get(a, a) for a in people if a not in UTF8_LOCAL}
    assert max(deliveries.values()) == 1
    assert all(not m.smtputf8 for m in relay.script.received)
    assert _recipients(service, campaign_id, "failed") == dict.fromkeys(
        UTF8_LOCAL, "relay does not support SMTPUTF8")
    assert campaign["stats"]["unknown"] == 0
    assert campaign["stats"]["sent"] == len(people) - len(UTF8_LOCAL)
    assert service.store.r.hlen(service.store.keys.suppressed) == 0


# ---------------------------------------------------------------- the scripted relay


def test_a_refused_login_pauses_fails_nobody_and_resume_sends_everyone_once(make_service,
                                                                            relays):
    relay = relays(smtputf8=True, auth=True)
    relay.password_ok = False  # as if the password in the settings were mistyped
    service = _service(make_service, relay.port, smtp_user="outreach", smtp_password="secret")
    service.start_worker()
    people = _people(service, 24, "login")
    campaign_id = _campaign(service, "login")
    paused = _wait_status(service, campaign_id, "paused", timeout=60)
    assert paused["status_reason"].startswith(
        "relay refused login: 535 5.7.8 Authentication credentials invalid"), paused
    assert paused["stats"]["failed"] == paused["stats"]["suppressed"] == 0
    assert paused["stats"]["unknown"] == 0
    assert relay.logins >= 1 and not relay.script.received
    assert set(_recipients(service, campaign_id, "queued")) == set(people)
    assert service.store.r.hlen(service.store.keys.suppressed) == 0

    relay.password_ok = True  # the settings are fixed
    service.post(f"/api/v1/campaigns/{campaign_id}/resume", status=200)
    campaign = _wait_status(service, campaign_id, "sent")
    deliveries = relay.deliveries()
    assert set(deliveries) == {WIRE.get(a, a) for a in people}
    assert max(deliveries.values()) == 1
    assert campaign["stats"]["sent"] == len(people)


def test_a_relay_refusing_everyone_pauses_within_20_and_suppresses_nobody(make_service, relays):
    relay = relays(smtputf8=True)
    relay.script.rcpt = lambda address: f"554 5.7.1 <{address}>: Relay access denied"
    service = _service(make_service, relay.port, send_batch_size=10)
    service.start_worker()
    people = _people(service, 54, "denied")
    campaign_id = _campaign(service, "denied")
    paused = _wait_status(service, campaign_id, "paused", timeout=60)
    time.sleep(1.0)  # anything still in flight lands
    assert "554 5.7.1" in paused["status_reason"] and "Relay access denied" in paused["status_reason"]
    assert len(relay.script.refused) <= 20, relay.script.refused
    shown = service.get(f"/api/v1/campaigns/{campaign_id}")
    assert shown["stats"]["failed"] == shown["stats"]["suppressed"] == shown["stats"]["unknown"] == 0
    assert service.store.r.hlen(service.store.keys.suppressed) == 0
    assert _recipients(service, campaign_id, "failed") == {}

    relay.script.rcpt = None  # the relay lets us through again
    service.post(f"/api/v1/campaigns/{campaign_id}/resume", status=200)
    campaign = _wait_status(service, campaign_id, "sent")
    deliveries = relay.deliveries()
    assert set(deliveries) == {WIRE.get(a, a) for a in people}
    assert max(deliveries.values()) == 1
    assert campaign["stats"]["sent"] == len(people)


def test_ten_percent_dead_mailboxes_are_exactly_the_ones_failed_and_suppressed(make_service,
                                                                               relays):
    relay = relays(smtputf8=True)
    service = _service(make_service, relay.port, send_batch_size=25)
    service.start_worker()
    people = _people(service, 144, "dead")
    rng = random.Random(13)
    dead = {a for a in sorted(people) if rng.random() < 0.1} | {"søren@people.example",
                                                                 "anna@bücher.example"}
    dead_wire = {WIRE.get(a, a): a for a in dead}
    relay.script.rcpt = (lambda address: f"550 5.1.1 <{address}>: No such user"
                         if address in dead_wire else None)
    campaign_id = _campaign(service, "dead")
    campaign = _wait_status(service, campaign_id, "sent")

    deliveries = relay.deliveries()
    assert set(deliveries) == {WIRE.get(a, a) for a in people if a not in dead}
    assert max(deliveries.values()) == 1
    failed = _recipients(service, campaign_id, "failed")
    assert set(failed) == dead
    assert failed["anna@bücher.example"] == (
        "550 5.1.1 <anna@xn--bcher-kva.example>: No such user")
    assert set(service.store.r.hgetall(service.store.keys.suppressed)) == dead
    listed = service.all_items("/api/v1/suppressions?reason=hard_bounce")
    assert {i["email"] for i in listed} == dead
    assert {i["campaign_id"] for i in listed} == {campaign_id}
    assert campaign["stats"]["unknown"] == 0
    assert campaign["stats"]["sent"] == len(people) - len(dead)

    # a bounce suppression can be lifted; then the address is mailed again
    lifted = service.client.delete("/api/v1/suppressions/s%C3%B8ren@people.example",
                                   headers=service.auth)
    assert lifted.status_code == 200, lifted.get_json()
    assert "søren@people.example" not in service.store.r.hgetall(service.store.keys.suppressed)


# ---------------------------------------------------------------- Postfix


@pytest.fixture
def postfix():
    """Its own Postfix instance (tests/integration/postfix_proc.py): every recipient is
    delivered to one maildir unless it starts with ``dead``."""
    with running_postfix() as instance:
        yield instance


def _delivered_to(raw: bytes) -> str:
    head = raw.split(b"\n\n", 1)[0]
    for line in head.split(b"\n"):
        if line.lower().startswith(b"delivered-to:"):
            return line.split(b":", 1)[1].strip().decode("utf-8")
    raise AssertionError(head[:300])


def test_through_postfix_with_smtputf8(make_service, postfix):
    service = _service(make_service, postfix.port)
    service.start_worker()
    people = _people(service, 20, "postfix")
    for i in range(3):  # Postfix itself says these do not exist (virtual mailbox table)
        service.register(kind="white_paper", asset="postfix", email=f"dead{i}@people.example",
                         consent=True)
    wait_for(lambda: service.processed_count() == len(INTERNATIONAL) + 20 + 3, message="ingest")
    campaign_id = _campaign(service, "postfix")
    campaign = _wait_status(service, campaign_id, "sent")

    expected = {WIRE.get(a, a) for a in people}
    wait_for(lambda: len(postfix.delivered()) >= len(expected), timeout=30,
             message="Postfix's deliveries")
    time.sleep(0.5)
    raw = postfix.delivered()
    delivered = Counter(_delivered_to(m) for m in raw)
    assert set(delivered) == expected and max(delivered.values()) == 1
    for message in raw:
        parsed = email.message_from_bytes(message, policy=email.policy.SMTPUTF8)
        to = _delivered_to(message)
        stored = next(a for a, w in {**{a: a for a in people}, **WIRE}.items() if w == to)
        assert parsed["To"] == TO_SHOWN.get(stored, to)
        assert parsed["Subject"] == f"Grüße, {people[stored]}"
        received = parsed.get_all("Received")[0]
        assert ("UTF8SMTP" in received) is (stored in UTF8_LOCAL), received
    failed = _recipients(service, campaign_id, "failed")
    assert set(failed) == {f"dead{i}@people.example" for i in range(3)}
    assert all(e.startswith("550 5.1.1 ") and "User unknown" in e for e in failed.values()), failed
    assert set(service.store.r.hgetall(service.store.keys.suppressed)) == set(failed)
    assert campaign["stats"]["unknown"] == 0
    assert campaign["stats"]["sent"] == len(people)


# ---------------------------------------------------------------- the messenger, stage by stage


def _messenger(port: int, **settings: Any):
    from outreach.config import Config
    from outreach.mail.smtp.messenger import SmtpMessenger

    return SmtpMessenger(Config(smtp_host="127.0.0.1", smtp_port=port, smtp_timeout=5,
                                **settings))


def _a_message(to: str):
    from outreach.mail.message import build_message

    return build_message(from_email="news@outreach.example", to_email=to, subject="Grüße",
                         text="t", html="<p>h</p>", unsubscribe_url="https://x.example/u/1",
                         unsubscribe_mailto="mailto:u@outreach.example", campaign_id="c1")


def test_the_messenger_blames_each_stage_on_the_right_party(relays):
    from outreach.mail.smtp import classify, envelope

    def raised(messenger, to: str = "ann@example.com"):
        try:
            messenger.send(_a_message(to), "news@outreach.example", to)
        except Exception as exc:  # noqa: BLE001 - the class is what is checked
            return exc
        finally:
            messenger.close()
        return None

    login = relays(auth=True)
    login.password_ok = False
    exc = raised(_messenger(login.port, smtp_user="u", smtp_password="secret"))
    assert isinstance(exc, classify.SessionFailure) and exc.fatal
    assert str(exc).startswith("relay refused login: 535 5.7.8 Authentication credentials invalid")

    sender = relays()
    sender.script.mail = lambda address: f"553 5.1.8 <{address}>: Sender address rejected"
    exc = raised(_messenger(sender.port))
    assert isinstance(exc, classify.SessionFailure) and exc.fatal
    assert str(exc).startswith("relay refused the sender: 553 5.1.8")

    tls = relays()
    exc = raised(_messenger(tls.port, smtp_tls="starttls"))
    assert isinstance(exc, classify.SessionFailure) and exc.fatal and "STARTTLS" in str(exc)

    exc = raised(_messenger(_free_port()))
    assert isinstance(exc, classify.ConnectionFailure) and not exc.fatal

    policy = relays()
    policy.script.rcpt = lambda address: "554 5.7.1 Relay access denied"
    exc = raised(_messenger(policy.port))
    assert isinstance(exc, classify.PermanentFailure) and exc.kind == classify.BLOCKED
    assert not exc.suppress

    full = relays()
    full.script.rcpt = lambda address: "452 4.2.2 Mailbox full"
    assert isinstance(raised(_messenger(full.port)), classify.TemporaryFailure)

    plain = relays(smtputf8=False)
    exc = raised(_messenger(plain.port), "zoë@people.example")
    assert isinstance(exc, classify.UnsupportedAddress) and str(exc) == envelope.NO_SMTPUTF8
    assert plain.script.received == []
    assert raised(_messenger(plain.port), "anna@bücher.example") is None
    (msg,) = plain.script.received
    assert (msg.rcpt_tos, msg.smtputf8) == (["anna@xn--bcher-kva.example"], False)
    for relay in (login, sender, tls, policy, full):
        assert relay.script.received == []
