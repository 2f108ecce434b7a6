"""Reading a CSV file of people: the bytes decoded as a stream (flat memory whatever its
size) and the header mapped to fields.

UTF-8 with or without BOM, UTF-16 with a BOM (or without one, recognised by its NULs),
else Latin-1 (Windows-1252) when the start is not UTF-8; comma, semicolon or tab sniffed
from the header line. Line numbers are physical lines where a record starts (the header is
line 1), so quoted fields with newlines keep them right.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from typing import IO, Any

SAMPLE = 64 * 1024
_NAME = re.compile(r"[^a-z0-9]+")
csv.field_size_limit(1024 * 1024)

# common header spellings -> field (compared lower-case, without spaces and punctuation),
# including the columns of the usual exports: Salesforce (leads and contacts), HubSpot,
# Mailchimp, Dynamics 365, Zoho CRM, Pipedrive and ActiveCampaign
HEADER_ALIASES: dict[str, str] = {}
for _field, _spellings in {
    "email": ("email", "e-mail", "email address", "e-mail address", "mail", "emailaddress",
              "courriel", "work email", "business email", "email 1", "primary email",
              "person - email", "person - email - work", "email - work"),
    "first_name": ("first name", "firstname", "first", "given name", "forename", "prenom",
                   "prénom", "vorname", "person - first name", "fname"),
    "last_name": ("last name", "lastname", "last", "surname", "family name", "nom", "nachname",
                  "person - last name", "lname"),
    "company": ("company", "company name", "organisation", "organization", "org", "account",
                "account name", "employer", "firma", "societe", "société", "company / account",
                "organization - name", "person - organization", "organization name"),
    "job_title": ("job title", "title", "jobtitle", "position", "role", "function",
                  "designation", "person - job title"),
    "phone": ("phone", "phone number", "telephone", "tel", "business phone", "work phone",
              "person - phone", "person - phone - work", "phone - work"),
    "mobile_phone": ("mobile", "mobile phone", "cell", "cell phone", "mobile number",
                     "mobile phone number", "person - phone - mobile", "phone - mobile"),
    "street": ("street", "address", "street address", "address 1", "address line 1",
               "street 1", "address1", "mailing street", "address 1: street 1",
               "address - street"),
    "city": ("city", "town", "ville", "stadt", "mailing city", "address 1: city"),
    "state": ("state", "region", "province", "county", "state/province", "state/region",
              "mailing state/province", "address 1: state/province"),
    "postal_code": ("postal code", "postcode", "zip", "zip code", "zipcode", "post code",
                    "zip/postal code", "mailing zip/postal code", "address 1: zip/postal code"),
    "country": ("country", "country/region", "pays", "land", "mailing country",
                "address 1: country/region", "cc", "country code"),
    "topic": ("topic", "interest", "subject"),
    "consent": ("consent", "opt in", "optin", "opt-in", "marketing consent", "subscribed"),
    "source": ("source", "lead source", "original source", "source of lead"),
    "referred_by": ("referred by", "referrer", "referral"),
    "timezone": ("timezone", "time zone", "tz"),
    "asset": ("asset",),
    "kind": ("kind",),
    "utm_source": ("utm source",), "utm_medium": ("utm medium",),
    "utm_campaign": ("utm campaign",),
    # opt-in evidence (Mailchimp): when and from where the person subscribed and confirmed
    "optin_time": ("optin_time", "opt-in time", "optin date"),
    "optin_ip": ("optin_ip", "opt-in ip"),
    "confirm_time": ("confirm_time", "confirmation time"),
    "confirm_ip": ("confirm_ip", "confirmation ip"),
    # ... and its withdrawal (an unsubscribed or cleaned member)
    "unsub_time": ("unsub_time", "unsubscribe time"),
    "clean_time": ("clean_time",),
}.items():
    for _spelling in (_field, *_spellings):
        HEADER_ALIASES[_NAME.sub("", _spelling.lower())] = _field
IMPORT_FIELDS = frozenset(HEADER_ALIASES.values())
EVIDENCE_FIELDS = ("optin_time", "optin_ip", "confirm_time", "confirm_ip")

# lead-source labels of those exports -> our sources (compared as header names are)
SOURCE_LABELS: dict[str, str] = {}
for _source, _labels in {
    "web_form": ("web", "website", "web site", "web form", "web download", "web research",
                 "online", "online store", "organic search", "paid search", "direct traffic",
                 "social media", "paid social", "email marketing", "chat", "inbound",
                 "web_form", "webform", "form", "landing page"),
    "event": ("event", "webinar", "seminar", "seminar - internal", "seminar - partner",
              "internal seminar", "seminar partner", "conference"),
    "trade_show": ("trade show", "tradeshow", "trade fair", "expo", "exhibition"),
    "business_card": ("business card", "card"),
    "referral": ("referral", "referrals", "partner", "partner referral", "employee referral",
                 "external referral", "word of mouth", "customer referral"),
    "import": ("import", "purchased list", "list import", "list", "offline sources", "other",
               "other campaigns"),
    "api": ("api", "integration"),
    "manual": ("manual", "phone inquiry", "cold call", "sales email alias", "advertisement",
               "public relations", "direct mail"),
}.items():
    for _label in (_source, *_labels):
        SOURCE_LABELS[_NAME.sub("", _label.lower())] = _source


def source_of(label: str) -> str | None:
    """Our source for an export's lead-source label (None: a label we do not know)."""
    return SOURCE_LABELS.get(_NAME.sub("", label.strip().lower()))


