"""Normalisation rules that decide when two inputs are the same person or company."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import unicodedata

import idna
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "hotmail.com",
        "hotmail.co.uk", "hotmail.fr", "outlook.com", "live.com", "msn.com", "aol.com",
        "icloud.com", "me.com", "mac.com", "gmx.de", "gmx.net", "gmx.com", "web.de",
        "proton.me", "protonmail.com", "yandex.ru", "yandex.com", "mail.ru", "qq.com",
        "163.com", "126.com", "zoho.com", "fastmail.com", "hey.com", "orange.fr", "free.fr",
        "laposte.net", "t-online.de", "libero.it", "seznam.cz", "wp.pl", "naver.com",
    }
)


class InvalidEmail(ValueError):
    pass


def normalise_domain(domain: str) -> str:
    """The one stored spelling of a domain: IDNA2008 U-labels after UTS #46 mapping.

    ``B\u00fccher.example``, ``b\u00fccher.example`` and ``xn--bcher-kva.example`` are all
    ``b\u00fccher.example``. A plain ASCII domain is just lower-cased (the common case, no
    IDNA work). A domain that is not valid IDNA is left NFC and case-folded as before;
    ``checked_email`` rejects it.
    """
    if domain.isascii() and "xn--" not in domain.lower():
        return domain.lower()
    try:
        return idna.decode(idna.encode(domain, uts46=True))
    except (idna.IDNAError, UnicodeError, ValueError):
        return unicodedata.normalize("NFC", unicodedata.normalize("NFC", domain).casefold())


def ascii_domain(domain: str) -> str:
    """The A-label (ASCII) spelling of a domain, as SMTP without SMTPUTF8 needs it.

    Raises ``InvalidEmail`` when the domain cannot be written in ASCII."""
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise InvalidEmail(f"The domain {domain!r} has no ASCII form: {exc}") from exc


def normalise_email(raw: str) -> str:
    """Trim, Unicode NFC and lower-case the local part; one spelling for the domain.

    The local part is kept as the person wrote it, lower-cased with ``str.lower`` only,
    never case-folded: ``stra\u00dfe@`` stays ``stra\u00dfe@`` and ``\ufb01nance@`` stays
    ``\ufb01nance@`` (folding would make them ``strasse@`` / ``finance@``, other mailboxes).
    Case folding is for search only (``people.search``). Lower-casing can undo composition
    (``"\u0130".lower()`` is ``"i\u0307"``), so the result is composed again: the stored form
    is always NFC. Dots and ``+tags`` are kept: at most providers they are different
    mailboxes. The domain goes through ``normalise_domain`` (U-label and A-label spellings
    are one domain, one person).
    """
    text = unicodedata.normalize("NFC", raw.strip())
    if text.isascii():
        lowered = text.lower()
        if "xn--" not in lowered:
            return lowered
    local, at, domain = text.rpartition("@")
    if not at:
        return unicodedata.normalize("NFC", text.lower())
    return unicodedata.normalize("NFC", local.lower()) + "@" + normalise_domain(domain)


# The common case, decided without email-validator (about 40 us a request on the intake
# path): plain ASCII dot-atom local parts and LDH domains with an alphabetic TLD. Anything
# else (IDN, quoted parts, special-use domains, odd labels) goes to email-validator, and a
# property test checks that whatever this accepts, email-validator accepts unchanged.
_PLAIN_LOCAL = r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*"
_PLAIN_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_EMAIL = re.compile(rf"{_PLAIN_LOCAL}@(?:{_PLAIN_LABEL}\.)+[a-z]{{2,63}}")
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def _plainly_valid(email: str) -> bool:
    if len(email) > 254 or not email.isascii() or not _PLAIN_EMAIL.fullmatch(email):
        return False
    local, _, domain = email.partition("@")
    return (len(local) <= 64 and "--" not in domain
            and domain.rpartition(".")[2] not in _SPECIAL_USE)


def checked_email(raw: str) -> str:
    """Validate the syntax of ``raw`` and return its normalised form."""
    email = normalise_email(raw)
    if _plainly_valid(email):
        return email
    if not email or len(email) > 254:
        raise InvalidEmail("Not a valid email address.")
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail("Not a valid email address.") from exc
    return email


def email_domain(email: str) -> str:
    return email.rpartition("@")[2]


def email_hash(email: str) -> str:
    """Stable hash kept for erased addresses so they are never mailed again."""
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()


_COMPANY_SUFFIXES = re.compile(
    r"\b(inc|incorporated|corp|corporation|co|company|llc|ltd|limited|plc|gmbh|ag|sa|sas|sarl|"
    r"bv|nv|oy|ab|as|spa|srl|pty|kk)\b\.?",
)
_NON_WORD = re.compile(r"[^\w]+")


def normalise_company(name: str) -> str:
    """Key under which two spellings of one company match: ``"ACME, Inc."`` == ``"acme"``."""
    text = unicodedata.normalize("NFKC", name).casefold()
    text = _NON_WORD.sub(" ", text)
    text = _COMPANY_SUFFIXES.sub(" ", text)
    return " ".join(text.split())


def client_key(address: str | None) -> str:
    """The client a rate limit counts: an IPv4 address as it is, an IPv6 address by its /64
    (one subscriber's whole prefix: a host picks any address in it at will)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)
