"""DKIM signing (outreach/mail/dkim.py) proved by dkimpy's verifier."""

from __future__ import annotations

import re

import dkim
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach.cli.main import main
from outreach.mail.dkim import DkimError, DkimSigner, generate_key, relaxed_body, relaxed_header
from outreach.mail.message import build_message

SIGNERS = {alg: DkimSigner.from_pem("example.com", "sel", generate_key(alg))
           for alg in ("rsa", "ed25519")}


def _wire(msg) -> bytes:  # noqa: ANN001
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def _verify(data: bytes, signer: DkimSigner) -> bool:
    asked: list[bytes] = []

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return signer.dns_record().encode()

    ok = dkim.verify(data, dnsfunc=dnsfunc)
    assert not ok or asked[0].rstrip(b".") == signer.record_name.encode()
    return bool(ok)


def _message(signer: DkimSigner | None, to: str = "bob@example.org", subject: str = "Hello"):  # noqa: ANN202
    return build_message(
        from_email="news@example.com", to_email=to, subject=subject,
        text="Hello  there\n\n  indented line   \n\n\n", html="<p>Hello <b>there</b></p>\n",
        unsubscribe_url="https://mail.example.com/u/abc.def",
        unsubscribe_mailto="mailto:unsubscribe@example.com?subject=unsubscribe%20abc",
        campaign_id="cp1", dkim=signer)


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
@pytest.mark.parametrize("to,subject", [
    ("bob@example.org", "Hello"),
    ("bob@bücher.de", "Grüße aus Köln — 10 % Rabatt"),     # A-label domain, RFC 2047 subject
    ("jösé@bücher.de", "Grüße\taus  Köln"),                 # SMTPUTF8: raw UTF-8 headers
])
def test_signed_messages_verify(alg: str, to: str, subject: str) -> None:
    signer = SIGNERS[alg]
    data = _wire(_message(signer, to, subject))
    assert data.startswith(b"DKIM-Signature: ")
    assert _verify(data, signer)
    header = data.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    h = re.search(r"h=([^;]+);", re.sub(r"\r\n[ \t]+", " ", header)).group(1).split(":")
    for name in ("from", "to", "subject", "date", "message-id", "mime-version", "content-type",
                 "list-id", "list-unsubscribe", "list-unsubscribe-post"):
        assert name in h
    assert f"a={'ed25519' if alg == 'ed25519' else 'rsa'}-sha256" in header
    assert "c=relaxed/relaxed" in header


@pytest.mark.parametrize("header,new", [
    (b"List-Unsubscribe: ", b"List-Unsubscribe: <https://evil.example/u>, "),
    (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: List-Unsubscribe=Two"),
    (b"Subject: Hello", b"Subject: Hellp"),
])
def test_changing_a_signed_header_breaks_the_signature(header: bytes, new: bytes) -> None:
    signer = SIGNERS["rsa"]
    data = _wire(_message(signer))
    assert header in data
    assert not _verify(data.replace(header, new, 1), signer)


def test_an_added_list_unsubscribe_or_from_breaks_it() -> None:
    signer = SIGNERS["rsa"]
    data = _wire(_message(signer))
    head, body = data.split(b"\r\n\r\n", 1)
    for extra in (b"List-Unsubscribe: <https://evil.example/u>", b"From: ceo@example.com"):
        assert not _verify(head + b"\r\n" + extra + b"\r\n\r\n" + body, signer)
    # an unsigned header added on the way (a relay's Received) does not
    assert _verify(b"Received: from relay by mx; Tue, 1 Dec 2026 10:00:00 +0000\r\n" + data, signer)


def test_relaxed_canonicalisation_tolerates_refolding() -> None:
    signer = SIGNERS["rsa"]
    data = _wire(_message(signer))
    refolded = data.replace(b"Subject: Hello", b"Subject:   Hello   ", 1)
    assert _verify(refolded, signer)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_changed_byte_of_the_signed_content_fails(data: st.DataObject) -> None:
    signer = SIGNERS[data.draw(st.sampled_from(["rsa", "ed25519"]))]
    wire = _wire(_message(signer))
    head, _, body = wire.partition(b"\r\n\r\n")
    offset = len(head) + 4
    # any visible byte of the body or of a signed header's value
    candidates = [offset + i for i, b in enumerate(body) if 0x21 <= b <= 0x7e]
    for m in re.finditer(rb"\r\n(To|Subject|List-Unsubscribe|List-Id|Message-ID|Date): ([^\r]+)", head):
        candidates += [m.start(2) + i for i, b in enumerate(m.group(2)) if 0x21 <= b <= 0x7e]
    pos = data.draw(st.sampled_from(candidates))
    old = wire[pos]
    new = data.draw(st.integers(0x21, 0x7e).filter(
        lambda b: b != old and chr(b).lower() != chr(old).lower()))
    tampered = wire[:pos] + bytes([new]) + wire[pos + 1:]
    assert _verify(wire, signer)
    assert not _verify(tampered, signer)


def test_canonical_forms() -> None:
    assert relaxed_header(b"SubJect", b" a  \t b \r\n\tc  ") == b"subject:a b c\r\n"
    assert relaxed_body(b"a  b \r\n\r\n\r\n") == b"a b\r\n"
    assert relaxed_body(b"") == b""
    assert relaxed_body(b"\r\n\r\n") == b""


def test_pkcs1_keys_load_and_weak_keys_are_refused() -> None:
    key = serialization.load_pem_private_key(generate_key("rsa"), None)
    pkcs1 = key.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption())
    assert b"BEGIN RSA PRIVATE KEY" in pkcs1
    signer = DkimSigner.from_pem("example.com", "s2", pkcs1)
    assert _verify(_wire(_message(signer)), signer)
    from cryptography.hazmat.primitives.asymmetric import rsa
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(DkimError, match="1024 bits"):
        DkimSigner.from_pem("example.com", "sel", weak)
    with pytest.raises(DkimError):
        DkimSigner.from_pem("example.com", "sel", b"not a key")


