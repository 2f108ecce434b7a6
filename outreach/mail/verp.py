"""VERP return paths: ``b-<token>@<bounce domain>`` that name the campaign and recipient.

The token is ``<campaign>.<person ref>.<mac>``: the campaign id, the person's ref
(``l``/``c`` + id) and 16 base32 characters of an HMAC-SHA256 under the secret key with a
salt of its own, so a forged bounce cannot name anyone. Everything is lower-case ASCII
(some relays fold the case of local parts) and short (a local part is at most 64 octets).
The same token, after a random part, is the left side of the ``Message-ID``: a DSN or a
complaint that quotes the original headers but comes back to another address still
identifies the message.

Readers take the current secret or a sequence of secrets (the current one and the
fallbacks of a rotation): a return path signed before the rotation is still read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence

_SALT = b"outreach.verp"
_TOKEN = re.compile(r"^(cp[0-9a-z]{1,20})\.([lc])([0-9a-z]{1,24})\.([a-z2-7]{16})$")
_MSGID = re.compile(r"<?[0-9a-f]{8,32}\.(cp[0-9a-z]{1,20}\.[lc][0-9a-z]{1,24}\.[a-z2-7]{16})@",
                    re.I)


def _mac(secret_key: str, campaign_id: str, ref: str) -> str:
    digest = hmac.new(secret_key.encode(), _SALT + b"|" + f"{campaign_id}|{ref}".encode(),
                      hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode().lower()


def token(secret_key: str, campaign_id: str, ref: str) -> str:
    """``ref`` is the ledger's person ref: ``l:<lead id>`` or ``c:<contact id>``."""
    kind, _, person_id = ref.partition(":")
    return f"{campaign_id}.{kind}{person_id}.{_mac(secret_key, campaign_id, ref)}"


def read_token(secret_key: str | Sequence[str], value: str) -> tuple[str, str] | None:
    """``(campaign_id, ref)`` of a token genuine under ``secret_key`` (or one of them), else
    None."""
    match = _TOKEN.match(value.strip().lower())
    if not match:
        return None
    campaign_id, kind, person_id, mac = match.groups()
    ref = f"{kind}:{person_id}"
    for key in (secret_key,) if isinstance(secret_key, str) else secret_key:
        if hmac.compare_digest(mac, _mac(key, campaign_id, ref)):
            return campaign_id, ref
    return None


def return_path(secret_key: str, bounce_domain: str, campaign_id: str, ref: str) -> str:
    return f"b-{token(secret_key, campaign_id, ref)}@{bounce_domain}"


def read_return_path(secret_key: str | Sequence[str], address: str) -> tuple[str, str] | None:
    """``(campaign_id, ref)`` from a VERP address (any domain: the server checks that)."""
    local = address.strip().strip("<>").rpartition("@")[0].lower()
    if not local.startswith("b-"):
        return None
    return read_token(secret_key, local[2:])


def message_id(secret_key: str, domain: str, campaign_id: str, ref: str) -> str:
    return f"<{secrets.token_hex(8)}.{token(secret_key, campaign_id, ref)}@{domain}>"


def read_message_id(secret_key: str | Sequence[str], value: str) -> tuple[str, str] | None:
    match = _MSGID.search(value or "")
    return read_token(secret_key, match.group(1)) if match else None


_VERP = re.compile(r"\bb-(cp[0-9a-z]{1,20}\.[lc][0-9a-z]{1,24}\.[a-z2-7]{16})@", re.I)


def find_token(secret_key: str | Sequence[str], text: str) -> tuple[str, str] | None:
    """``(campaign_id, ref)`` of the first genuine token anywhere in ``text`` (a bounce dump
    quoting our headers): in a Message-ID of ours or in a VERP return path."""
    for pattern in (_MSGID, _VERP):
        for match in pattern.finditer(text or ""):
            found = read_token(secret_key, match.group(1))
            if found:
                return found
    return None
