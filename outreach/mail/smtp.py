"""SMTP delivery, one recipient per transaction, over a connection reused per worker thread.

Failures are classified so the sender can apply the exactly-once policy:
- ``TemporaryFailure`` (4xx): not delivered, try again later;
- ``PermanentFailure`` (5xx): not delivered, do not try again;
- ``ConnectionFailure``: not delivered (the message content was never sent);
- ``AmbiguousFailure``: the content was sent but no final reply came back: the
  message may or may not have been delivered, so it must not be resent blindly.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
from email.message import Message

from outreach.config import Config


class DeliveryError(Exception):
    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TemporaryFailure(DeliveryError):
    pass


class PermanentFailure(DeliveryError):
    pass


class ConnectionFailure(DeliveryError):
    pass


class AmbiguousFailure(DeliveryError):
    pass


class SmtpMessenger:
    """Sends through any relay (host, port, none|starttls|ssl, optional login)."""

    def __init__(self, config: Config) -> None:
        self.host, self.port = config.smtp_host, config.smtp_port
        self.tls, self.timeout = config.smtp_tls, config.smtp_timeout
        self.user, self.password = config.smtp_user, config.smtp_password
        self._local = threading.local()

    def _connection(self) -> smtplib.SMTP:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            if self.tls == "ssl":
                conn = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                        context=ssl.create_default_context())
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.tls == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            conn.ehlo_or_helo_if_needed()
            if self.user:
                conn.login(self.user, self.password)
        except smtplib.SMTPResponseException as exc:
            raise _classify(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectionFailure(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        self._local.conn = conn
        return conn

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
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def send(self, msg: Message, mail_from: str, rcpt_to: str) -> str:
        """Deliver ``msg`` to one recipient; returns the server's 250 reply text."""
        conn = self._connection()
        try:
            code, reply = conn.mail(mail_from)
            if code != 250:
                conn.rset()
                raise _classify(code, reply)
            code, reply = conn.rcpt(rcpt_to)
            if code not in (250, 251):
                conn.rset()
                raise _classify(code, reply)
            code, reply = conn.docmd("data")
            if code != 354:
                conn.rset()
                raise _classify(code, reply)
        except DeliveryError:
            raise
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise ConnectionFailure(f"connection lost before the message was sent: {exc}") from exc
        try:
            conn.send(_dot_stuffed(msg))
            code, reply = conn.getreply()
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise AmbiguousFailure(f"no final reply after the message was sent: {exc}") from exc
        if code != 250:
            raise _classify(code, reply)
        return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _dot_stuffed(msg: Message) -> bytes:
    """The message as SMTP DATA: CRLF lines, leading dots doubled, ending with CRLF.CRLF."""
    data = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _classify(code: int, reply: bytes | str) -> DeliveryError:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    message = f"{code} {text}"
    if 400 <= code < 500:
        return TemporaryFailure(message, code)
    if code >= 500:
        return PermanentFailure(message, code)
    return TemporaryFailure(message, code)
