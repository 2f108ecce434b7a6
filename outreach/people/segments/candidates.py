"""Previewing unsaved rules without evaluating everyone: the people a tree can hold are
narrowed with the indexes a rule allows, then evaluated a page at a time with the facts of
the whole page loaded in a few pipelined round trips.

Narrowing never loses a member: every index used is a superset of the people the condition
holds for (each candidate is still evaluated in full):

- ``status`` ``eq``/``in`` ``qualified``/``disqualified``: ``Keys.leads_by_status`` (leads);
- ``score`` ``gt`` (any value >= 0) or ``gte`` (a value > 0): ``Keys.lead_scores`` (leads;
  a lead without a score is 0, so only ranges that exclude 0 narrow), from the least scaled
  score whose rounded current value passes (``Decay.scaled_bound`` at the preview's moment,
  a hair lower for floating point);
- ``in_list``: the list's members (nobody of the other member type);
- ``in_segment``: the segment's members.

``all`` takes the smallest narrowed child, ``any`` the union when every child narrows,
anything else (``not``, other rules) reads every person of the member type: the full scan,
still a page at a time and pipelined.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from outreach.people.scoring import decay_of
from outreach.people.segments import members
from outreach.people.segments.facts import (
    Facts,
    hash_fields,
    history_entries,
    lead_account_keys,
    load,
    needs,
    parse_events,
)
from outreach.people.segments.rules import walk
from outreach.platform import refs
from outreach.store import Store
from outreach.vocabulary import PROFILE_FIELDS

PAGE = 500
STATUS_INDEXED = ("qualified", "disqualified")


@dataclass(frozen=True)
class Source:
    """People of one kind read from a zset by rank: ``key``'s members scored ``lo`` .. +inf
    (``lo`` a ZRANGEBYSCORE bound; '-inf' all), or exactly ``lo`` when ``exact``."""

    key: str
    make: Callable[[str], str]  # member -> ref
    lo: str = "-inf"
    exact: bool = False

    def bounds(self) -> tuple[str, str]:
        return (self.lo, self.lo) if self.exact else (self.lo, "+inf")

    def count(self, store: Store) -> int:
        return int(store.r.zcount(self.key, *self.bounds()))

    def refs(self, store: Store, page: int = PAGE) -> Iterator[list[str]]:
        lo, hi = self.bounds()
        start = 0 if lo == "-inf" else int(store.r.zcount(self.key, "-inf", _below(lo)))
        stop = start + self.count(store)
        while start < stop:
            members = store.r.zrange(self.key, start, min(stop, start + page) - 1)
            if not members:
                break
            yield [self.make(m) for m in members]
            start += len(members)


@dataclass(frozen=True)
class SegmentSource:
    """The members of one kind of a segment (``members``), in person number order."""

    segment_id: str
    kind: str  # refs.LEAD | refs.CONTACT

    def count(self, store: Store) -> int:
        return members.count(store, self.segment_id, self.kind)

    def refs(self, store: Store, page: int = PAGE) -> Iterator[list[str]]:
        return members.pages(store, self.segment_id, page, (self.kind,))


def _below(lo: str) -> str:
    """The ZRANGEBYSCORE upper bound of everything below ``lo``."""
    return lo[1:] if lo.startswith("(") else f"({lo}"


def _of_kind(kind: str) -> Callable[[str], str]:
    return refs.lead_ref if kind == "lead" else refs.contact_ref


class _Narrower:
    def __init__(self, store: Store, kind: str, now: float) -> None:
        self.store, self.kind, self.now = store, kind, now
        self.list_types: dict[str, str | None] = {}

    def node(self, node: dict[str, Any]) -> list[Source | SegmentSource] | None:
        """Sources whose union holds everyone of ``kind`` ``node`` can hold; None: anyone."""
        if "field" in node:
            return self.condition(node)
        (kind, body), = node.items()
        if kind == "all":
            narrowed = [s for s in (self.node(child) for child in body) if s is not None]
            if not narrowed:
                return None
            return min(narrowed, key=lambda sources: sum(s.count(self.store) for s in sources))
        if kind == "any":
            union: list[Source | SegmentSource] = []
            for child in body:
                sources = self.node(child)
                if sources is None:
                    return None
                union.extend(sources)
            return union
        if kind == "in_list":
            return self.in_list(body)
        if kind == "in_segment":
            return [SegmentSource(body, refs.LEAD if self.kind == "lead" else refs.CONTACT)]
        return None

    def in_list(self, list_id: str) -> list[Source | SegmentSource]:
        if list_id not in self.list_types:
            self.list_types[list_id] = self.store.r.hget(self.store.keys.list(list_id),
                                                         "member_type")
        if self.list_types[list_id] != self.kind:
            return []  # nobody of this kind is on it
        return [Source(self.store.keys.list_members(list_id), _of_kind(self.kind))]

    def condition(self, node: dict[str, Any]) -> list[Source | SegmentSource] | None:
        if self.kind != "lead":
            return None
        name, op, value = node["field"], node["op"], node["value"]
        keys = self.store.keys
        if name == "status" and op in ("eq", "in"):
            wanted = {str(v).lower() for v in (value if isinstance(value, list) else [value])}
            if wanted <= set(STATUS_INDEXED):
                return [Source(keys.leads_by_status(s), refs.lead_ref) for s in sorted(wanted)]
            return None
        if name == "score":
            bound = _score_bound(self.store, op, value, self.now)
            if bound is not None:
                return [Source(keys.lead_scores, refs.lead_ref, repr(bound * (1 - 1e-9)))]
        return None


def _score_bound(store: Store, op: str, value: Any, now: float) -> float | None:
    """The least scaled score (``Keys.lead_scores``) whose rounded current value passes a
    score ``gt`` (value >= 0) or ``gte`` (value > 0) at ``now``; None for any other
    condition (one that a lead without a score, 0, can pass). At ``now`` in whole seconds,
    as the evaluator takes it (the decay's factor at a later instant of the same second is
    a hair larger: a lead exactly at the bound would be left out)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    now = float(int(now))
    # rules compare the rounded current score, a whole number: the least one passing
    least = (math.floor(value) + 1 if op == "gt" and value >= 0
             else math.ceil(value) if op == "gte" and value > 0 else 0)
    return decay_of(store).scaled_bound(least, now) if least > 0 else None