class NotCsv(ValueError):
    """The file cannot be read as CSV at all (nothing was imported)."""


def open_text(raw: IO[bytes]) -> tuple[IO[str], str]:
    """The file as text, and the encoding it was read with."""
    start = raw.read(SAMPLE)
    if not start:
        raise NotCsv("the file is empty")
    rest = raw
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif start.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif b"\x00" in start:
        found = _utf16_without_bom(start)
        if found is None:
            raise NotCsv("the file is binary (NUL bytes), not CSV text")
        encoding = found
    else:
        encoding = _utf8_or_cp1252(start)
    joined = _Joined(start, rest)
    errors = "strict"
    if encoding == "cp1252":
        # Windows-1252 leaves five bytes undefined: read them as Latin-1 does
        errors = "latin1fallback"
    text = io.TextIOWrapper(joined, encoding=encoding, errors=errors, newline="")  # type: ignore[arg-type]
    return text, {"cp1252": "latin-1 (windows-1252)"}.get(encoding, encoding)


def _utf8_or_cp1252(start: bytes) -> str:
    try:
        start.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the end of the sample is still UTF-8
        cut = len(start) == SAMPLE and exc.reason == "unexpected end of data"
        return "utf-8" if cut else "cp1252"


def _utf16_without_bom(start: bytes) -> str | None:
    """UTF-16 saved without a byte-order mark: a text of mostly Latin characters has a NUL
    in every other byte (odd positions: little-endian, even: big-endian). None: binary."""
    pairs = len(start) // 2
    if pairs < 2:
        return None
    for encoding, zeros in (("utf-16-le", start[1:2 * pairs:2]), ("utf-16-be", start[0:2 * pairs:2])):
        if zeros.count(0) >= 0.9 * pairs:
            try:  # a surrogate pair cut at the end of the sample is not an error
                text = codecs.getincrementaldecoder(encoding)().decode(start, final=False)
            except UnicodeDecodeError:
                continue
            if "\x00" not in text:
                return encoding
    return None


def _latin1_fallback(exc: UnicodeError) -> tuple[str, int]:
    if isinstance(exc, UnicodeDecodeError):
        return exc.object[exc.start:exc.end].decode("latin-1"), exc.end
    raise exc


codecs.register_error("latin1fallback", _latin1_fallback)


class _Joined(io.RawIOBase):
    """The sample already read, then the rest of the stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _sniff(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def records(text: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """``(line where the record starts, cells)`` for every non-blank record after the header;
    the header itself first (line 1)."""
    first = text.readline()
    if not first.strip():
        raise NotCsv("the first line (the header) is empty")
    delimiter = _sniff(first)
    yield 0, [delimiter]  # the delimiter first, for the report

    def lines() -> Iterator[str]:
        yield first
        yield from text

    reader = csv.reader(lines(), delimiter=delimiter, strict=False)
    before = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise NotCsv(f"line {before + 1}: {exc}") from exc
        start = before + 1
        before = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # a blank line, or a spreadsheet's row of empty cells: no record
        yield start, row


def map_header(header: list[str], mapping: dict[str, str]) -> tuple[list[str | None], list[str]]:
    """Each column's field (or None: ignored), and the ignored headers."""
    explicit = {h.strip().lower(): f for h, f in mapping.items()}
    fields: list[str | None] = []
    ignored = []
    taken: set[str] = set()
    for raw in header:
        name = raw.strip().lstrip("\ufeff")
        target = explicit.get(name.lower()) or HEADER_ALIASES.get(_NAME.sub("", name.lower()))
        if target in taken:
            target = None  # a second column for one field: the first one wins
        if target is None:
            ignored.append(name)
        else:
            taken.add(target)
        fields.append(target)
    return fields, ignored


def decoded(rows: Iterator[tuple[int, list[str]]],
            encoding: str) -> Iterator[tuple[int, list[str]]]:
    """``rows`` (of ``records``), a file that stops decoding part-way raising ``NotCsv``."""
    try:
        yield from rows
    except UnicodeDecodeError as exc:
        raise NotCsv(f"not {encoding} text after the start of the file ({exc.reason}); "
                     "save it as UTF-8") from exc

