"""SMTP delivery, one recipient per transaction, over a connection reused per worker thread.

Every refusal is attributed to the party at fault (``classify``):

- ``SessionFailure``: the relay or the sender's settings (connect, greeting, EHLO,
  STARTTLS/TLS, AUTH, MAIL FROM, a ``421`` without ``4.7.x``, a sender rejected at RCPT). Never a
  recipient's: the claim is handed back. ``fatal`` ones (5xx, TLS failures) need an
  operator (the campaign pauses after a few tries), the others are transient.
  ``ConnectionFailure`` is the transient kind for network errors.
- ``TemporaryFailure``: the recipient's soft refusal (every 4xx, ``5.2.2`` mailbox full):
  not delivered, try again later. Its ``DEFERRED`` kind (``421``/``4xx`` with ``4.7.x`` at
  RCPT or after DATA) is the receiving domain asking to slow down: that domain backs off.
- ``PermanentFailure``: the recipient's permanent refusal; ``suppress`` is true only for
  a hard bounce (``5.1.x`` no such mailbox or domain, ``5.2.1`` disabled). ``5.7.x``
  (policy), ``5.3.x``, ``5.4.x`` and the rest fail the recipient without suppressing.
  ``UnsupportedAddress`` (a non-ASCII local part through a relay without SMTPUTF8) is one.
- ``AmbiguousFailure``: the content was sent but no final reply came back: the message
  may or may not have been delivered, so it must not be resent blindly.

International addresses: an ASCII local part always goes out with its domain as an
A-label (no SMTPUTF8 needed); a non-ASCII local part needs the relay's ``SMTPUTF8``
(``MAIL FROM:<...> SMTPUTF8``) and is refused without it before anything is sent.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from outreach.config import Config, Relay
from outreach.mail.wire import wire_bytes
from outreach.normalize import InvalidEmail, ascii_domain

# kinds of answer (the classifier's verdicts)
HARD = "hard"  # the address does not exist or is disabled: fail and suppress
SOFT = "soft"  # try this recipient again later
DEFERRED = "deferred"  # 421/4xx with 4.7.x at RCPT or after DATA: the receiving domain says
#                        "slow down": back that domain off; not the recipient's refusal
BLOCKED = "blocked"  # 5.7.x policy: not the address's fault; fail, never suppress
REFUSED = "refused"  # any other permanent refusal that is not the address's fault
SESSION_TRANSIENT = "session_transient"  # the relay, for now: hand the claim back
SESSION_FATAL = "session_fatal"  # the relay or the sender's settings: hand back, pause soon

SESSION_STAGES = ("connect", "greeting", "ehlo", "starttls", "auth", "mail")
RECIPIENT_STAGES = ("rcpt", "data", "end")

_ENHANCED = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\d)")
# Replies without an enhanced code are read conservatively: only these plain "no such
# mailbox" phrasings are a hard bounce, and only when nothing in the reply speaks of
# policy, relaying, reputation, quota or the sender.
_UNKNOWN_MAILBOX = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|recipient|address)|"
    r"mailbox (?:not found|does not exist|unavailable)|recipient (?:unknown|not found)|"
    r"(?:address|user|mailbox|recipient) does not exist|invalid (?:mailbox|recipient)|"
    r"unknown recipient|no mailbox", re.I)
_NOT_THE_ADDRESS = re.compile(
    r"relay|spam|policy|block|denied|auth|quota|full|reputation|rate|limit|throttl|"
    r"sender|blacklist|listed|virus|content|tls|later|temporar|greylist", re.I)
_SENDER_REJECTED = re.compile(r"sender address rejected|sender (?:is )?(?:not allowed|rejected)",
                              re.I)


def enhanced_code(code: int, text: str) -> tuple[int, int, int] | None:
    """The RFC 3463 status code at the start of a reply's text, when its class agrees
    with the basic reply code (``550 5.1.1 ...`` -> ``(5, 1, 1)``)."""
    match = _ENHANCED.match(text)
    if not match:
        return None
    cls, subject, detail = (int(g) for g in match.groups())
    if cls != code // 100:
        return None
    return cls, subject, detail


def classify(stage: str, code: int, text: str) -> str:
    """Who is at fault for the reply ``code text`` at ``stage``, and what to do about it.

    ``stage`` is one of ``SESSION_STAGES`` (the relay and the sender: never a recipient's
    fault) or ``RECIPIENT_STAGES`` (RCPT, the DATA command, the reply after the content).
    """
    if stage not in RECIPIENT_STAGES:
        return SESSION_TRANSIENT if 400 <= code < 500 else SESSION_FATAL
    if _SENDER_REJECTED.search(text):  # smtpd_delay_reject: the sender, told at RCPT
        return SESSION_TRANSIENT if 400 <= code < 500 else SESSION_FATAL
    status = enhanced_code(code, text)
    if 400 <= code < 500 and status is not None and status[1] == 7:
        return DEFERRED  # e.g. Gmail's "421 4.7.28 ... rate limited": that domain, not the relay
    if code == 421:  # the relay is closing the session
        return SESSION_TRANSIENT
    if code < 400:
        return SOFT  # not an answer SMTP allows here: try again later
    if code < 500:
        return SOFT
    if status is None or status[1:] == (0, 0):
        return _fallback(code, text)
    _, subject, detail = status
    if subject == 1:
        if detail in (7, 8):  # the sender's address, not the recipient's
            return SESSION_FATAL
        return HARD
    if subject == 2:
        if detail == 1:
            return HARD
        if detail == 2:
            return SOFT
        return REFUSED
    if subject == 7:
        return BLOCKED
    return REFUSED  # 5.3.x system, 5.4.x network/routing, 5.5.x protocol, 5.6.x content


def _fallback(code: int, text: str) -> str:
    """A permanent reply without a usable enhanced code: suppress only the unmistakable."""
    if _UNKNOWN_MAILBOX.search(text) and not _NOT_THE_ADDRESS.search(text) and code in (550, 551,
                                                                                        553):
        return HARD
    if code == 552:  # RFC 5321: exceeded storage allocation
        return SOFT
    return REFUSED


class DeliveryError(Exception):
    kind = SOFT

    def __init__(self, message: str, code: int | None = None, kind: str | None = None,
                 stage: str = "rcpt") -> None:
        super().__init__(message)
        self.code, self.stage = code, stage
        if kind is not None:
            self.kind = kind

    @property
    def reply(self) -> str:
        return str(self)


class SessionFailure(DeliveryError):
    """The relay or the sender's settings refused: no recipient is at fault."""

    kind = SESSION_FATAL

    @property
    def fatal(self) -> bool:
        return self.kind == SESSION_FATAL


