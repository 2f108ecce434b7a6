"""CSV import of leads and contacts: one path with intake.

Every row goes through the intake schema (``load_registration``: the same validation and
address normalisation as a website form) and then through the same ingest script as the
intake stream (``apply_rows``: the same dedup by normalised address, merge rules, asset lists),
so an import can never create a duplicate of a lead or contact that intake would not.
Contacts go through ``upsert_contact``, the service behind ``POST /api/v1/contacts``.

Files are read as a stream (flat memory whatever their size): UTF-8 with or without BOM,
UTF-16 with a BOM, else Latin-1 (Windows-1252) when the start is not UTF-8; comma,
semicolon or tab sniffed from the header line. Line numbers are physical lines where a
record starts (the header is line 1), so quoted fields with newlines keep them right.
"""

from __future__ import annotations

import base64
import codecs
import csv
import io
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from marshmallow import ValidationError

from outreach.config import Config
from outreach.errors import Invalid
from outreach.people.ingest import apply_rows
from outreach.schemas.intake import load_registration  # the intake's own validation: one path
from outreach.store import Store
from outreach.vocabulary import KINDS, PROFILE_FIELDS, SOURCES

TYPES = ("leads", "contacts")
BATCH = 1000
SAMPLE = 64 * 1024
_NAME = re.compile(r"[^a-z0-9]+")
csv.field_size_limit(1024 * 1024)

# common header spellings -> field (compared lower-case, without spaces and punctuation)
HEADER_ALIASES: dict[str, str] = {}
for _field, _spellings in {
    "email": ("email", "e-mail", "email address", "e-mail address", "mail", "emailaddress",
              "courriel", "work email", "business email"),
    "first_name": ("first name", "firstname", "first", "given name", "forename", "prenom",
                   "prénom", "vorname"),
    "last_name": ("last name", "lastname", "last", "surname", "family name", "nom", "nachname"),
    "company": ("company", "company name", "organisation", "organization", "org", "account",
                "account name", "employer", "firma", "societe", "société"),
    "job_title": ("job title", "title", "jobtitle", "position", "role", "function"),
    "phone": ("phone", "phone number", "telephone", "tel", "business phone", "work phone"),
    "mobile_phone": ("mobile", "mobile phone", "cell", "cell phone", "mobile number"),
    "street": ("street", "address", "street address", "address 1", "address line 1"),
    "city": ("city", "town", "ville", "stadt"),
    "state": ("state", "region", "province", "county", "state/province"),
    "postal_code": ("postal code", "postcode", "zip", "zip code", "zipcode", "post code"),
    "country": ("country", "country/region", "pays", "land"),
    "topic": ("topic", "interest", "subject"),
    "consent": ("consent", "opt in", "optin", "opt-in", "marketing consent", "subscribed"),
    "source": ("source", "lead source"),
    "referred_by": ("referred by", "referrer", "referral"),
    "asset": ("asset",),
    "kind": ("kind",),
    "utm_source": ("utm source",), "utm_medium": ("utm medium",),
    "utm_campaign": ("utm campaign",),
}.items():
    for _spelling in (_field, *_spellings):
        HEADER_ALIASES[_NAME.sub("", _spelling.lower())] = _field
IMPORT_FIELDS = frozenset(HEADER_ALIASES.values())


class NotCsv(ValueError):
    """The file cannot be read as CSV at all (nothing was imported)."""


@dataclass
class Options:
    type: str = "leads"
    asset: str | None = None
    kind: str = "white_paper"
    source: str = "import"
    consent: str = "no"  # yes | no | column:NAME
    mapping: dict[str, str] = field(default_factory=dict)  # header -> field
    dry_run: bool = False


@dataclass
class Report:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # kept up to max_errors
    encoding: str = ""
    delimiter: str = ","
    columns: dict[str, str] = field(default_factory=dict)  # header -> field used
    ignored: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "failed": self.failed}


