"""Who is at fault for an SMTP reply, and the exceptions that carry the verdict.

Every refusal is attributed to the party at fault (``classify``):

- ``SessionFailure``: the relay or the sender's settings (connect, greeting, EHLO,
  STARTTLS/TLS, AUTH, MAIL FROM, a ``421`` without ``4.7.x``, a sender rejected at RCPT). Never a
  recipient's: the claim is handed back. ``fatal`` ones (5xx, TLS failures) need an
  operator (the campaign pauses after a few tries), the others are transient.
  ``ConnectionFailure`` is the transient kind for network errors.
- ``TemporaryFailure``: the recipient's soft refusal (every 4xx, ``5.2.2`` mailbox full):
  not delivered, try again later. Its ``DEFERRED`` kind (``421``/``4xx`` with ``4.7.x`` at
  RCPT or after DATA) is the receiving domain asking to slow down: that domain backs off.
- ``PermanentFailure``: the recipient's permanent refusal; ``suppress`` is true only for
  a hard bounce (``5.1.x`` no such mailbox or domain, ``5.2.1`` disabled). ``5.7.x``
  (policy), ``5.3.x``, ``5.4.x`` and the rest fail the recipient without suppressing.
  ``UnsupportedAddress`` (a non-ASCII local part through a relay without SMTPUTF8) is one.
- ``AmbiguousFailure``: the content was sent but no final reply came back: the message
  may or may not have been delivered, so it must not be resent blindly.
"""

from __future__ import annotations

import re

# kinds of answer (the classifier's verdicts)
HARD = "hard"  # the address does not exist or is disabled: fail and suppress
SOFT = "soft"  # try this recipient again later
DEFERRED = "deferred"  # 421/4xx with 4.7.x at RCPT or after DATA: the receiving domain says
#                        "slow down": back that domain off; not the recipient's refusal
BLOCKED = "blocked"  # 5.7.x policy: not the address's fault; fail, never suppress
REFUSED = "refused"  # any other permanent refusal that is not the address's fault
SESSION_TRANSIENT = "session_transient"  # the relay, for now: hand the claim back
SESSION_FATAL = "session_fatal"  # the relay or the sender's settings: hand back, pause soon

SESSION_STAGES = ("connect", "greeting", "ehlo", "starttls", "auth", "mail")
RECIPIENT_STAGES = ("rcpt", "data", "end")

_ENHANCED = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\d)")
# Replies without an enhanced code are read conservatively: only these plain "no such
# mailbox" phrasings are a hard bounce, and only when nothing in the reply speaks of
# policy, relaying, reputation, quota or the sender.
_UNKNOWN_MAILBOX = re.compile(
    r"user unknown|unknown user|no such (?:user|mailbox|recipient|address)|"
    r"mailbox (?:not found|does not exist|unavailable)|recipient (?:unknown|not found)|"
    r"(?:address|user|mailbox|recipient) does not exist|invalid (?:mailbox|recipient)|"
    r"unknown recipient|no mailbox", re.I)
_NOT_THE_ADDRESS = re.compile(
    r"relay|spam|policy|block|denied|auth|quota|full|reputation|rate|limit|throttl|"
    r"sender|blacklist|listed|virus|content|tls|later|temporar|greylist", re.I)
_SENDER_REJECTED = re.compile(r"sender address rejected|sender (?:is )?(?:not allowed|rejected)",
                              re.I)


def enhanced_code(code: int, text: str) -> tuple[int, int, int] | None:
    """The RFC 3463 status code at the start of a reply's text, when its class agrees
    with the basic reply code (``550 5.1.1 ...`` -> ``(5, 1, 1)``)."""
    match = _ENHANCED.match(text)
    if not match:
        return None
    cls, subject, detail = (int(g) for g in match.groups())
    if cls != code // 100:
        return None
    return cls, subject, detail


def classify(stage: str, code: int, text: str) -> str:
    """Who is at fault for the reply ``code text`` at ``stage``, and what to do about it.

    ``stage`` is one of ``SESSION_STAGES`` (the relay and the sender: never a recipient's
    fault) or ``RECIPIENT_STAGES`` (RCPT, the DATA command, the reply after the content).
    """
    if stage not in RECIPIENT_STAGES:
        return SESSION_TRANSIENT if 400 <= code < 500 else SESSION_FATAL
    if _SENDER_REJECTED.search(text):  # smtpd_delay_reject: the sender, told at RCPT
        return SESSION_TRANSIENT if 400 <= code < 500 else SESSION_FATAL
    status = enhanced_code(code, text)
    if 400 <= code < 500 and status is not None and status[1] == 7:
        return DEFERRED  # e.g. Gmail's "421 4.7.28 ... rate limited": that domain, not the relay
    if code == 421:  # the relay is closing the session
        return SESSION_TRANSIENT
    if code < 400:
        return SOFT  # not an answer SMTP allows here: try again later
    if code < 500:
        return SOFT
    if status is None or status[1:] == (0, 0):
        return _fallback(code, text)
    _, subject, detail = status
    if subject == 1:
        if detail in (7, 8):  # the sender's address, not the recipient's
            return SESSION_FATAL
        return HARD
    if subject == 2:
        if detail == 1:
            return HARD
        if detail == 2:
            return SOFT
        return REFUSED
    if subject == 7:
        return BLOCKED
    return REFUSED  # 5.3.x system, 5.4.x network/routing, 5.5.x protocol, 5.6.x content


def _fallback(code: int, text: str) -> str:
    """A permanent reply without a usable enhanced code: suppress only the unmistakable."""
    if _UNKNOWN_MAILBOX.search(text) and not _NOT_THE_ADDRESS.search(text) and code in (550, 551,
                                                                                        553):
        return HARD
    if code == 552:  # RFC 5321: exceeded storage allocation
        return SOFT
    return REFUSED


class DeliveryError(Exception):
    kind = SOFT

    def __init__(self, message: str, code: int | None = None, kind: str | None = None,
                 stage: str = "rcpt") -> None:
        super().__init__(message)
        self.code, self.stage = code, stage
        if kind is not None:
            self.kind = kind

    @property
    def reply(self) -> str:
        return str(self)


class SessionFailure(DeliveryError):
    """The relay or the sender's settings refused: no recipient is at fault."""

    kind = SESSION_FATAL

    @property
    def fatal(self) -> bool:
        return self.kind == SESSION_FATAL


class ConnectionFailure(SessionFailure):
    """The relay could not be reached or the connection broke before the content was sent."""

    kind = SESSION_TRANSIENT


class TemporaryFailure(DeliveryError):
    kind = SOFT


class PermanentFailure(DeliveryError):
    """A recipient's permanent refusal; without an explicit ``kind`` the reply is classified."""

    def __init__(self, message: str, code: int | None = None, kind: str | None = None,
                 stage: str = "rcpt") -> None:
        if kind is None:
            number, _, text = message.partition(" ")
            kind = classify(stage, code or (int(number) if number.isdigit() else 550), text)
            if kind not in (HARD, BLOCKED, REFUSED):
                kind = REFUSED
        super().__init__(message, code, kind, stage)

    @property
    def suppress(self) -> bool:
        return self.kind == HARD


class UnsupportedAddress(PermanentFailure):
    """The address cannot be carried by this relay (a non-ASCII local part without SMTPUTF8)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, None, REFUSED, "mail")


class AmbiguousFailure(DeliveryError):
    pass


class ClaimLost(Exception):
    """``before_data`` said no: the recipient's claim was taken over by another worker (this
    one was thought dead), so this transaction stopped before DATA and sent nothing."""
