"""What a segment's rules read about one person, loaded from Redis in a bounded number of
pipelined round trips whatever the tree (the person, whose hash names their segments, their
events, the lists the tree names; then the asset slugs of their registrations, the clicked
links, the sends and the account's id; then the account)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from outreach.normalize import FREE_MAIL_DOMAINS, email_domain, normalise_company
from outreach.people.scoring import NO_DECAY, Decay, decay_of
from outreach.people.segments import members
from outreach.people.segments.rules import NUMBER_FIELDS, STORED_AS, walk
from outreach.platform import refs
from outreach.store import Store
from outreach.store.names.segments import segment_since_field

_KIND_CODES = {"w": "white_paper", "e": "event"}
_PAGE = 1000  # people a script call reads


@dataclass
class Event:
    kind: str  # open | click
    campaign_id: str
    at: int
    link_id: str = ""


@dataclass
class Facts:
    """One person as the evaluator sees them. Tests build these directly too."""

    ref: str
    h: dict[str, str]
    registrations: list[tuple[str, str, int]] = field(default_factory=list)  # (kind, asset, at)
    events: list[Event] = field(default_factory=list)
    lists: set[str] = field(default_factory=set)
    segments: dict[str, float] = field(default_factory=dict)  # segment id -> since
    sent: dict[str, int] = field(default_factory=dict)  # campaign id -> when sent
    links: dict[tuple[str, str], str] = field(default_factory=dict)  # (campaign, link) -> url
    account: dict[str, str] | None = None
    account_has_open_opportunity: bool = False
    decay: Decay = NO_DECAY  # how the stored, epoch-scaled ``score`` fades (people.scoring)

    @property
    def type(self) -> str:
        return refs.TYPES.get(refs.parse(self.ref)[0], "")


def parse_events(entries: list[str]) -> list[Event]:
    """The person's events list (``open|<campaign>|<at>|``, ``click|<campaign>|<at>|<link>``)."""
    out = []
    for entry in entries:
        parts = entry.split("|")
        if len(parts) >= 3 and parts[0] in ("open", "click") and parts[2].isdigit():
            out.append(Event(parts[0], parts[1], int(parts[2]), parts[3] if len(parts) > 3 else ""))
    return out


def history_entries(history: str | None) -> list[tuple[str, str, int, bool]]:
    """A stored registration history as ``(kind, asset or lead list id, at, is_list_id)``
    (the formats ``records.registrations_of`` reads)."""
    out = []
    for entry in (history or "").split(";"):
        parts = entry.split(":")
        try:
            if len(parts) == 2:
                code, at = parts
                out.append((_KIND_CODES.get(code[:1], code[:1]), "ls" + code[1:], int(at, 36), True))
            elif len(parts) == 3:
                code, asset, at = parts
                when = int(at) if code in _KIND_CODES.values() else int(at, 36)
                out.append((_KIND_CODES.get(code, code), asset, when, False))
        except ValueError:
            continue
    return out


def lead_account_keys(h: dict[str, str]) -> tuple[str, str]:
    """(company key, domain key) under which a lead's account would be found."""
    domain = email_domain(h.get("email") or "")
    return normalise_company(h.get("company") or ""), "" if domain in FREE_MAIL_DOMAINS else domain


# what evaluating a field reads from the person's hash beyond the field itself
_ALSO_READ = {"email_domain": ("email",), "latest_source": ("latest_source", "source"),
              "consent_status": ("consent",)}


