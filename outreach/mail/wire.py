"""A message as it travels: its bytes with CRLF line ends, serialised once.

Serialising a message (``Message.as_bytes``, header folding above all) is the costliest
step of building one, so a signed message keeps the bytes its DKIM signature was computed
over, with the ``DKIM-Signature`` field in front (``remember``), and the send path takes
those (``wire_bytes``) instead of serialising it a second time. The bytes are only used
while the message's header fields are the ones they were made from: a field added,
removed or changed afterwards (e.g. an unsigned ``X-`` header) means a fresh serialisation,
never stale bytes. Changing a signed message's parts after signing breaks its signature
either way: signing is the last step of building one.
"""

from __future__ import annotations

from email._policybase import Compat32
from email.message import Message
from email.policy import Policy, compat32

_ATTR = "_outreach_wire"


class _Compat32(Compat32):
    """compat32 writing a short ASCII header field as it is, without ``email.header``'s
    folding machinery (half the cost of serialising a campaign message), which would
    write it the same: a value that may need folding or encoding takes compat32's path."""

    def _fold(self, name: str, value: object, sanitize: bool) -> str:
        if (isinstance(value, str) and value.isascii() and len(name) + len(value) <= 76
                and "\n" not in value and "\r" not in value):
            return f"{name}: {value}{self.linesep}"
        return str(super()._fold(name, value, sanitize))  # type: ignore[misc]


_CRLF = _Compat32(linesep="\r\n")


def _policy(msg: Message) -> Policy:
    if msg.policy is compat32:  # what email.mime builds (outreach.mail.message)
        return _CRLF
    return msg.policy.clone(linesep="\r\n")


def serialise(msg: Message) -> bytes:
    """``msg`` serialised now, with CRLF line ends."""
    return msg.as_bytes(policy=_policy(msg))


def remember(msg: Message, data: bytes) -> None:
    """``data`` are the bytes ``msg`` travels as, as long as its header fields stay these."""
    setattr(msg, _ATTR, (list(msg._headers), data))  # type: ignore[attr-defined]


def wire_bytes(msg: Message) -> bytes:
    """The bytes ``msg`` travels as (CRLF line ends, not dot-stuffed): those remembered when
    it was signed, unless its header fields changed since; else serialised now."""
    kept = getattr(msg, _ATTR, None)
    if kept is not None and kept[0] == msg._headers:  # type: ignore[attr-defined]
        return bytes(kept[1])
    return serialise(msg)
