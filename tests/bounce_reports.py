"""Bounce reports laid out as the real software writes them, around a message that was sent."""

from __future__ import annotations

import email
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

BOUNCE_DOMAIN = "bounces.outreach.example"


def dsn(original: bytes, recipient: str, status: str, diagnostic: str, action: str = "failed",
        to: str = "", msgid: str = "<20261201.A1@mx.example>") -> bytes:
    """A DSN laid out as Postfix's bounce(8) writes it (RFC 3464)."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "MAILER-DAEMON@mx.example (Mail Delivery System)"
    report["To"] = to
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Auto-Submitted"] = "auto-replied"
    report["Message-ID"] = msgid
    report.attach(MIMEText("This is the mail system at host mx.example.\n\nI'm sorry to have to "
                           "inform you that your message could not be delivered.\n"))
    status_part = MIMEBase("message", "delivery-status")
    status_part.set_payload([email.message_from_string(
        "Reporting-MTA: dns; mx.example\nX-Postfix-Queue-ID: A1\nArrival-Date: Tue,  1 Dec 2026 "
        "10:00:00 +0000 (UTC)\n"), email.message_from_string(
        f"Final-Recipient: rfc822; {recipient}\nOriginal-Recipient: "
        f"rfc822;{recipient}\nAction: {action}\nStatus: {status}\nRemote-MTA: dns; mx.example\n"
        f"Diagnostic-Code: smtp; {diagnostic}\n")])
    report.attach(status_part)
    headers = MIMEBase("text", "rfc822-headers")
    headers.set_payload(original.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").replace("\r\n", "\n"))
    report.attach(headers)
    return report.as_bytes(policy=report.policy.clone(linesep="\r\n"))  # as it travels


def arf(original: bytes, recipient: str) -> bytes:
    """A complaint report as a mailbox provider's feedback loop sends it (RFC 5965)."""
    report = MIMEMultipart("report", report_type="feedback-report")
    report["From"] = "fbl@isp.example"
    report["To"] = f"abuse@{BOUNCE_DOMAIN}"
    report["Subject"] = "complaint about message"
    report["Message-ID"] = "<fbl-1@isp.example>"
    report.attach(MIMEText("This is an email abuse report for an email message received.\n"))
    feedback = MIMEBase("message", "feedback-report")
    feedback.set_payload([email.message_from_string(
                         "Feedback-Type: abuse\nUser-Agent: SomeGenerator/1.0\nVersion: 1\n"
                         f"Original-Rcpt-To: {recipient}\n"
                         "Arrival-Date: Tue, 1 Dec 2026 10:00:00 +0000\n")])
    report.attach(feedback)
    original_part = MIMEBase("message", "rfc822")
    original_part.set_payload([email.message_from_bytes(original)])
    report.attach(original_part)
    return report.as_bytes(policy=report.policy.clone(linesep="\r\n"))  # as it travels