def hash_fields(trees: list[dict[str, Any]], score: bool = True) -> list[str] | None:
    """The person-hash fields ``trees`` read (with ``email``, which every person has and
    announcements name, and ``contact_id``, which eligibility reads), or None for the whole
    hash: an account, anything not named here, or a score unless ``score``."""
    fields = {"email", "contact_id"}
    for _, node in walk({"all": trees}):
        if "field" in node:
            name = node["field"]
            if name in NUMBER_FIELDS and not score:
                return None
            fields.update(_ALSO_READ.get(name, (STORED_AS.get(name, name),)))
            continue
        (kind, body), = node.items()
        if kind == "registered":
            fields.add("regs")
        elif kind == "in_segment":  # whether they are in it is a field of their hash
            fields.add(segment_since_field(body))
        elif kind not in ("all", "any", "not", "opened", "clicked", "sent", "in_list",
                          "in_segment"):
            return None
    return sorted(fields)


def needs(tree: dict[str, Any]) -> dict[str, Any]:
    """What ``tree`` reads beyond the person's hash: lists, sends, events, registrations,
    link URLs, the account (what ``load_many`` and the preview's ``Loader`` fetch)."""
    need: dict[str, Any] = {"lists": set(), "sent": set(), "events": False, "regs": False,
                            "links": False, "account": False}
    for _, node in walk(tree):
        if "field" in node:
            continue
        (kind, body), = node.items()
        if kind in ("opened", "clicked"):
            need["events"] = True
            need["links"] = need["links"] or (kind == "clicked" and "url_contains" in body)
        elif kind == "sent":
            need["sent"].add(body["campaign_id"])
        elif kind == "registered":
            need["regs"] = True
        elif kind == "in_list":
            need["lists"].add(body)
        elif kind == "account":
            need["account"] = True
    return need


def load(store: Store, ref: str, trees: list[dict[str, Any]]) -> Facts | None:
    """The facts ``trees`` read about ``ref``, with every segment they are in; ``None`` when
    the person does not exist."""
    return load_many(store, [ref], trees)[0]


def load_many(store: Store, person_refs: list[str], trees: list[dict[str, Any]],
              only_read: bool = False, segment_ids: Iterable[str] = ()) -> list[Facts | None]:
    """``load`` for several people at once, in a few round trips whatever their number (a
    page of people's hashes, events and lists in one script call; then registrations' slugs,
    links, sends and account ids; then the accounts). Their segments (and since when) are
    fields of their hash (``members.segments_of``). ``only_read``: each person's hash holds
    only the fields the trees read (``hash_fields``) and their memberships of
    ``segment_ids`` (the ones the caller compares with), when that can be said (the rest of
    the hash is not read: less to send and decode; ``segments`` holds only those)."""
    need = needs({"all": trees})
    lists, sent = sorted(need["lists"]), sorted(need["sent"])
    people = [ref for ref in person_refs if refs.parse(ref)[0]]
    fields = hash_fields(trees) if only_read else None
    if fields:
        fields = sorted(set(fields) | {segment_since_field(s) for s in segment_ids})
    found = _read_people(store, people, need["events"], lists, fields or [])
    decay = decay_of(store)
    out: list[Facts | None] = []
    for ref in person_refs:
        if ref not in found:
            out.append(None)
            continue
        h, events, on = found[ref]
        if not h:
            out.append(None)
            continue
        facts = Facts(ref, h, events=parse_events(events), decay=decay)
        facts.lists = {list_id for list_id, score in zip(lists, on, strict=True)
                       if score is not None}
        facts.segments = members.segments_of(h)
        out.append(facts)
    _second_pass(store, [f for f in out if f is not None], need, sent)
    return out


def _read_people(store: Store, people: list[str], events: bool, lists: list[str],
                 fields: list[str]) -> dict[str, tuple[dict[str, str], list[str], list[Any]]]:
    """ref -> (hash, or only its ``fields`` when given; events, score in each of ``lists``)
    of ``people`` (valid refs), a page in one script call (``segment_facts.lua``) instead of
    a command per person and fact."""
    out: dict[str, tuple[dict[str, str], list[str], list[Any]]] = {}
    width = 2 + len(lists)
    for first in range(0, len(people), _PAGE):
        page = people[first:first + _PAGE]
        flat = json.loads(store.run("segment_facts", args=[
            store.keys.tag, "1" if events else "0", len(lists), *lists, len(fields), *fields,
            *page]))
        for i, ref in enumerate(page):
            row = flat[i * width:(i + 1) * width]
            values = row[0] or []  # cjson writes an empty table as {}
            h = ({name: value for name, value in zip(fields, values, strict=True)
                  if value is not False} if fields
                 else dict(zip(values[::2], values[1::2], strict=True)))
            out[ref] = (h, row[1] or [], [None if s is False else s for s in row[2:]])
    return out


