"""Building one campaign message: multipart text + HTML with the headers mailbox providers want."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid


def build_message(
    *,
    from_email: str,
    to_email: str,
    subject: str,
    text: str,
    html: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str,
    campaign_id: str,
) -> EmailMessage:
    domain = from_email.rpartition("@")[2] or "localhost"
    msg = EmailMessage()
    msg["From"] = from_email
    msg["To"] = to_email
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(idstring=campaign_id, domain=domain)
    msg["List-Unsubscribe"] = f"<{unsubscribe_url}>, <{unsubscribe_mailto}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["X-Outreach-Campaign"] = campaign_id
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg
