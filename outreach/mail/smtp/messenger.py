"""SMTP delivery, one recipient per transaction, over a connection reused per worker thread,
through one relay or several with failover (``SmtpMessenger``); every refusal is raised as
the exception ``outreach.mail.smtp.classify`` says it is."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from email.message import Message

from outreach.config import Config, Relay
from outreach.mail.smtp.classify import (
    DEFERRED,
    SESSION_FATAL,
    SESSION_TRANSIENT,
    SOFT,
    AmbiguousFailure,
    ClaimLost,
    ConnectionFailure,
    DeliveryError,
    PermanentFailure,
    SessionFailure,
    TemporaryFailure,
    classify,
)
from outreach.mail.smtp.envelope import envelope_for
from outreach.mail.wire import wire_bytes


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

    def send(self, msg: Message, mail_from: str, rcpt_to: str,
             before_data: Callable[[], bool] | None = None) -> str:
        """Deliver ``msg`` to one recipient; returns the server's 250 reply text.

        ``before_data`` runs once the recipient is accepted, just before DATA: until then
        nothing can have been delivered. When it returns False the transaction is reset
        and ``ClaimLost`` raised."""
        reused = getattr(self._local, "conn", None) is not None
        # before any command: a message that cannot be written fails here, with nothing sent
        data = dot_stuffed(msg)
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


def dot_stuffed(msg: Message) -> bytes:
    """The message as SMTP DATA: CRLF lines, leading dots doubled, ending with CRLF.CRLF
    (a signed message's bytes as they were signed: ``outreach.mail.wire``)."""
    data = wire_bytes(msg)
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"