def _second_pass(store: Store, people: list[Facts], need: dict[str, Any], sent: list[str]) -> None:
    """What the first pass's answers lead to: registrations' asset slugs, clicked links'
    URLs, sends, the account (nothing to do when the trees read none of them)."""
    if not (need["regs"] or need["links"] or sent or need["account"]):
        return
    keys = store.keys
    histories = {id(f): history_entries(f.h.get("regs")) if need["regs"] else [] for f in people}
    list_ids = sorted({asset for history in histories.values()
                       for _, asset, _, is_list in history if is_list})
    clicks = sorted({(e.campaign_id, e.link_id) for f in people for e in f.events
                     if e.kind == "click"}) if need["links"] else []
    account_ids: dict[int, str] = {}
    lookups: list[tuple[str, str]] = []
    if need["account"]:
        for f in people:
            account_ids[id(f)] = f.h.get("account_id") or ""
            if not account_ids[id(f)] and f.type == "lead":
                lookups.append(lead_account_keys(f.h))
        lookups = sorted(set(lookups))
    pipe = store.r.pipeline(transaction=False)
    for list_id in list_ids:
        pipe.hget(keys.list(list_id), "slug")
    for campaign_id, link_id in clicks:
        pipe.hget(keys.campaign_links(campaign_id), link_id)
    for f in people:
        for campaign_id in sent:
            pipe.hget(keys.campaign_ledger(campaign_id), f.h.get("email") or "")
    for company_key, domain_key in lookups:
        pipe.hget(keys.account_by_name, company_key or "\0")
        pipe.hget(keys.account_by_domain, domain_key or "\0")
    replies = iter(pipe.execute() if len(pipe) else [])
    slugs = {list_id: next(replies) for list_id in list_ids}
    urls = {click: next(replies) for click in clicks}
    ledgers = {id(f): [next(replies) for _ in sent] for f in people}
    found = {}
    for lookup in lookups:
        by_name, by_domain = next(replies), next(replies)
        found[lookup] = by_name or by_domain or ""
    for f in people:
        f.registrations = [(kind, slugs.get(asset) or asset if is_list else asset, at)
                           for kind, asset, at, is_list in histories[id(f)]]
        f.links = {(e.campaign_id, e.link_id): urls[(e.campaign_id, e.link_id)]
                   for e in f.events if e.kind == "click" and urls.get((e.campaign_id, e.link_id))}
        for campaign_id, entry in zip(sent, ledgers[id(f)], strict=True):
            if entry and entry.startswith("S|"):
                f.sent[campaign_id] = int(entry.rpartition("|")[2] or 0)
        if need["account"] and not account_ids[id(f)] and f.type == "lead":
            account_ids[id(f)] = found[lead_account_keys(f.h)]
    wanted = sorted({a for a in account_ids.values() if a})
    if not wanted:
        return
    pipe = store.r.pipeline(transaction=False)
    for account_id in wanted:
        pipe.hgetall(keys.account(account_id))
        pipe.hget(keys.account_open_opportunities, account_id)
    replies = iter(pipe.execute())
    accounts = {account_id: (next(replies), next(replies)) for account_id in wanted}
    for f in people:
        account_id = account_ids.get(id(f)) or ""
        if account_id:
            account, open_count = accounts[account_id]
            f.account = dict(account, id=account_id) if account else None
            f.account_has_open_opportunity = bool(account) and int(open_count or 0) > 0