def narrowed(store: Store, kind: str, rules: dict[str, Any], now: float
             ) -> list[Source | SegmentSource] | None:
    """The sources of the people of ``kind`` ('lead' | 'contact') ``rules`` can hold at
    ``now``, or None when no index narrows them (then everyone of that kind is a
    candidate)."""
    return _Narrower(store, kind, now).node(rules)


def people(store: Store, member_type: str, rules: dict[str, Any], now: float,
           page: int = PAGE) -> Iterator[list[str]]:
    """Pages of candidate refs for a segment of ``member_type`` at ``now``: narrowed where
    an index allows, every person of the type otherwise; each candidate once."""
    kinds = [k for k in ("lead", "contact") if member_type in (k, "any")]
    for kind in kinds:
        sources = narrowed(store, kind, rules, now)
        if sources is None:
            every = store.keys.leads if kind == "lead" else store.keys.contacts
            sources = [Source(every, _of_kind(kind))]
        prefix = refs.LEAD if kind == "lead" else refs.CONTACT
        seen: set[str] | None = set() if len(sources) > 1 else None
        for source in sources:
            for chunk in source.refs(store, page):
                mine = [r for r in chunk if r.startswith(prefix + ":")]
                if seen is not None:
                    mine = [r for r in mine if r not in seen]
                    seen.update(mine)
                if mine:
                    yield mine


@dataclass(frozen=True)
class Answered:
    """What an index says of a whole tree: ``count`` people surely in it (the first of them
    in ``first``), and ``doubtful`` ones (within a hair of a score bound, where floating
    point could decide otherwise) that are to be evaluated."""

    count: int
    first: list[str]
    doubtful: list[str]