class ConnectionFailure(SessionFailure):
    """The relay could not be reached or the connection broke before the content was sent."""

    kind = SESSION_TRANSIENT


class TemporaryFailure(DeliveryError):
    kind = SOFT


class PermanentFailure(DeliveryError):
    """A recipient's permanent refusal; without an explicit ``kind`` the reply is classified."""

    def __init__(self, message: str, code: int | None = None, kind: str | None = None,
                 stage: str = "rcpt") -> None:
        if kind is None:
            number, _, text = message.partition(" ")
            kind = classify(stage, code or (int(number) if number.isdigit() else 550), text)
            if kind not in (HARD, BLOCKED, REFUSED):
                kind = REFUSED
        super().__init__(message, code, kind, stage)

    @property
    def suppress(self) -> bool:
        return self.kind == HARD


class UnsupportedAddress(PermanentFailure):
    """The address cannot be carried by this relay (a non-ASCII local part without SMTPUTF8)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, None, REFUSED, "mail")


class AmbiguousFailure(DeliveryError):
    pass


class ClaimLost(Exception):
    """``before_data`` said no: the recipient's claim was taken over by another worker (this
    one was thought dead), so this transaction stopped before DATA and sent nothing."""


NO_SMTPUTF8 = "relay does not support SMTPUTF8"


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    rcpt_to: str
    smtputf8: bool  # the transaction needs MAIL FROM ... SMTPUTF8


def needs_smtputf8(address: str) -> bool:
    """A non-ASCII local part can only travel with SMTPUTF8 (a domain has its A-label)."""
    return not address.rpartition("@")[0].isascii()


def wire_address(address: str, smtputf8: bool) -> str:
    """``address`` as written in the envelope: with SMTPUTF8 as it is (UTF-8), otherwise
    with an A-label domain. Raises ``UnsupportedAddress`` when it cannot be written."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    if not local.isascii() and not smtputf8:
        raise UnsupportedAddress(NO_SMTPUTF8)
    if smtputf8:
        return address
    try:
        return f"{local}@{ascii_domain(domain)}"
    except InvalidEmail as exc:
        raise UnsupportedAddress(str(exc)) from exc


