"""Reading delivery status notifications (RFC 3464) and complaint reports (ARF, RFC 5965)
with the standard library's ``email`` package, into plain ``Report`` events.

One classifier for every door: a DSN's ``Status`` is read by the send path's
``outreach.mail.smtp.classify`` exactly as if the relay had answered it at RCPT time
(``5.1.x`` hard, ``4.x.x``/``5.2.2`` soft, ``5.7.x`` blocked), and ``Action: delayed`` is
soft whatever its code. ``delivered``/``relayed``/``expanded`` are not bounces. Auto-replies
(``Auto-Submitted``, out-of-office) are recognised and ignored.

Who a report is about: the VERP address it was sent to (``b-<token>@<bounce domain>``),
else the signed token in the original ``Message-ID`` (quoted in the report's
``message/rfc822`` or ``text/rfc822-headers`` part). Neither can be forged without the
secret key, so a forged bounce names nobody.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import Message

from outreach.mail import verp
from outreach.mail.smtp import classify

HARD, SOFT, BLOCKED, COMPLAINT = "hard", "soft", "blocked", "complaint"

_STATUS = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")
# a mailbox over its quota, said in words beside a status without detail (5.0.0)
_MAILBOX_FULL = re.compile(r"(disk|mailbox|storage|over) ?quota|mailbox (is )?full|"
                           r"storage (space|allocation)|out of (disk |storage )?space|"
                           r"insufficient (disk |system )?(space|storage)", re.I)
_AUTO_SUBJECT = re.compile(r"out of (the )?office|auto(matic)?[- ]?(reply|response)|abwesenheit|"
                           r"absence|vacation|away from", re.I)


@dataclass
class Report:
    kind: str  # hard | soft | blocked | complaint
    recipient: str  # the address as the report gives it ('' when it does not)
    status: str = ""  # 5.1.1
    diagnostic: str = ""
    campaign_id: str = ""
    ref: str = ""
    report_id: str = ""  # stable across deliveries of the same report (idempotency)
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Parsed:
    what: str  # dsn | arf | auto_reply | other
    reports: list[Report]


def _addr(value: str | None) -> str:
    """``rfc822; bob@example.org`` -> ``bob@example.org``."""
    if not value:
        return ""
    value = str(value)
    if ";" in value:
        value = value.split(";", 1)[1]
    return value.strip().strip("<>").strip()


def _original_headers(msg: Message) -> Message | None:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return payload[0]
            if isinstance(payload, str):
                return email.message_from_string(payload)
        if ctype in ("text/rfc822-headers", "text/global-headers"):
            raw = part.get_payload(decode=True) or b""
            return email.message_from_bytes(raw)
    return None


def _field_blocks(part: Message) -> list[Message]:
    """The per-message and per-recipient field groups of a ``message/delivery-status`` or
    ``message/feedback-report`` part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    raw = part.get_payload(decode=True) or b""
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n")
    return [email.message_from_string(block.strip("\n") + "\n")
            for block in re.split(r"\n\s*\n", text) if block.strip()]


def _identify(secret_key: str | Sequence[str], envelope_rcpts: list[str], original: Message | None
              ) -> tuple[str, str]:
    for rcpt in envelope_rcpts:
        found = verp.read_return_path(secret_key, rcpt)
        if found:
            return found
    if original is not None:
        for name in ("Message-ID", "Return-Path"):
            value = str(original.get(name) or "")
            found = (verp.read_message_id(secret_key, value) if name == "Message-ID"
                     else verp.read_return_path(secret_key, value))
            if found:
                return found
    return "", ""


