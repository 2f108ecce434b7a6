"""Issue 17, item 6: the SSRF guard sees IPv4 inside IPv6, a webhook response has a total
deadline, SES checks the topic before fetching anything, Idempotency-Key is scoped, test
sends respect suppression and consent and are rate limited, rate limits key IPv6 by /64."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import pytest
from test_provider_webhooks import CERT_URL, _ses_bounce, hooks, sns  # noqa: F401

from outreach.campaigns import test_send
from outreach.campaigns.test_send import TEST_SENDS_PER_HOUR, send_test
from outreach.errors import RateLimited
from outreach.normalize import client_key
from outreach.platform import outbound

# ---------------------------------------------------------------- SSRF guard


@pytest.mark.parametrize("address", [
    "2002:7f00:1::1",                      # 6to4 of 127.0.0.1
    "2002:a00:1::",                        # 6to4 of 10.0.0.1
    "2002:a9fe:a9fe::1",                   # 6to4 of 169.254.169.254 (cloud metadata)
    "2002:c0a8:101::",                     # 6to4 of 192.168.1.1
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "2001:0:7f00:1:0:0:f5ff:fffe",         # Teredo, server 127.0.0.1, client 10.0.0.1
    "::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254",
    "64:ff9b::a00:1", "64:ff9b::7f00:1",   # NAT64 of 10.0.0.1, 127.0.0.1
    "::1", "fe80::1", "fc00::1", "127.0.0.1", "10.0.0.1", "169.254.169.254",
])
def test_ipv6_forms_of_private_ipv4_are_blocked(address: str) -> None:
    assert outbound.blocked(address)


@pytest.mark.parametrize("address", ["2002:808:808::1", "::ffff:8.8.8.8", "8.8.8.8",
                                     "2606:4700:4700::1111"])
def test_public_addresses_still_pass(address: str) -> None:
    assert not outbound.blocked(address)


# ---------------------------------------------------------------- webhook response deadline


def _dripping_server() -> tuple[int, threading.Event]:
    """An HTTP server that answers one header line every 0.2 s, forever."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            n = 0
            while not stop.is_set():
                try:
                    conn.sendall(f"X-Drip-{n}: 1\r\n".encode())
                except OSError:
                    return
                n += 1
                time.sleep(0.2)
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1], stop


def test_a_slow_drip_response_is_cut_at_the_total_deadline() -> None:
    port, stop = _dripping_server()
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            outbound.post(f"http://127.0.0.1:{port}/hook", b"{}", {}, 1.0, allow_private=True)
    finally:
        stop.set()
    assert time.monotonic() - started < 2.5


# ---------------------------------------------------------------- SES topic first


def test_ses_unknown_topic_fetches_no_certificate(hooks: Any) -> None:  # noqa: F811
    body = sns(_ses_bounce(hooks, "ann@example.org"), TopicArn="arn:aws:sns:eu-west-1:9:other",
               SigningCertURL=CERT_URL.replace(".pem", "-attacker.pem"))
    assert hooks.client.post("/webhooks/ses", data=json.dumps(body)).status_code == 403
    assert hooks.fetched == []


# ---------------------------------------------------------------- Idempotency-Key scope


def test_idempotency_key_is_scoped_by_asset_and_address(env) -> None:
    key = {"Idempotency-Key": "same-key"}
    first = env.register("ann@example.com", headers=key).get_json()["id"]
    again = env.register("ann@example.com", headers=key).get_json()["id"]
    other_person = env.register("bob@example.com", headers=key).get_json()["id"]
    other_asset = env.register("ann@example.com", asset="other", headers=key).get_json()["id"]
    assert first == again
    assert len({first, other_person, other_asset}) == 3
    env.drain()
    emails = {lead["email"] for lead in env.get("/api/v1/leads").get_json()["items"]}
    assert emails == {"ann@example.com", "bob@example.com"}


# ---------------------------------------------------------------- rate limits by /64


def test_client_key_groups_ipv6_by_64() -> None:
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("192.0.2.1") == "192.0.2.1" and client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key(None) == "unknown"


def test_intake_rate_limit_counts_an_ipv6_64_as_one_client(make_env) -> None:
    with make_env(intake_rate_limit="2/minute") as env:
        def post(address: str) -> int:
            return env.client.post("/api/v1/registrations", json={
                "kind": "white_paper", "asset": "guide", "email": f"x{time.time_ns()}@example.com"},
                environ_base={"REMOTE_ADDR": address}).status_code

        assert post("2001:db8:0:1::1") == 202
        assert post("2001:db8:0:1::2") == 202
        assert post("2001:db8:0:1:abcd::3") == 429  # same /64: the same client
        assert post("2001:db8:0:2::1") == 202       # another /64


# ---------------------------------------------------------------- test sends


def test_test_sends_respect_suppression_and_consent(cenv: Any) -> None:
    list_id = cenv.leads("ann@example.com", first_name="Ann")
    cenv.leads("nocon@example.com", consent=False)
    campaign_id = cenv.campaign([list_id])
    cenv.store.r.hset(cenv.store.keys.suppressed, "ann@example.com", "unsubscribed:cp0")
    results = send_test(cenv.store, cenv.config, cenv.messenger, campaign_id,
                        ["ann@example.com", "nocon@example.com", "colleague@example.com"])
    assert results["ann@example.com"] == "not sent: the address is suppressed"
    assert results["nocon@example.com"] == "not sent: this person has not given consent"
    assert results["colleague@example.com"] == "sent"
    assert [rcpt for _, _, rcpt in cenv.messenger.messages] == ["colleague@example.com"]


def test_test_sends_are_rate_limited_per_campaign(cenv: Any) -> None:
    campaign_id = cenv.campaign([cenv.leads("ann@example.com")])
    sent = 0
    with pytest.raises(RateLimited):
        for i in range(TEST_SENDS_PER_HOUR):
            send_test(cenv.store, cenv.config, cenv.messenger, campaign_id,
                      [f"t{i}-{n}@example.com" for n in range(5)])
            sent += 5
    assert sent == TEST_SENDS_PER_HOUR
    assert len(cenv.messenger.messages) == TEST_SENDS_PER_HOUR
    assert test_send.TEST_SENDS_PER_HOUR == 30