def envelope_for(mail_from: str, rcpt_to: str, relay_smtputf8: bool,
                 header_from: str = "") -> Envelope:
    """The envelope of one transaction: SMTPUTF8 only when an address needs it and the
    relay offers it. When the relay does not: a recipient that needs it is refused
    (``UnsupportedAddress``: that recipient fails with the reason); a sender that needs it
    (the envelope sender, or the ``From`` header as written, ``header_from``) is the
    sender's settings, not anybody's address: ``SessionFailure`` (the campaign pauses)."""
    sender_utf8 = needs_smtputf8(mail_from) or not header_from.isascii()
    if sender_utf8 and not relay_smtputf8:
        raise SessionFailure(f"the sender address needs SMTPUTF8 and the {NO_SMTPUTF8}",
                             stage="mail")
    utf8 = sender_utf8 or needs_smtputf8(rcpt_to)
    if utf8 and not relay_smtputf8:
        raise UnsupportedAddress(NO_SMTPUTF8)
    return Envelope(wire_address(mail_from, utf8), wire_address(rcpt_to, utf8), utf8)


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _refusal(stage: str, code: int, reply: bytes | str, what: str = "") -> DeliveryError:
    text = _text(reply).replace("\n", " ")
    kind = classify(stage, code, text)
    message = f"{code} {text}"
    if kind in (SESSION_FATAL, SESSION_TRANSIENT):
        prefix = what or _STAGE_WORDS.get(stage, "relay refused")
        return SessionFailure(f"{prefix}: {message}", code, kind, stage)
    if kind in (SOFT, DEFERRED):
        return TemporaryFailure(message, code, kind, stage)
    return PermanentFailure(message, code, kind, stage)


_STAGE_WORDS = {
    "greeting": "relay refused the connection",
    "ehlo": "relay refused EHLO",
    "starttls": "relay refused STARTTLS",
    "auth": "relay refused login",
    "mail": "relay refused the sender",
    "rcpt": "relay refused the sender",
    "data": "relay refused DATA",
    "end": "relay refused the message",
}


