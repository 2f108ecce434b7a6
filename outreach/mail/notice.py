"""Building a plain-text notice to one user (task reminders, digests): the address rules
of every message outreach sends (``outreach.mail.message.address``), without a campaign's
list headers."""

from __future__ import annotations

from email.message import Message
from email.mime.text import MIMEText

from outreach.mail.dkim import DkimSigner
from outreach.mail.message import UTF8_QP, address


def build_notice(*, from_email: str, to_email: str, subject: str, text: str,
                 dkim: DkimSigner | None = None) -> Message:
    """An auto-generated text message; raises ``UnsupportedAddress`` for an address that
    cannot be written (the sender finds out before anything goes out)."""
    msg = MIMEText(text, "plain", UTF8_QP)
    address(msg, from_email=from_email, to_email=to_email, subject=subject)
    msg["Auto-Submitted"] = "auto-generated"
    if dkim is not None:
        dkim.sign_message(msg)
    return msg