def check_options(options: Options) -> None:
    """422 on the first option that cannot work (before any row is read)."""
    bad: dict[str, list[str]] = {}
    if options.type not in TYPES:
        bad["type"] = [f"Must be one of: {', '.join(TYPES)}."]
    if options.kind not in KINDS:
        bad["kind"] = [f"Must be one of: {', '.join(KINDS)}."]
    if options.source not in SOURCES:
        bad["source"] = [f"Must be one of: {', '.join(SOURCES)}."]
    if options.consent not in ("yes", "no") and not (
            options.consent.startswith("column:") and options.consent[7:]):
        bad["consent"] = ["Must be yes, no or column:NAME."]
    if options.asset is not None and not re.fullmatch(r"[a-z0-9-]{1,80}", options.asset):
        bad["asset"] = ["Must match [a-z0-9-]{1,80}."]
    for header, name in options.mapping.items():
        if name not in IMPORT_FIELDS:
            bad["map"] = [f"{header!r}: unknown field {name!r}."]
    if bad:
        raise Invalid("Validation failed.", bad)


# ---------------------------------------------------------------- reading the file

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


# ---------------------------------------------------------------- running an import

_TRUE = {"1", "yes", "y", "true", "t", "on", "x", "oui", "ja", "opt-in", "opted in", "subscribed"}


def run_import(store: Store, config: Config, raw: IO[bytes], options: Options, *,
               on_progress: Callable[[Report], None] | None = None,
               on_error: Callable[[int, str, str], None] | None = None,
               max_errors: int = 1000) -> Report:
    """Import one CSV file. Raises ``NotCsv`` when it cannot be read at all; bad rows are
    counted as failed with their line and reason (``on_error`` sees each of them)."""
    check_options(options)
    text, encoding = open_text(raw)
    report = Report(encoding=encoding)
    rows = records(text)
    try:
        report.delimiter = next(rows)[1][0]
        _, header = next(rows)
    except StopIteration as exc:
        raise NotCsv("no header line") from exc
    except UnicodeDecodeError as exc:
        raise NotCsv(f"not {encoding} text: {exc.reason}") from exc
    columns, report.ignored = map_header(header, options.mapping)
    report.columns = {h.strip(): c for h, c in zip(header, columns, strict=True) if c}
    if "email" not in columns:
        raise NotCsv("no email column (map one with --map \"Header=email\")")
    consent_column = None
    if options.consent.startswith("column:"):
        wanted = options.consent[7:].strip().lower()
        matches = [i for i, h in enumerate(header) if h.strip().lower() == wanted]
        if not matches:
            raise NotCsv(f"no column {options.consent[7:]!r} for --consent")
        consent_column = matches[0]
    asset = options.asset or "import-" + datetime.now(UTC).strftime("%Y%m%d")

    def fail(line: int, reason: str, name: str = "") -> None:
        report.failed += 1
        if len(report.errors) < max_errors:
            report.errors.append((line, reason, name))
        if on_error is not None:
            on_error(line, reason, name)

    applier = _Applier(store, config, options, report)
    batch: list[tuple[int, dict[str, Any]]] = []
    try:
        for line, cells in _decoded(rows, encoding):
            report.rows += 1
            data: dict[str, Any] = {"kind": options.kind, "asset": asset, "source": options.source}
            for name, value in zip(columns, cells, strict=False):
                if name is not None and value.strip():
                    data[name] = value.strip()
            if consent_column is not None:
                cell = cells[consent_column] if consent_column < len(cells) else ""
                data["consent"] = cell.strip().lower() in _TRUE
            elif "consent" in data:
                data["consent"] = str(data["consent"]).lower() in _TRUE
            else:
                data["consent"] = options.consent == "yes"
            if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns):]):
                fail(line, f"{len(cells)} cells for {len(columns)} columns")
                continue
            try:
                row = load_registration(data) if options.type == "leads" else _contact(data)
            except ValidationError as exc:
                name, messages = next(iter(_flat(exc.messages).items()))
                fail(line, messages[0], name)
                continue
            if row.get("consent"):
                row["evidence"] = {"how": "import", "v": None, "ip": None, "ua": None}
            batch.append((line, row))
            if len(batch) >= BATCH:
                applier.submit(batch)
                batch = []
                if on_progress is not None:
                    on_progress(report)
        applier.submit(batch)
    finally:
        applier.close()
    for line, reason in applier.rejected:
        fail(line, reason, "email")
    if on_progress is not None:
        on_progress(report)
    return report


