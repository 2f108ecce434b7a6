"""What a segment's rules read about one person, loaded from Redis in a bounded number of
pipelined round trips whatever the tree (the person, their events, the lists and segments the
tree names; then the asset slugs of their registrations, the clicked links, the sends and the
account's id; then the account)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from outreach.normalize import FREE_MAIL_DOMAINS, email_domain, normalise_company
from outreach.people.scoring import NO_DECAY, Decay
from outreach.people.segments.rules import walk
from outreach.platform import refs
from outreach.store import Store

_KIND_CODES = {"w": "white_paper", "e": "event"}


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


def _needs(tree: dict[str, Any]) -> dict[str, Any]:
    need: dict[str, Any] = {"lists": set(), "segments": set(), "sent": set(), "events": False,
                            "regs": False, "links": False, "account": False}
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
        elif kind == "in_segment":
            need["segments"].add(body)
        elif kind == "account":
            need["account"] = True
    return need


def load(store: Store, ref: str, trees: list[dict[str, Any]],
         member_of: Iterable[str] = ()) -> Facts | None:
    """The facts ``trees`` read about ``ref``, and whether ``ref`` is in the segments
    ``member_of`` (beside those the trees name); ``None`` when the person does not exist."""
    keys = store.keys
    kind, person_id = refs.parse(ref)
    if not kind:
        return None
    need = _needs({"all": trees})
    lists, sent = sorted(need["lists"]), sorted(need["sent"])
    segments = sorted(need["segments"] | set(member_of))
    pipe = store.r.pipeline(transaction=False)
    pipe.hgetall(keys.person(ref))
    pipe.lrange(keys.person_events(ref), 0, -1) if need["events"] else pipe.echo("")
    pipe.hmget(keys.score_decay, "epoch", "half_life")
    for list_id in lists:
        pipe.zscore(keys.list_members(list_id), person_id)
    for segment_id in segments:
        pipe.zscore(keys.segment_members(segment_id), ref)
    replies = pipe.execute()
    h = replies[0]
    if not h:
        return None
    epoch, half_life = replies[2]
    facts = Facts(ref, h, events=parse_events(replies[1] or []),
                  decay=Decay(float(epoch or 0), float(half_life or 0)))
    at = 3
    facts.lists = {list_id for list_id, score in zip(lists, replies[at:at + len(lists)],
                                                     strict=True) if score is not None}
    at += len(lists)
    facts.segments = {s: float(score) for s, score in zip(segments, replies[at:at + len(segments)],
                                                          strict=True) if score is not None}
    _second_pass(store, facts, need, sent)
    return facts


def _second_pass(store: Store, facts: Facts, need: dict[str, Any], sent: list[str]) -> None:
    keys = store.keys
    h = facts.h
    history = history_entries(h.get("regs")) if need["regs"] else []
    list_ids = sorted({asset for _, asset, _, is_list in history if is_list})
    clicks = sorted({(e.campaign_id, e.link_id) for e in facts.events if e.kind == "click"}
                    ) if need["links"] else []
    pipe = store.r.pipeline(transaction=False)
    for list_id in list_ids:
        pipe.hget(keys.list(list_id), "slug")
    for campaign_id, link_id in clicks:
        pipe.hget(keys.campaign_links(campaign_id), link_id)
    for campaign_id in sent:
        pipe.hget(keys.campaign_ledger(campaign_id), h.get("email") or "")
    account_id = ""
    if need["account"]:
        account_id = h.get("account_id") or ""
        if not account_id and facts.type == "lead":
            company_key, domain_key = lead_account_keys(h)
            pipe.hget(keys.account_by_name, company_key or "\0")
            pipe.hget(keys.account_by_domain, domain_key or "\0")
    replies = pipe.execute() if (list_ids or clicks or sent or need["account"]) else []
    slugs = dict(zip(list_ids, replies[:len(list_ids)], strict=True))
    facts.registrations = [(kind, slugs.get(asset) or asset if is_list else asset, at)
                           for kind, asset, at, is_list in history]
    at = len(list_ids)
    facts.links = {c: url for c, url in zip(clicks, replies[at:at + len(clicks)], strict=True) if url}
    at += len(clicks)
    for campaign_id, entry in zip(sent, replies[at:at + len(sent)], strict=True):
        if entry and entry.startswith("S|"):
            facts.sent[campaign_id] = int(entry.rpartition("|")[2] or 0)
    at += len(sent)
    if need["account"]:
        if not account_id and facts.type == "lead":
            account_id = replies[at] or replies[at + 1] or ""
        if account_id:
            pipe = store.r.pipeline(transaction=False)
            pipe.hgetall(keys.account(account_id))
            pipe.hget(keys.account_open_opportunities, account_id)
            account, open_count = pipe.execute()
            facts.account = dict(account, id=account_id) if account else None
            facts.account_has_open_opportunity = bool(account) and int(open_count or 0) > 0