class SmtpMessenger:
    """Sends through one relay or several (``OUTREACH_SMTP_URLS``) with failover.

    Each worker thread keeps one connection, to the first relay (in the configured order)
    that answers. A relay that cannot be reached or refuses the session (connect refused,
    timeout, ``421`` at the greeting, TLS or login failure) is skipped for
    ``smtp_relay_cooldown_seconds`` and the next one is tried at once; only when every relay
    failed does the failure reach the campaign. The same holds for a connection that breaks,
    or a ``421``, before the recipient is accepted: nothing can have been delivered, so the
    transaction starts again on the next relay."""

    def __init__(self, config: Config) -> None:
        self.relays = config.relays
        self.timeout = config.smtp_timeout
        self.cooldown = config.smtp_relay_cooldown_seconds
        self._down: dict[int, float] = {}  # relay index -> monotonic time it may be tried again
        self._down_lock = threading.Lock()
        self._local = threading.local()

    def _order(self) -> list[int]:
        """Relay indexes to try: the available ones in order, then those cooling down (the
        soonest due first), so that with every relay down each is still tried."""
        now = time.monotonic()
        with self._down_lock:
            down = {i: t for i, t in self._down.items() if t > now}
        ready = [i for i in range(len(self.relays)) if i not in down]
        return ready + sorted(down, key=down.__getitem__)

    def _mark(self, index: int, failed: bool) -> None:
        with self._down_lock:
            if failed:
                self._down[index] = time.monotonic() + self.cooldown
            else:
                self._down.pop(index, None)

    def _connection(self) -> smtplib.SMTP:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        failure: SessionFailure | None = None
        for index in self._order():
            try:
                conn = _open(self.relays[index], self.timeout)
            except SessionFailure as exc:  # this relay, not the campaign: try the next one
                self._mark(index, True)
                failure = exc
                continue
            self._mark(index, False)
            self._local.conn, self._local.relay = conn, index
            return conn
        assert failure is not None
        raise failure

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        _close(conn)

    def supports_smtputf8(self) -> bool:
        """Whether the relay advertises SMTPUTF8 (connects when not connected)."""
        return bool(self._connection().has_extn("smtputf8"))

    def send(self, msg: Message, mail_from: str, rcpt_to: str,
             before_data: Callable[[], bool] | None = None) -> str:
        """Deliver ``msg`` to one recipient; returns the server's 250 reply text.

        ``before_data`` runs once the recipient is accepted, just before DATA: until then
        nothing can have been delivered. When it returns False the transaction is reset
        and ``ClaimLost`` raised."""
        reused = getattr(self._local, "conn", None) is not None
        # before any command: a message that cannot be written fails here, with nothing sent
        data = _dot_stuffed(msg)
        header_from = str(msg.get("From") or "")  # as written: UTF-8 only with SMTPUTF8
        tries = len(self.relays)
        while True:
            conn = self._connection()
            accepted: list[bool] = []  # set when the recipient is accepted: no failover after
            try:
                conn = self._start(conn, data, mail_from, rcpt_to, before_data, reused, accepted,
                                   header_from)
                break
            except SessionFailure as exc:
                tries -= 1
                if accepted or exc.fatal or tries <= 0:
                    raise
                # nothing can have been delivered: the same transaction on the next relay
                self._mark(self._local.relay, True)
                self._drop()
                reused = False
        try:
            conn.send(data)
            code, reply = conn.getreply()
        except BaseException as exc:
            self._drop()
            raise AmbiguousFailure(f"no final reply after the message was sent: "
                                   f"{type(exc).__name__}: {exc}") from exc
        finally:
            conn.command_encoding = "ascii"
        if code != 250:
            if code == 421:
                self._drop()
            raise _refusal("end", code, reply)
        return _text(reply)

    def _start(self, conn: smtplib.SMTP, data: bytes, mail_from: str, rcpt_to: str,
               before_data: Callable[[], bool] | None, reused: bool,
               accepted: list[bool], header_from: str = "") -> smtplib.SMTP:
        """MAIL, RCPT, ``before_data``, DATA: up to the relay's 354 (nothing sent yet)."""
        envelope = envelope_for(mail_from, rcpt_to, bool(conn.has_extn("smtputf8")), header_from)
        options: list[str] = []
        if envelope.smtputf8:
            options.append("SMTPUTF8")
        if conn.has_extn("8bitmime") and not data.isascii():
            options.append("BODY=8BITMIME")
        try:
            try:
                code, reply = conn.mail(envelope.mail_from, options)
            except (smtplib.SMTPServerDisconnected, ConnectionError):
                if not reused:
                    raise
                self._drop()  # the relay closed an idle connection: one fresh try
                conn = self._connection()
                code, reply = conn.mail(envelope.mail_from, options)
            if code != 250:
                self._reset(conn, code)
                raise _refusal("mail", code, reply)
            code, reply = conn.rcpt(envelope.rcpt_to)
            if code not in (250, 251):
                self._reset(conn, code)
                raise _refusal("rcpt", code, reply)
            accepted.append(True)
            if before_data is not None and not before_data():
                self._reset(conn, 250)
                raise ClaimLost(f"the claim of {rcpt_to} was taken over before DATA")
            code, reply = conn.docmd("data")
            if code != 354:
                self._reset(conn, code)
                raise _refusal("data", code, reply)
        except (DeliveryError, ClaimLost):
            raise
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise ConnectionFailure(f"connection lost before the message was sent: {exc}",
                                    stage="mail") from exc
        except BaseException:
            self._drop()  # the dialogue is in an unknown state: never reuse it
            raise
        return conn

    def _reset(self, conn: smtplib.SMTP, code: int) -> None:
        if code == 421:
            self._drop()
            return
        try:
            conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()