def _decoded(rows: Iterator[tuple[int, list[str]]],
             encoding: str) -> Iterator[tuple[int, list[str]]]:
    try:
        yield from rows
    except UnicodeDecodeError as exc:
        raise NotCsv(f"not {encoding} text after the start of the file ({exc.reason}); "
                     "save it as UTF-8") from exc


def _flat(messages: Any) -> dict[str, list[str]]:
    if isinstance(messages, dict):
        out: dict[str, list[str]] = {}
        for name, value in messages.items():
            out[str(name)] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        return out
    return {"": [str(m) for m in messages]}


def _contact(data: dict[str, Any]) -> dict[str, Any]:
    from outreach.schemas.people import ContactIn

    loaded = ContactIn().load({k: v for k, v in data.items()
                               if k not in ("kind", "asset", "source", "referred_by")})
    loaded.update(kind=data["kind"], asset=data["asset"], source=data["source"])
    return loaded


class _Applier:
    """Applies batches on a thread of its own, so that reading and validating the next batch
    overlaps with Redis running the ingest script for this one (at most two in flight)."""

    def __init__(self, store: Store, config: Config, options: Options, report: Report) -> None:
        self.store, self.config, self.options, self.report = store, config, options, report
        self.rejected: list[tuple[int, str]] = []
        self._queue: queue.Queue[list[tuple[int, dict[str, Any]]] | None] = queue.Queue(2)
        self._error: BaseException | None = None
        self._seen: dict[str, dict[str, str]] = {}  # dry run: met earlier in the file: values
        self._thread = threading.Thread(target=self._run, name="import-apply", daemon=True)
        self._thread.start()

    def submit(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        if self._error is not None:
            raise self._error
        if batch:
            self._queue.put(batch)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._error is not None:
                continue
            try:
                self._apply(batch)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the reading thread
                self._error = exc

    def _apply(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        report = self.report
        if self.options.dry_run:
            self._dry(batch)
            return
        if self.options.type == "contacts":
            self._contacts(batch)
            return
        outcomes = apply_rows(self.store, self.config, [row for _, row in batch])
        for (line, _), (outcome, detail) in zip(batch, outcomes, strict=True):
            if outcome == "rejected":
                self.rejected.append((line, detail or "rejected"))
            else:
                setattr(report, outcome, getattr(report, outcome) + 1)

    def _dry(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        """What the import would do, read without writing: a new address is created; a
        known person is unchanged when they are on the asset's list already and every value
        the row brings (profile fields, consent given) is what they have, else updated. A
        person met earlier in the file is compared with what that row would have left."""
        keys = self.store.keys
        emails = [row["email"] for _, row in batch]
        pipe = self.store.r.pipeline(transaction=False)
        pipe.hmget(keys.lead_by_email, emails)
        pipe.hmget(keys.contact_by_email, emails)
        kinds = sorted({f"{row['kind']}:{row['asset']}" for _, row in batch})
        pipe.hmget(keys.assets, kinds)
        leads, contacts, pairs = pipe.execute()
        lists = {kind: (pair or ",").split(",") for kind, pair in zip(kinds, pairs, strict=True)}
        pipe = self.store.r.pipeline(transaction=False)
        rows = []
        asked = set(self._seen)  # read once per person: at their first row in the file
        for (_, row), lead, contact in zip(batch, leads, contacts, strict=True):
            brings = {n: row[n].strip() for n in PROFILE_FIELDS if (row.get(n) or "").strip()}
            if row.get("consent"):
                brings["consent"] = "1"
            person = contact or lead
            if person and row["email"] not in asked:
                asked.add(row["email"])
                names = [*brings, "consent"]
                pipe.hmget(keys.contact(person) if contact else keys.lead(person), names)
                lead_list, contact_list = lists[f"{row['kind']}:{row['asset']}"]
                member_list = contact_list if contact else lead_list
                pipe.zscore(keys.list_members(member_list or "-"), person)
            rows.append((row["email"], brings, bool(person)))
            asked.add(row["email"])
        replies = iter(pipe.execute())
        for email, brings, known in rows:
            before = self._seen.get(email)
            if before is None and known:
                stored = dict(zip([*brings, "consent"], next(replies), strict=True))
                listed = next(replies) is not None
                if stored.get("consent") in ("1", "p"):
                    stored["consent"] = "1"  # given or pending: an import gives nothing new
                before = stored if listed else None
            if before is None:
                outcome = "updated" if known or email in self._seen else "created"
            else:
                same = all(before.get(n) == v for n, v in brings.items())
                outcome = "unchanged" if same else "updated"
            setattr(self.report, outcome, getattr(self.report, outcome) + 1)
            self._seen[email] = {**(before or {}), **brings}

    def _contacts(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        from outreach.people.records import get_contact, upsert_contact

        keys = self.store.keys
        memberships = []
        for _, row in batch:
            contact_id = self.store.r.hget(keys.contact_by_email, row["email"])
            before = get_contact(self.store, contact_id) if contact_id else None
            fields = {k: v for k, v in row.items() if k not in ("kind", "asset", "source", "evidence")}
            if not row.get("consent"):
                fields.pop("consent", None)  # an import never withdraws consent
            # consent given here keeps its evidence (how=import); the ingest script below
            # then finds it unchanged and adds none
            after, created = upsert_contact(self.store, fields, how="import", asset=row["asset"])
            outcome = "created" if created else (
                "unchanged" if _same(before, after) else "updated")
            memberships.append((row, outcome))
        # the asset's contact list, through the ingest script (known contacts go to it)
        applied = apply_rows(self.store, self.config, [row for row, _ in memberships])
        for (_, outcome), (listed, _) in zip(memberships, applied, strict=True):
            if outcome == "unchanged" and listed != "unchanged":
                outcome = "updated"  # newly on the asset's list
            setattr(self.report, outcome, getattr(self.report, outcome) + 1)


def _same(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    if before is None:
        return False
    ignore = {"updated_at"}
    return {k: v for k, v in before.items() if k not in ignore} == {
        k: v for k, v in after.items() if k not in ignore}


# ---------------------------------------------------------------- imports as jobs (API)

def create_job(store: Store, config: Config, content: bytes, options: Options) -> str:
    """Keep an uploaded file and a queued job for a worker; returns the import id."""
    check_options(options)
    import json

    import_id, _ = store.next_id("import", "im")
    keys = store.keys
    pipe = store.r.pipeline(transaction=True)
    # the store decodes replies as text: the file is kept base64 (any bytes, any encoding)
    pipe.set(keys.import_file(import_id), base64.b64encode(content).decode("ascii"), ex=86_400)
    pipe.hset(keys.import_job(import_id), mapping={
        "status": "queued", "rows": 0, "created": 0, "updated": 0, "unchanged": 0, "failed": 0,
        "progress": 0, "size": len(content), "options": json.dumps(options.__dict__),
        "created_at": int(time.time())})
    pipe.expire(keys.import_job(import_id), 30 * 86_400)
    pipe.execute()
    return import_id


def claim_job(store: Store, config: Config, import_id: str, now: float | None = None) -> bool:
    """Take a job to run: a queued one, or a running one whose lease expired (its worker
    died: the redelivered task runs it again, the same dedup making that safe). True when
    this caller holds it now, with a lease of ``import_lease_seconds`` that the run renews
    with every batch's progress."""
    import redis

    now = time.time() if now is None else now
    job_key = store.keys.import_job(import_id)
    with store.r.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(job_key)
            status, lease_until = pipe.hmget(job_key, "status", "lease_until")
            if status != "queued" and not (status == "running"
                                           and float(lease_until or 0) <= now):
                pipe.unwatch()
                return False
            pipe.multi()
            pipe.hset(job_key, mapping={"status": "running", "started_at": int(now),
                                        "lease_until": now + config.import_lease_seconds})
            pipe.hincrby(job_key, "runs", 1)
            pipe.execute()
        except redis.WatchError:
            return False  # another worker changed it first
    return True


def lease_left(store: Store, import_id: str, now: float | None = None) -> float:
    """Seconds until a running job's lease expires (0: not running, or expired)."""
    now = time.time() if now is None else now
    status, lease_until = store.r.hmget(store.keys.import_job(import_id), "status", "lease_until")
    return max(0.0, float(lease_until or 0) - now) if status == "running" else 0.0


def run_job(store: Store, config: Config, import_id: str) -> dict[str, Any]:
    """Run a queued import, or rerun one whose worker died (``claim_job``); a job another
    worker is running, or that is finished, is left alone. Idempotent."""
    import json

    keys = store.keys
    job_key = keys.import_job(import_id)
    if not claim_job(store, config, import_id):
        return get_job(store, import_id)
    options = Options(**json.loads(store.r.hget(job_key, "options") or "{}"))
    stored = store.r.get(keys.import_file(import_id))
    content = base64.b64decode(stored) if stored else b""
    errors_key = keys.import_errors(import_id)
    store.r.delete(errors_key)
    size = max(1, len(content or b""))
    raw = _Counting(content or b"")

    def progress(report: Report) -> None:
        # the heartbeat rides on the progress write: the lease is renewed with every batch
        store.r.hset(job_key, mapping={**report.as_dict(),
                                       "progress": round(min(raw.read_bytes / size, 1.0), 4),
                                       "lease_until": time.time() + config.import_lease_seconds})

    def error(line: int, reason: str, name: str) -> None:
        store.r.rpush(errors_key, json.dumps([line, reason, name]))

    try:
        report = run_import(store, config, raw, options, on_progress=progress, on_error=error,
                            max_errors=0)
    except (NotCsv, Invalid) as exc:
        store.r.hset(job_key, mapping={"status": "failed", "error": str(exc), "progress": 1})
    else:
        store.r.hset(job_key, mapping={**report.as_dict(), "status": "done", "progress": 1})
    store.r.expire(errors_key, 30 * 86_400)
    store.r.delete(keys.import_file(import_id))
    return get_job(store, import_id)


class _Counting(io.BytesIO):
    @property
    def read_bytes(self) -> int:
        return self.tell()


def get_job(store: Store, import_id: str, base_url: str = "") -> dict[str, Any]:
    from outreach.platform.paging import existing_hash

    h = existing_hash(store, store.keys.import_job(import_id), "import", import_id)
    out: dict[str, Any] = {"id": import_id, "status": h["status"]}
    for name in ("rows", "created", "updated", "unchanged", "failed"):
        out[name] = int(h.get(name) or 0)
    out["progress"] = float(h.get("progress") or 0)
    out["error"] = h.get("error")
    out["errors_url"] = f"{base_url.rstrip('/')}/api/v1/imports/{import_id}/errors.csv"
    return out


def job_errors(store: Store, import_id: str) -> Iterator[list[Any]]:
    import json

    from outreach.platform.paging import existing_hash

    existing_hash(store, store.keys.import_job(import_id), "import", import_id)
    key = store.keys.import_errors(import_id)
    start = 0
    while True:
        chunk = store.r.lrange(key, start, start + 999)
        if not chunk:
            return
        for raw in chunk:
            yield json.loads(raw)
        start += len(chunk)
