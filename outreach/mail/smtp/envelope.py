"""The envelope of one SMTP transaction.

International addresses: an ASCII local part always goes out with its domain as an
A-label (no SMTPUTF8 needed); a non-ASCII local part needs the relay's ``SMTPUTF8``
(``MAIL FROM:<...> SMTPUTF8``) and is refused without it before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from outreach.mail.smtp.classify import SessionFailure, UnsupportedAddress
from outreach.normalize import InvalidEmail, ascii_domain

NO_SMTPUTF8 = "relay does not support SMTPUTF8"


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    rcpt_to: str
    smtputf8: bool  # the transaction needs MAIL FROM ... SMTPUTF8


def needs_smtputf8(address: str) -> bool:
    """A non-ASCII local part can only travel with SMTPUTF8 (a domain has its A-label)."""
    return not address.rpartition("@")[0].isascii()


def wire_address(address: str, smtputf8: bool) -> str:
    """``address`` as written in the envelope: with SMTPUTF8 as it is (UTF-8), otherwise
    with an A-label domain. Raises ``UnsupportedAddress`` when it cannot be written."""
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    if not local.isascii() and not smtputf8:
        raise UnsupportedAddress(NO_SMTPUTF8)
    if smtputf8:
        return address
    try:
        return f"{local}@{ascii_domain(domain)}"
    except InvalidEmail as exc:
        raise UnsupportedAddress(str(exc)) from exc


def envelope_for(mail_from: str, rcpt_to: str, relay_smtputf8: bool,
                 header_from: str = "") -> Envelope:
    """The envelope of one transaction: SMTPUTF8 only when an address needs it and the
    relay offers it. When the relay does not: a recipient that needs it is refused
    (``UnsupportedAddress``: that recipient fails with the reason); a sender that needs it
    (the envelope sender, or the ``From`` header as written, ``header_from``) is the
    sender's settings, not anybody's address: ``SessionFailure`` (the campaign pauses)."""
    sender_utf8 = needs_smtputf8(mail_from) or not header_from.isascii()
    if sender_utf8 and not relay_smtputf8:
        raise SessionFailure(f"the sender address needs SMTPUTF8 and the {NO_SMTPUTF8}",
                             stage="mail")
    utf8 = sender_utf8 or needs_smtputf8(rcpt_to)
    if utf8 and not relay_smtputf8:
        raise UnsupportedAddress(NO_SMTPUTF8)
    return Envelope(wire_address(mail_from, utf8), wire_address(rcpt_to, utf8), utf8)
