"""The report parser on real-world bounces (tests/fixtures/bounces/, sources in its README):
what each one is, who failed, and the classifier's verdict. Who the report is about (the
signed token) is shown by tests/integration/test_bounce_fixtures.py; here the samples are
read as they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from outreach.mail.reports import classify_status, parse

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bounces"

SAMPLES = [
    # file, what, [(kind, recipient, status)]
    ("sisimai-rhost-gsuite-14.eml", "dsn", [("hard", "libsisimai-2@googlegroups.com", "5.1.1")]),
    ("flufl-dsn_13.txt", "dsn", [("hard", "marcooherbst@cardinal.com", "5.1.1")]),
    ("sisimai-lhost-exchange2007-06.eml", "dsn", [("hard", "transports@agglo-saumur.fr", "5.1.1")]),
    ("sisimai-rhost-google-05.eml", "dsn", [("soft", "kijitora@google.example.com", "5.2.2")]),
    ("sisimai-arf-02.eml", "arf",
     [("complaint", "this-local-part-does-not-exist-on-yahoo@yahoo.com", "")]),
    ("flufl-simple_17.txt", "other", []),  # a plain-text bounce: no DSN to read
    # "Status: 5.0.0 (recipient reached disk quota)": a full mailbox, soft
    ("flufl-dsn_01.txt", "dsn", [("soft", "JimmyMcEgypt@go.com", "5.0.0")]),
    # a per-recipient group run into the per-message one (the line between holds a space),
    # and "Status: 553 Exceeded maximum inbound message size": the message, not the address
    ("flufl-dsn_03.txt", "dsn", [("blocked", "ddd.kkk@advalvas.be", "")]),
    # one field group only (no per-message group): "550 Unknown user"
    ("sisimai-lhost-mcafee-01.eml", "dsn", [("hard", "kijitora@example.co.jp", "")]),
    # "Status: 5.0.0" with "... 5.2.2 ... Mailbox Full" in the diagnostic
    ("sisimai-lhost-amazonses-03.eml", "dsn", [("soft", "kijitora@example.jp", "5.0.0")]),
]


@pytest.mark.parametrize(("name", "what", "expected"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_real_world_samples(name: str, what: str, expected: list[tuple[str, str, str]]) -> None:
    parsed = parse((FIXTURES / name).read_bytes(), "k" * 32, [])
    assert parsed.what == what
    assert [(r.kind, r.recipient, r.status) for r in parsed.reports] == expected
    assert all(r.campaign_id == "" and r.ref == "" for r in parsed.reports)  # no token: nobody


def test_a_status_without_detail_that_says_the_mailbox_is_full_is_soft() -> None:
    assert classify_status("5.0.0 (recipient reached disk quota)") == "soft"
    assert classify_status("5.0.0", "smtp; 550 5.2.2 <a@b>... Mailbox Full") == "soft"
    assert classify_status("5.0.0", "smtp; 550 user over quota") == "soft"
    assert classify_status("5.0.0", "smtp; 550 5.7.1 message refused") == "blocked"
    assert classify_status("5.0.0", "smtp; 550 daily sending quota exceeded") == "blocked"
    assert classify_status("5.1.1 (over quota words do not matter here)") == "hard"
    assert classify_status("553 Exceeded maximum inbound message size") == "blocked"