@pytest.mark.parametrize("alg,k", [("rsa", "rsa"), ("ed25519", "ed25519")])
def test_keygen_writes_the_key_and_prints_the_record_last(tmp_path, monkeypatch, alg: str, k: str) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["dkim", "keygen", "--selector", "mar2026", "--domain",
                                       "example.com", "--algorithm", alg])
    assert result.exit_code == 0, result.output
    path = tmp_path / "mar2026.private.pem"
    assert str(path) in result.output
    assert (path.stat().st_mode & 0o777) == 0o600
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"v=DKIM1; k={k}; p=")
    signer = DkimSigner.from_file("example.com", "mar2026", str(path))
    assert signer.dns_record() == last
    assert _verify(_wire(_message(signer)), signer)
    again = CliRunner().invoke(main, ["dkim", "keygen", "--selector", "mar2026", "--domain", "example.com"])
    assert again.exit_code == 2  # never overwrites a key
    out = CliRunner().invoke(main, ["dkim", "keygen", "--selector", "x", "--domain", "example.com",
                                    "--out", str(tmp_path / "k.pem")])
    assert out.exit_code == 0 and (tmp_path / "k.pem").exists()


def test_authheaders_reports_dkim_and_dmarc_pass_for_an_aligned_from() -> None:
    import authheaders

    signer = DkimSigner.from_pem("example.com", "sel", generate_key("rsa"))
    wire = _wire(_message(signer))  # From: news@example.com, d=example.com

    def dnsfunc(name: bytes | str, timeout: int = 5) -> bytes | str | None:
        name = (name.decode() if isinstance(name, bytes) else name).rstrip(".")
        if name == signer.record_name:
            return signer.dns_record().encode()
        if name == "_dmarc.example.com":
            return "v=DMARC1; p=reject"  # authheaders' DMARC lookup takes text
        return None

    result = authheaders.authenticate_message(wire, "mx.example.org", spf=False, dkim=True,
                                              dmarc=True, dnsfunc=dnsfunc)
    assert "dkim=pass header.d=example.com" in result
    assert "dmarc=pass" in result and "header.from=example.com" in result
    tampered = wire.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                            b"List-Unsubscribe-Post: List-Unsubscribe=One-Clack")
    failed = authheaders.authenticate_message(tampered, "mx.example.org", spf=False, dkim=True,
                                              dmarc=True, dnsfunc=dnsfunc)
    assert "dkim=fail" in failed and "dmarc=fail" in failed


_WSP_TEXT = st.text(alphabet=st.sampled_from(["a", "b", " ", "\t", "\n", ".", "="]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(body=_WSP_TEXT, value=_WSP_TEXT)
def test_canonical_forms_agree_with_dkimpy(body: str, value: str) -> None:
    from dkim.canonicalization import Relaxed

    data = (body.encode() + b"\n").replace(b"\n", b"\r\n")  # as our messages end: with CRLF
    assert relaxed_body(data) == Relaxed.canonicalize_body(data)
    folded = value.encode().replace(b"\n", b"\r\n\t")  # a folded field value
    ((name, canon),) = Relaxed.canonicalize_headers([(b"Subject", folded)])
    assert relaxed_header(b"Subject", folded) == name + b":" + canon


def test_the_send_path_sends_the_bytes_that_were_signed() -> None:
    from outreach.mail.smtp.messenger import dot_stuffed
    from outreach.mail.wire import wire_bytes

    signer = SIGNERS["rsa"]
    msg = _message(signer)
    kept = wire_bytes(msg)  # what was signed, the signature in front: not serialised again
    assert kept.startswith(b"DKIM-Signature: ") and _verify(kept, signer)
    assert dot_stuffed(msg) == kept.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    # a field added after signing: serialised afresh (never stale bytes), still verifies
    msg["X-Outreach-Test"] = "yes"
    again = wire_bytes(msg)
    assert b"\r\nX-Outreach-Test: yes\r\n" in again and _verify(again, signer)
