"""Building a plain-text notice to one user (task reminders, digests): the same address
rules as campaign mail (``outreach.mail.message``), without a campaign's list headers.

With SMTPUTF8 (an address has a non-ASCII local part) From and To are raw UTF-8
(RFC 6532); otherwise their domains are written as A-labels, as the envelope carries them.
An RFC 2047 encoded-word never stands in for an address."""

from __future__ import annotations

from email.message import Message
from email.mime.text import MIMEText
from email.utils import formatdate, make_msgid

from outreach.mail.dkim import DkimSigner
from outreach.mail.message import _UTF8_QP, _header
from outreach.mail.smtp import ascii_domain, needs_smtputf8, wire_address


def build_notice(*, from_email: str, to_email: str, subject: str, text: str,
                 dkim: DkimSigner | None = None) -> Message:
    """An auto-generated text message; raises ``UnsupportedAddress`` for an address that
    cannot be written (the sender finds out before anything goes out)."""
    smtputf8 = needs_smtputf8(from_email) or needs_smtputf8(to_email)
    from_wire, to_wire = wire_address(from_email, smtputf8), wire_address(to_email, smtputf8)
    domain = from_email.rpartition("@")[2] or "localhost"
    msg = MIMEText(text, "plain", _UTF8_QP)
    msg["From"] = _header(from_wire, smtputf8)
    msg["To"] = _header(to_wire, smtputf8)
    msg["Subject"] = _header(subject, smtputf8)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=ascii_domain(domain) if not domain.isascii() else domain)
    msg["Auto-Submitted"] = "auto-generated"
    if dkim is not None:
        dkim.sign_message(msg)
    return msg