def classify_status(status: str, diagnostic: str = "", action: str = "failed") -> str | None:
    """The kind of a DSN recipient's outcome, by the send path's classifier; None when it is
    not a failure (delivered, relayed, expanded)."""
    action = (action or "failed").strip().lower()
    if action in ("delivered", "relayed", "expanded"):
        return None
    if action == "delayed":
        return SOFT
    match = _STATUS.search(status or "")
    diag = re.sub(r"^\s*smtp\s*;\s*", "", diagnostic or "", flags=re.I)
    if match:
        if match.group(2, 3) == ("0", "0") and _MAILBOX_FULL.search(f"{status} {diag}"):
            return SOFT  # "Status: 5.0.0 (recipient reached disk quota)": 5.2.2 in words
        code = 550 if match.group(1) == "5" else 450
        kind = classify.classify("rcpt", code, f"{match.group(0)} {diag}")
    else:
        diag = diag or (status or "").strip()  # "Status: 553 Exceeded maximum message size"
        number = re.match(r"\s*([45]\d\d)", diag)
        code = int(number.group(1)) if number else 550
        kind = classify.classify("rcpt", code, diag[number.end():] if number else diag)
    if kind == classify.HARD:
        return HARD
    if kind == classify.SOFT:
        return SOFT
    return BLOCKED  # 5.7.x policy, the sender's own address, or anything else not the address's


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "replace")).hexdigest()[:32]


def parse(raw: bytes, secret_key: str | Sequence[str], envelope_rcpts: list[str] | None = None
          ) -> Parsed:
    """Every bounce or complaint event in one inbound message."""
    msg = email.message_from_bytes(raw)
    rcpts = list(envelope_rcpts or [])
    original = _original_headers(msg)
    campaign_id, ref = _identify(secret_key, rcpts, original)
    own_id = str(msg.get("Message-ID") or "") or _digest(raw.decode("utf-8", "replace"))
    original_id = str(original.get("Message-ID") or "") if original is not None else ""
    reports: list[Report] = []
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            blocks = _field_blocks(part)
            # the per-recipient groups: a blank line holding a space merges the first with the
            # per-message group (seen in the wild), so they are told apart by their fields
            for block in blocks:
                recipient = _addr(block.get("Original-Recipient")) or _addr(block.get("Final-Recipient"))
                if not recipient and not block.get("Status"):
                    continue
                kind = classify_status(str(block.get("Status") or ""),
                                       str(block.get("Diagnostic-Code") or ""),
                                       str(block.get("Action") or "failed"))
                if kind is None:
                    continue
                status = _STATUS.search(str(block.get("Status") or ""))
                reports.append(Report(
                    kind=kind, recipient=recipient, status=status.group(0) if status else "",
                    diagnostic=" ".join(str(block.get("Diagnostic-Code") or "").split())[:500],
                    campaign_id=campaign_id, ref=ref,
                    report_id=_digest("dsn", original_id or own_id, recipient.lower(),
                                      str(block.get("Action") or ""), status.group(0) if status else "")))
            if reports or blocks:
                return Parsed("dsn", reports)
        if ctype == "message/feedback-report":
            fields: dict[str, str] = {}
            for block in _field_blocks(part):
                for name, value in block.items():
                    fields.setdefault(name.lower(), str(value).strip())
            recipient = _addr(fields.get("original-rcpt-to"))
            if not recipient and original is not None:
                recipient = email.utils.parseaddr(str(original.get("To") or ""))[1]
            feedback = fields.get("feedback-type", "abuse").lower()
            if feedback in ("abuse", "fraud", "other", "virus", "not-spam") and feedback != "not-spam":
                reports.append(Report(
                    kind=COMPLAINT, recipient=recipient, diagnostic=f"feedback-type: {feedback}",
                    campaign_id=campaign_id, ref=ref,
                    report_id=_digest("arf", original_id or own_id, recipient.lower()),
                    extra={"feedback_type": feedback, "user_agent": fields.get("user-agent", "")}))
            return Parsed("arf", reports)
    if _auto_reply(msg):
        return Parsed("auto_reply", [])
    return Parsed("other", [])


def _auto_reply(msg: Message) -> bool:
    auto = str(msg.get("Auto-Submitted") or "").strip().lower()
    if auto and auto != "no":
        return True
    if msg.get("X-Autoreply") or msg.get("X-Autorespond") or msg.get("X-Auto-Response-Suppress"):
        return True
    if str(msg.get("Precedence") or "").strip().lower() in ("auto_reply", "bulk", "junk"):
        return True
    return bool(_AUTO_SUBJECT.search(str(msg.get("Subject") or "")))