def answered(store: Store, member_type: str, rules: dict[str, Any], now: float,
             sample: int) -> Answered | None:
    """The answer of an index for a tree that is one condition it answers exactly, with
    no evaluation of anyone: ``in_list`` (its members, of the segment's member type) or a
    ``score`` ``gt``/``gte`` (a segment of leads: the leads at or above the least scaled
    score whose rounded current value passes). None for any other tree."""
    keys = store.keys
    if "in_list" in rules and member_type in ("lead", "contact"):
        list_id = rules["in_list"]
        if store.r.hget(keys.list(list_id), "member_type") != member_type:
            return Answered(0, [], [])
        key = keys.list_members(list_id)
        return Answered(int(store.r.zcard(key)),
                        [_of_kind(member_type)(m) for m in store.r.zrange(key, 0, sample - 1)],
                        [])
    if rules.get("field") != "score" or member_type != "lead":
        return None
    bound = _score_bound(store, rules["op"], rules["value"], now)
    if bound is None:
        return None
    low, high = repr(bound * (1 - 1e-9)), repr(bound * (1 + 1e-9))
    pipe = store.r.pipeline(transaction=False)
    pipe.zcount(keys.lead_scores, f"({high}", "+inf")
    pipe.zrangebyscore(keys.lead_scores, f"({high}", "+inf", start=0, num=sample)
    pipe.zrangebyscore(keys.lead_scores, low, high)
    count, first, doubtful = pipe.execute()
    return Answered(int(count), [refs.lead_ref(m) for m in first],
                    [refs.lead_ref(m) for m in doubtful])


def prefilter(rules: dict[str, Any]) -> Callable[[dict[str, str]], bool] | None:
    """A cheap test on a person's hash that every member passes (so a person who fails it
    needs no evaluation): the ``eq`` conditions on plain profile fields that the tree (or
    its ``all``) requires, compared as the evaluator does (ignoring case; no value never
    equals). None when the tree requires no such condition."""
    required = rules.get("all", [rules])
    wanted = [(node["field"], node["value"].lower()) for node in required
              if "field" in node and node["op"] == "eq" and node["field"] in _PLAIN
              and isinstance(node["value"], str)]
    if not wanted:
        return None

    def passes(h: dict[str, str]) -> bool:
        return all((h.get(name) or "").lower() == value for name, value in wanted)

    return passes


# fields the evaluator reads as they are stored (h.get(name) or None)
_PLAIN = frozenset((*PROFILE_FIELDS, "email", "owner"))


# ---------------------------------------------------------------- facts of a page at once

_BATCHED = ("field", "all", "any", "not", "registered", "sent", "opened", "clicked",
            "in_list", "in_segment")


def _batchable(rules: dict[str, Any]) -> bool:
    """Whether ``load_many`` reads everything the tree needs (else: ``facts.load`` each)."""
    for _, node in walk(rules):
        if "field" in node:
            continue
        (kind, body), = node.items()
        if kind == "account":
            if set(body) - {"field", "op", "value"}:
                return False
        elif kind not in _BATCHED:
            return False
    return True


