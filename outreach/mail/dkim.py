"""DKIM signing (RFC 6376; Ed25519 by RFC 8463), relaxed/relaxed, signed through OpenSSL.

Canonicalisation is our own (a few lines of bytes handling, checked against dkimpy's
verifier in the tests); the signature itself comes from ``cryptography`` (OpenSSL): an
RSA-2048 signature costs well under a millisecond there, against ≈ 10 ms in dkimpy's
pure-Python RSA.

``h=`` lists every header of ``SIGNED_HEADERS`` that the message has, and once more
those in ``OVERSIGNED`` (an extra, absent instance signs "no further one may be added":
a second From or List-Unsubscribe added on the way breaks the signature).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from outreach.mail import wire

SIGNED_HEADERS = ("from", "to", "cc", "reply-to", "subject", "date", "message-id",
                  "mime-version", "content-type", "content-transfer-encoding", "list-id",
                  "list-unsubscribe", "list-unsubscribe-post", "in-reply-to", "references")
OVERSIGNED = ("from", "subject", "list-unsubscribe", "list-unsubscribe-post")
MIN_RSA_BITS = 2048

# a run of WSP that is not a single SP (a lone SP, most of them, is left alone: matching
# and replacing each one by itself was most of the time canonicalising a body took)
_WSP = re.compile(rb" [ \t]+|\t[ \t]*")
_SELECTOR = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*"
                       r"[A-Za-z0-9])?)*$")


class DkimError(ValueError):
    """A key or setting that cannot sign; ``setting`` is the variable at fault."""

    def __init__(self, message: str, setting: str = "OUTREACH_DKIM_PRIVATE_KEY_FILE") -> None:
        super().__init__(message)
        self.setting = setting


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2: lower-case name, unfolded value, WSP runs as one SP, no WSP at the
    ends of the value; ``name:value`` followed by CRLF."""
    value = value.replace(b"\r\n", b"").replace(b"\n", b"")
    value = _WSP.sub(b" ", value).strip(b" ")
    return name.strip().lower() + b":" + value + b"\r\n"


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4: WSP runs as one SP, none at line ends, no empty lines at the end;
    a non-empty body ends with CRLF."""
    if not body:
        return b""
    body = _WSP.sub(b" ", body)
    body = body.replace(b" \r\n", b"\r\n")  # WSP runs are single SPs by now
    if body.endswith(b" "):
        body = body[:-1]
    body = body.rstrip(b"\r\n")
    return body + b"\r\n" if body else b""


def split_message(data: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The header fields ``(name, raw value with its folding)`` in order, and the body."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, body = data, b""
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
        elif line:
            name, _, value = line.partition(b":")
            fields.append((name, value))
    return fields, body


@dataclass(frozen=True)
class DkimSigner:
    domain: str
    selector: str
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

    @property
    def algorithm(self) -> str:
        return "ed25519-sha256" if isinstance(self.key, ed25519.Ed25519PrivateKey) else "rsa-sha256"

    @classmethod
    def from_pem(cls, domain: str, selector: str, pem: bytes) -> DkimSigner:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise DkimError(f"not a PEM private key without a passphrase: {exc}") from exc
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < MIN_RSA_BITS:
                raise DkimError(f"an RSA key of {key.key_size} bits; DKIM needs {MIN_RSA_BITS}+")
        elif not isinstance(key, ed25519.Ed25519PrivateKey):
            raise DkimError("the key is neither RSA nor Ed25519")
        if not _SELECTOR.match(selector or ""):
            raise DkimError(f"not a DKIM selector: {selector!r}", "OUTREACH_DKIM_SELECTOR")
        if not domain or not domain.isascii():
            try:
                domain = domain.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise DkimError(f"not a domain: {domain!r}", "OUTREACH_DKIM_DOMAIN") from exc
        return cls(domain.lower().rstrip("."), selector, key)

    @classmethod
    def from_file(cls, domain: str, selector: str, path: str) -> DkimSigner:
        try:
            pem = Path(path).read_bytes()
        except OSError as exc:
            raise DkimError(f"cannot read {path}: {exc.strerror or exc}") from exc
        return cls.from_pem(domain, selector, pem)

    def signature_header(self, data: bytes, timestamp: int | None = None) -> str:
        """The value of the ``DKIM-Signature`` header for the message ``data`` (CRLF line
        ends, as it will travel), folded at whitespace."""
        fields, body = split_message(data)
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest()).decode()
        present: dict[bytes, list[bytes]] = {}
        for name, value in fields:
            present.setdefault(name.strip().lower(), []).append(value)
        names: list[str] = []
        canon = bytearray()
        for wanted in SIGNED_HEADERS:
            values = present.get(wanted.encode())
            if not values:
                continue
            # each listed name takes the last not yet used instance (RFC 6376 5.4.2)
            for value in reversed(values):
                names.append(wanted)
                canon += relaxed_header(wanted.encode(), value)
        names += [name for name in OVERSIGNED if name.encode() in present]
        stamp = int(time.time()) if timestamp is None else timestamp
        value = (f"v=1; a={self.algorithm}; c=relaxed/relaxed; d={self.domain}; "
                 f"s={self.selector}; t={stamp};\r\n\th={':'.join(names)};\r\n\tbh={body_hash};"
                 f"\r\n\tb=")
        canon += relaxed_header(b"dkim-signature", value.encode()).rstrip(b"\r\n")
        return value + base64.b64encode(self._sign(bytes(canon))).decode()

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(hashlib.sha256(data).digest())  # RFC 8463: over the hash
        return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def sign_bytes(self, data: bytes) -> bytes:
        """``data`` with its ``DKIM-Signature`` header in front."""
        return b"DKIM-Signature: " + self.signature_header(data).encode() + b"\r\n" + data

    def sign_message(self, msg: Message) -> Message:
        """Adds the ``DKIM-Signature`` header as the first field of ``msg`` (compat32),
        signing the bytes ``msg`` serialises to, and keeps those bytes with the signature
        in front as what the message travels as (``outreach.mail.wire``): the send path
        does not serialise it again. (Serialising it again would give the same bytes, the
        multipart boundary being fixed by the first pass, but for the signature header,
        which compat32 may re-fold at its whitespace: relaxed canonicalisation ignores it.)"""
        data = wire.serialise(msg)
        value = self.signature_header(data)
        msg._headers.insert(0, ("DKIM-Signature", value))  # first: it signs what follows
        wire.remember(msg, b"DKIM-Signature: " + value.encode() + b"\r\n" + data)
        return msg

    def dns_record(self) -> str:
        """The TXT record to publish at ``<selector>._domainkey.<domain>``."""
        public = self.key.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
        der = public.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


def generate_key(algorithm: str = "rsa", bits: int = 2048) -> bytes:
    """A new private key as PKCS#8 PEM."""
    if algorithm == "ed25519":
        key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = ed25519.Ed25519PrivateKey.generate()
    else:
        if bits < MIN_RSA_BITS:
            raise DkimError(f"RSA keys for DKIM need at least {MIN_RSA_BITS} bits")
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


_CACHE: dict[tuple[str, str, str, float], DkimSigner] = {}


def signer_for(domain: str, selector: str, key_file: str) -> DkimSigner | None:
    """The signer of these settings (None when any is empty), loaded once per process and
    again when the key file changes."""
    if not (domain and selector and key_file):
        return None
    try:
        mtime = Path(key_file).stat().st_mtime
    except OSError as exc:
        raise DkimError(f"cannot read {key_file}: {exc.strerror or exc}") from exc
    cache_key = (domain, selector, key_file, mtime)
    signer = _CACHE.get(cache_key)
    if signer is None:
        if len(_CACHE) > 8:
            _CACHE.clear()
        signer = _CACHE[cache_key] = DkimSigner.from_file(domain, selector, key_file)
    return signer


def from_config(config: Any) -> DkimSigner | None:
    """The signer of ``OUTREACH_DKIM_*`` (None when signing is not set up)."""
    return signer_for(config.dkim_domain, config.dkim_selector, config.dkim_private_key_file)
