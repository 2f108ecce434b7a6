"""A real local SMTP server (aiosmtpd) that keeps what it receives, for dev mode and tests.

It can be told to answer with an error code for some addresses or for a while,
which is how tests show temporary (4xx) and permanent (5xx) failures.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class CapturedMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]

    def summary(self) -> dict[str, Any]:
        msg = self.message
        html = msg.get_body(("html",))
        text = msg.get_body(("plain",))
        return {
            "from": self.mail_from,
            "to": self.rcpt_tos,
            "subject": msg["Subject"],
            "message_id": msg["Message-ID"],
            "list_unsubscribe": msg["List-Unsubscribe"],
            "text": text.get_content() if text else None,
            "html": html.get_content() if html else None,
        }


@dataclass
class _Handler:
    messages: list[CapturedMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # (recipient) -> "550 ..." / "421 ..." / None; decides the answer to DATA
    responder: Callable[[str], str | None] | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.responder is not None:
            for rcpt in envelope.rcpt_tos:
                answer = self.responder(rcpt)
                if answer:
                    return answer
        with self.lock:
            self.messages.append(
                CapturedMessage(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 Message accepted for delivery"


class SmtpCapture:
    """Start with ``start()``; ``host``/``port`` are where to send."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = _Handler()
        if port == 0:
            import socket

            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.host, self.port = host, port
        self._controller = Controller(self.handler, hostname=host, port=port)

    def start(self) -> SmtpCapture:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def set_responder(self, responder: Callable[[str], str | None] | None) -> None:
        self.handler.responder = responder

    @property
    def messages(self) -> list[CapturedMessage]:
        with self.handler.lock:
            return list(self.handler.messages)

    def count_by_recipient(self) -> Counter[str]:
        return Counter(r.lower() for m in self.messages for r in m.rcpt_tos)

    def clear(self) -> None:
        with self.handler.lock:
            self.handler.messages.clear()
