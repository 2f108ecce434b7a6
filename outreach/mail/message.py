"""Building one campaign message: multipart text + HTML with the headers mailbox providers want."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formatdate, make_msgid
from typing import Any

# Headers whose value is a list of <URI>s (RFC 2369) and must go out as written: the
# default folder turns a word longer than a line (a signed token URL) into an RFC 2047
# encoded-word, which no mailbox provider reads as a List-Unsubscribe URI.
_URI_LIST_HEADERS = frozenset({"list-unsubscribe"})


class _MailPolicy(EmailPolicy):
    def _uri_list(self, name: str, value: Any) -> str:
        parts = [p.strip() for p in str(value).split(",") if p.strip()]
        return f"{name}: " + ("," + self.linesep + " ").join(parts) + self.linesep

    def fold(self, name: str, value: Any) -> str:
        if name.lower() in _URI_LIST_HEADERS and str(value).isascii():
            return self._uri_list(name, value)
        return super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        if name.lower() in _URI_LIST_HEADERS and str(value).isascii():
            return self._uri_list(name, value).encode("ascii")
        return super().fold_binary(name, value)


_POLICY = _MailPolicy()


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
    msg = EmailMessage(policy=_POLICY)
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