def _open(relay: Relay, timeout: float) -> smtplib.SMTP:
    """A session with ``relay``, greeted, EHLO'd, with TLS and login as configured; every
    refusal or error is a ``SessionFailure`` (``ConnectionFailure`` for the network)."""
    stage = "connect"
    conn = None
    try:
        if relay.tls == "ssl":
            conn = smtplib.SMTP_SSL(relay.host, relay.port, timeout=timeout,
                                    context=ssl.create_default_context())
        else:
            conn = smtplib.SMTP(relay.host, relay.port, timeout=timeout)
        stage = "ehlo"
        code, reply = conn.ehlo()
        if not 200 <= code < 300:
            code, reply = conn.helo()
            if not 200 <= code < 300:
                raise _refusal("ehlo", code, reply)
        if relay.tls == "starttls":
            stage = "starttls"
            if not conn.has_extn("starttls"):
                raise SessionFailure("relay does not offer STARTTLS", None, SESSION_FATAL,
                                     "starttls")
            code, reply = conn.starttls(context=ssl.create_default_context())
            stage = "ehlo"
            conn.ehlo()
        if relay.user:
            stage = "auth"
            conn.login(relay.user, relay.password)
    except DeliveryError:
        _close(conn)
        raise
    except smtplib.SMTPConnectError as exc:  # a refusal in the greeting
        _close(conn)
        raise _refusal("greeting", exc.smtp_code, exc.smtp_error) from exc
    except smtplib.SMTPResponseException as exc:
        _close(conn)
        raise _refusal(stage, exc.smtp_code, exc.smtp_error) from exc
    except ssl.SSLError as exc:
        _close(conn)
        raise SessionFailure(f"TLS with {relay} failed: {exc}", None, SESSION_FATAL,
                             stage) from exc
    except smtplib.SMTPNotSupportedError as exc:
        _close(conn)
        raise SessionFailure(f"relay refused login: {exc}", None, SESSION_FATAL, stage) from exc
    except (OSError, smtplib.SMTPException) as exc:
        _close(conn)
        if stage == "auth" and isinstance(exc, smtplib.SMTPException):
            raise SessionFailure(f"relay refused login: {exc}", None, SESSION_FATAL,
                                 stage) from exc
        raise ConnectionFailure(f"cannot connect to {relay}: {exc}", stage=stage) from exc
    return conn


def _close(conn: smtplib.SMTP | None) -> None:
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.close()


def _dot_stuffed(msg: Message) -> bytes:
    """The message as SMTP DATA: CRLF lines, leading dots doubled, ending with CRLF.CRLF
    (a signed message's bytes as they were signed: ``outreach.mail.wire``)."""
    data = wire_bytes(msg)
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"
