"""Several relays (OUTREACH_SMTP_URLS): parsing, and failover to the next relay that answers."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from outreach.config import Config, ConfigError, Relay, parse_smtp_url
from outreach.mail.capture import SmtpCapture
from outreach.mail.message import build_message
from outreach.mail.smtp.classify import ConnectionFailure
from outreach.mail.smtp.messenger import SmtpMessenger


def test_smtp_urls_parse_in_order() -> None:
    config = Config.from_env({"OUTREACH_SMTP_URLS": "smtp://127.0.0.1:2525, "
                              "smtps://user%40x:p%3Ass@relay.example,"
                              "smtp://a:b@backup.example:587?tls=starttls"})
    assert config.relays == (Relay("127.0.0.1", 2525), Relay("relay.example", 465, "ssl", "user@x", "p:ss"),
                             Relay("backup.example", 587, "starttls", "a", "b"))
    single = Config.from_env({"OUTREACH_SMTP_HOST": "mx.example", "OUTREACH_SMTP_PORT": "26"})
    assert single.relays == (Relay("mx.example", 26),)
    assert parse_smtp_url("smtp://h.example").port == 25


@pytest.mark.parametrize("raw", ["http://h.example:25", "smtp://h.example:port", "smtp://:25",
                                 "smtp://h.example:25/path", "smtp://h.example?tls=maybe",
                                 "smtps://h.example?tls=none", "smtp://u:hunter2@h.example:x"])
def test_a_malformed_relay_url_is_one_line_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"OUTREACH_SMTP_URLS": f"smtp://ok.example:25,{raw}"})
    message = str(caught.value)
    assert message.startswith("OUTREACH_SMTP_URLS=") and "\n" not in message
    assert "hunter2" not in message  # a password never reaches a log


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def relay() -> Iterator[SmtpCapture]:
    capture = SmtpCapture().start()
    yield capture
    capture.stop()


def _message(to: str) -> object:
    return build_message(from_email="news@outreach.example", to_email=to, subject="Hi", text="t",
                         html="<p>h</p>", unsubscribe_url="https://x.example/u/1",
                         unsubscribe_mailto="mailto:u@outreach.example", campaign_id="c1")


def _messenger(*ports: int, cooldown: float = 30.0) -> SmtpMessenger:
    urls = tuple(f"smtp://127.0.0.1:{port}" for port in ports)
    return SmtpMessenger(Config(smtp_urls=urls, smtp_timeout=5,
                                smtp_relay_cooldown_seconds=cooldown))


def test_a_relay_that_is_down_passes_to_the_next(relay: SmtpCapture) -> None:
    down = _closed_port()
    messenger = _messenger(down, relay.port)
    try:
        for i in range(3):
            messenger.send(_message(f"r{i}@example.org"), "news@outreach.example",
                           f"r{i}@example.org")
    finally:
        messenger.close()
    assert relay.count_by_recipient() == {f"r{i}@example.org": 1 for i in range(3)}
    assert messenger._order() == [1, 0]  # the failed relay waits out its cool-down


def test_after_the_cool_down_the_first_relay_is_tried_again(relay: SmtpCapture) -> None:
    messenger = _messenger(_closed_port(), relay.port, cooldown=0)
    messenger.send(_message("a@example.org"), "news@outreach.example", "a@example.org")
    messenger.close()
    assert messenger._order() == [0, 1]


def test_every_relay_down_is_a_connection_failure() -> None:
    messenger = _messenger(_closed_port(), _closed_port())
    with pytest.raises(ConnectionFailure, match="cannot connect"):
        messenger.send(_message("a@example.org"), "news@outreach.example", "a@example.org")


def test_a_421_at_mail_from_moves_the_transaction_to_the_next_relay(relay: SmtpCapture) -> None:
    closing = SmtpCapture().start()

    async def handle_mail(server: object, session: object, envelope: object, address: str,
                          options: list[str]) -> str:
        return "421 4.3.2 Service shutting down"

    closing.handler.handle_MAIL = handle_mail  # type: ignore[attr-defined]
    messenger = _messenger(closing.port, relay.port)
    try:
        messenger.send(_message("a@example.org"), "news@outreach.example", "a@example.org")
    finally:
        messenger.close()
        closing.stop()
    assert closing.messages == [] and relay.count_by_recipient() == {"a@example.org": 1}
