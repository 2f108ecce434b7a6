"""Running a CSV import of leads or contacts: one path with intake.

Every row goes through the intake's loader (``load_registration``: the same validation and
address normalisation as a website form) and then through the same ingest script as the
intake stream (``apply_rows``: the same dedup by normalised address, merge rules, asset lists),
so an import can never create a duplicate of a lead or contact that intake would not.
Contacts go through the same script (its ``contacts`` mode: an unknown address becomes a
contact, as ``POST /api/v1/contacts`` makes one), one call per chunk like leads.
Reading the file is ``csvfile``'s job; running it on a worker is ``jobs``'.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from marshmallow import ValidationError

from outreach.config import Config
from outreach.errors import Invalid
from outreach.people.imports.csvfile import (
    EVIDENCE_FIELDS,
    IMPORT_FIELDS,
    NotCsv,
    decoded,
    map_header,
    open_text,
    records,
    source_of,
)
from outreach.people.ingest import apply_rows
from outreach.people.registration import (  # intake's own loader: one path
    ContactIn,
    iana_zone,
    load_registration,
)
from outreach.store import Store
from outreach.vocabulary import KINDS, PROFILE_FIELDS, SOURCES

TYPES = ("leads", "contacts")
BATCH = 1000


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
    # values we could not take, never failing their row: (field, value) -> rows. An unknown
    # lead-source label is imported as ``import``; an unknown time zone is left out.
    unknown: dict[tuple[str, str], int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "failed": self.failed}

    def unknown_values(self) -> list[str]:
        """``source "Trade Fair X" (3 rows, imported as import)``, one per value."""
        out = []
        for (name, value), n in sorted(self.unknown.items()):
            then = "imported as import" if name == "source" else "left out"
            out.append(f"{name} {value!r} ({n} row{'s' if n != 1 else ''}, {then})")
        return out


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
        for line, cells in decoded(rows, encoding):
            report.rows += 1
            data: dict[str, Any] = {"kind": options.kind, "asset": asset, "source": options.source}
            for name, value in zip(columns, cells, strict=False):
                if name is not None and value.strip():
                    data[name] = value.strip()
            evidence, opted_in = _labels(data, report)
            if consent_column is not None:
                cell = cells[consent_column] if consent_column < len(cells) else ""
                data["consent"] = cell.strip().lower() in _TRUE
            elif "consent" in data:
                data["consent"] = str(data["consent"]).lower() in _TRUE
            else:
                data["consent"] = options.consent == "yes" or opted_in
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
                row["evidence"] = {"how": "import", "v": None, "ua": None, **evidence}
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


_WITHDRAWN = ("unsub_time", "clean_time")


def _labels(data: dict[str, Any], report: Report) -> tuple[dict[str, Any], bool]:
    """Take an export's labels as our words, never failing the row over one: its lead
    source (an unknown label is ``import``, reported), its time zone (an unknown one is left
    out, reported). Returns the row's opt-in evidence (Mailchimp's ``CONFIRM_TIME``/``IP``,
    else ``OPTIN_TIME``/``IP``): ``{"ip", "at"}`` with the original time and address, and
    whether the row shows an opt-in (evidence not withdrawn by ``UNSUB_TIME`` or
    ``CLEAN_TIME``): without a consent column, that is consent given."""
    label = data.get("source")
    if label is not None and label not in SOURCES:
        source = source_of(label)
        if source is None:
            key = ("source", label)
            report.unknown[key] = report.unknown.get(key, 0) + 1
            source = "import"
        data["source"] = source
    if data.get("referred_by") and data.get("source") != "referral":
        data.pop("referred_by")  # a referrer only goes with the referral source
    zone = data.get("timezone")
    if zone is not None and not iana_zone(zone):
        key = ("timezone", zone)
        report.unknown[key] = report.unknown.get(key, 0) + 1
        data.pop("timezone")
    proof = {name: data.pop(name, None) for name in EVIDENCE_FIELDS}
    withdrawn = any(data.pop(name, None) for name in _WITHDRAWN)
    at = _epoch(proof["confirm_time"]) or _epoch(proof["optin_time"])
    ip = proof["confirm_ip"] or proof["optin_ip"]
    out: dict[str, Any] = {"ip": ip}
    if at:
        out["at"] = at
    return out, bool(at or ip) and not withdrawn


def _epoch(value: str | None) -> int | None:
    """A time as exports write it (``2024-03-05 14:22:01``, ISO 8601; UTC unless it says)."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def _flat(messages: Any) -> dict[str, list[str]]:
    if isinstance(messages, dict):
        out: dict[str, list[str]] = {}
        for name, value in messages.items():
            out[str(name)] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        return out
    return {"": [str(m) for m in messages]}


def _contact(data: dict[str, Any]) -> dict[str, Any]:
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
        # one call of the ingest script per chunk, leads or contacts (mode ``contacts``: a
        # new address becomes a contact, never a lead; a known one's fields are replaced, an
        # import being an authenticated write, and its consent is only ever given, never
        # withdrawn, with the row's evidence)
        outcomes = apply_rows(self.store, self.config, [row for _, row in batch],
                              contacts=self.options.type == "contacts")
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