class Loader:
    """``facts.load`` for a page of people in a few pipelined round trips (the per-scan
    caches hold what is the same for everyone: list slugs, link URLs, accounts)."""

    def __init__(self, store: Store, rules: dict[str, Any]) -> None:
        self.store, self.rules = store, rules
        self.batched = _batchable(rules)
        need = needs(rules)
        self.need = need
        self.fields = hash_fields([rules])
        self.decay = decay_of(store)  # the stored score is scaled to the decay's epoch
        self.lists = sorted(need["lists"])
        self.sent = sorted(need["sent"])
        self.slugs: dict[str, str | None] = {}
        self.urls: dict[tuple[str, str], str | None] = {}
        self.account_ids: dict[tuple[str, str], str] = {}
        self.accounts: dict[str, dict[str, str] | None] = {}

    def load(self, person_refs: list[str]) -> list[Facts | None]:
        if not self.batched:
            return [load(self.store, ref, [self.rules]) for ref in person_refs]
        keys, need = self.store.keys, self.need
        hashes: list[dict[str, str]] = []
        if self.fields is not None:  # the fields read, a page in one script call
            flat = self.store.run("segment_fields", args=[
                keys.tag, len(self.fields), *self.fields, *person_refs])
            width = len(self.fields)
            for i in range(len(person_refs)):
                # none of the fields (not even the email every person has): nobody
                hashes.append({k: v for k, v in zip(self.fields, flat[i * width:(i + 1) * width],
                                                    strict=True) if v is not None})
        pipe = self.store.r.pipeline(transaction=False)
        for ref in person_refs:
            person_id = refs.parse(ref)[1]
            if self.fields is None:
                pipe.hgetall(keys.person(ref))
            if need["events"]:
                pipe.lrange(keys.person_events(ref), 0, -1)
            for list_id in self.lists:
                pipe.zscore(keys.list_members(list_id), person_id)
        replies = iter(pipe.execute() if len(pipe) else [])
        out: list[Facts | None] = []
        for i, ref in enumerate(person_refs):
            h = next(replies) if self.fields is None else hashes[i]
            events = next(replies) if need["events"] else []
            on = [s is not None for s in (next(replies) for _ in self.lists)]
            if not h:
                out.append(None)
                continue
            facts = Facts(ref, h, events=parse_events(events or []), decay=self.decay)
            facts.lists = {list_id for list_id, yes in zip(self.lists, on, strict=True) if yes}
            facts.segments = members.segments_of(h)
            out.append(facts)
        self._second_pass([f for f in out if f is not None])
        return out

    def _second_pass(self, people: list[Facts]) -> None:
        keys, need = self.store.keys, self.need
        histories = {f.ref: history_entries(f.h.get("regs")) if need["regs"] else []
                     for f in people}
        list_ids = sorted({asset for history in histories.values()
                           for _, asset, _, is_list in history if is_list} - set(self.slugs))
        clicks = sorted({(e.campaign_id, e.link_id) for f in people for e in f.events
                         if e.kind == "click"} - set(self.urls)) if need["links"] else []
        account_keys: dict[str, tuple[str, str]] = {}
        if need["account"]:
            for f in people:
                if not f.h.get("account_id") and f.type == "lead":
                    account_keys[f.ref] = lead_account_keys(f.h)
        lookups = sorted(set(account_keys.values()) - set(self.account_ids))
        pipe = self.store.r.pipeline(transaction=False)
        for list_id in list_ids:
            pipe.hget(keys.list(list_id), "slug")
        for campaign_id, link_id in clicks:
            pipe.hget(keys.campaign_links(campaign_id), link_id)
        for f in people:
            for campaign_id in self.sent:
                pipe.hget(keys.campaign_ledger(campaign_id), f.h.get("email") or "")
        for company_key, domain_key in lookups:
            pipe.hget(keys.account_by_name, company_key or "\0")
            pipe.hget(keys.account_by_domain, domain_key or "\0")
        replies = iter(pipe.execute() if len(pipe) else [])
        for list_id in list_ids:
            self.slugs[list_id] = next(replies)
        for click in clicks:
            self.urls[click] = next(replies)
        ledger = {f.ref: [next(replies) for _ in self.sent] for f in people}
        for lookup in lookups:
            by_name, by_domain = next(replies), next(replies)
            self.account_ids[lookup] = by_name or by_domain or ""
        for f in people:
            f.registrations = [(kind, self.slugs.get(asset) or asset if is_list else asset, at)
                               for kind, asset, at, is_list in histories[f.ref]]
            if need["links"]:
                f.links = {(e.campaign_id, e.link_id): self.urls[(e.campaign_id, e.link_id)]
                           for e in f.events if e.kind == "click"
                           and self.urls.get((e.campaign_id, e.link_id))}
            for campaign_id, entry in zip(self.sent, ledger[f.ref], strict=True):
                if entry and entry.startswith("S|"):
                    f.sent[campaign_id] = int(entry.rpartition("|")[2] or 0)
        if need["account"]:
            wanted = {}
            for f in people:
                account_id = f.h.get("account_id") or ""
                if not account_id and f.type == "lead":
                    account_id = self.account_ids.get(account_keys[f.ref], "")
                wanted[f.ref] = account_id
            missing = sorted({a for a in wanted.values() if a} - set(self.accounts))
            if missing:
                pipe = self.store.r.pipeline(transaction=False)
                for account_id in missing:
                    pipe.hgetall(keys.account(account_id))
                for account_id, h in zip(missing, pipe.execute(), strict=True):
                    self.accounts[account_id] = h or None
            for f in people:
                f.account = self.accounts.get(wanted[f.ref]) if wanted[f.ref] else None
