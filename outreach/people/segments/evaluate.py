"""A segment's rules for one person: the value of every node, the fact behind it, and the
next moment a value can flip by time alone (a window's end), for the due index."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from outreach.people.consent import consent_status
from outreach.people.segments.facts import Facts
from outreach.people.segments.rules import (
    DATE_FIELDS,
    NUMBER_FIELDS,
    absolute_date,
    duration_seconds,
)
from outreach.vocabulary import iso


@dataclass
class Verdict:
    value: bool
    flip: float | None = None  # when this value can next change with no new data
    nodes: list[dict[str, Any]] = field(default_factory=list)  # explain: path, value, because


def field_value(facts: Facts, name: str) -> Any:
    """A rule field's value for a person (``None``: the person has no such field)."""
    h = facts.h
    if name == "email_domain":
        email = h.get("email") or ""
        return email.rpartition("@")[2] or None
    if name == "status":
        return h.get("status") or ("new" if facts.type == "lead" else None)
    if name == "source":
        return h.get("source") or "web_form"
    if name == "latest_source":
        return h.get("latest_source") or h.get("source") or "web_form"
    if name == "consent_status":
        return consent_status(h.get("consent"))
    if name in NUMBER_FIELDS:
        return float(h.get(name) or 0)
    if name in DATE_FIELDS:
        value = h.get(name)
        return float(value) if value else None
    return h.get(name) or None


def _text(a: Any) -> Any:
    return a.lower() if isinstance(a, str) else a


def compare(op: str, have: Any, want: Any, now: float, kind: str) -> tuple[bool, float | None]:
    """``have op want``; with a relative date ``want``, also when the answer flips by time."""
    if op == "exists":
        return (have is not None) == want, None
    if have is None:
        return op in ("ne", "not_in"), None
    flip: float | None = None
    if kind == "date":
        def resolve(v: Any) -> float:
            nonlocal flip
            back = duration_seconds(v) if isinstance(v, str) and v.startswith("-") else None
            if back is None:
                return absolute_date(v) or 0.0
            # in whole seconds, ``have op (now - back)`` can change only at have + back and
            # one second later
            for moment in (have + back, have + back + 1):
                if moment > now and (flip is None or moment < flip):
                    flip = moment
            return now - back
        want = [resolve(v) for v in want] if isinstance(want, list) else resolve(want)
    elif kind == "text":
        have = _text(have)
        want = [_text(v) for v in want] if isinstance(want, list) else _text(want)
    result = {
        "eq": lambda: have == want, "ne": lambda: have != want,
        "in": lambda: have in want, "not_in": lambda: have not in want,
        "contains": lambda: want in have, "starts_with": lambda: have.startswith(want),
        "ends_with": lambda: have.endswith(want),
        "gt": lambda: have > want, "gte": lambda: have >= want,
        "lt": lambda: have < want, "lte": lambda: have <= want,
    }[op]()
    return bool(result), flip


def _show(value: Any, name: str) -> str:
    if value is None:
        return "no value"
    if name in DATE_FIELDS:
        return iso(value) or ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


class _Evaluator:
    def __init__(self, facts: Facts, now: float, explain: bool) -> None:
        self.facts, self.now, self.explain = facts, now, explain
        self.flip: float | None = None
        self.nodes: list[dict[str, Any]] = []

    def soon(self, moment: float | None) -> None:
        if moment is not None and moment > self.now and (self.flip is None or moment < self.flip):
            self.flip = moment

    def node(self, node: dict[str, Any], path: str) -> bool:
        slot = len(self.nodes)
        if self.explain:
            self.nodes.append({})
        value, because = self.decide(node, path)
        if self.explain:
            self.nodes[slot] = {"path": path, "value": value, "because": because}
        return value

    def decide(self, node: dict[str, Any], path: str) -> tuple[bool, str]:
        if "field" in node:
            return self.condition(node)
        (kind, body), = node.items()
        if kind in ("all", "any"):
            values = [self.node(child, f"{path}.{kind}.{i}") for i, child in enumerate(body)]
            if kind == "all":
                failed = [str(i) for i, v in enumerate(values) if not v]
                return not failed, ("every rule holds" if not failed
                                    else f"rule {', '.join(failed)} does not hold")
            held = [str(i) for i, v in enumerate(values) if v]
            return bool(held), (f"rule {', '.join(held)} holds" if held else "no rule holds")
        if kind == "not":
            inner = self.node(body, f"{path}.not")
            return not inner, f"the rule inside is {str(inner).lower()}"
        return getattr(self, kind)(body)

    def condition(self, node: dict[str, Any]) -> tuple[bool, str]:
        name, op, want = node["field"], node["op"], node["value"]
        if name == "score":
            return self.score(op, want)
        have = field_value(self.facts, name)
        kind = "number" if name in NUMBER_FIELDS else "date" if name in DATE_FIELDS else "text"
        value, flip = compare(op, have, want, self.now, kind)
        self.soon(flip)
        return value, f"{name} is {_show(have, name)}"

    def score(self, op: str, want: Any) -> tuple[bool, str]:
        """The current, decayed score (rounded, as the lead's ``score`` shows it); with no new
        points it only falls, so the answer flips when it falls through a boundary of
        ``want``: the moment is computable (``score_flip``)."""
        decay = self.facts.decay
        scaled = float(self.facts.h.get("score") or 0)
        have = decay.rounded(scaled, self.now)
        value, _ = compare(op, float(have), want, self.now, "number")
        if op != "exists":
            self.soon(score_flip(decay, scaled, self.now, op, want))
        if decay.half_life > 0 and have:
            exact = decay.current(scaled, self.now)
            return value, (f"score is {have} ({exact:.2f} after decay, half-life "
                           f"{decay.half_life / 86400:g} days)")
        return value, f"score is {have}"

    def window(self, within: str | None) -> float:
        return self.now - duration_seconds(within) if within else float("-inf")

    def newest(self, times: list[int], within: str | None) -> None:
        """A match inside a window stops counting when the newest one leaves it."""
        if within and times:
            self.soon(max(times) + duration_seconds(within) + 1)

    def registered(self, body: dict[str, Any]) -> tuple[bool, str]:
        since = self.window(body.get("within"))
        found = [(kind, asset, at) for kind, asset, at in self.facts.registrations
                 if body.get("kind", kind) == kind
                 and _text(body.get("asset", asset)) == _text(asset) and at >= since]
        self.newest([at for *_, at in found], body.get("within"))
        if not found:
            return False, "no matching registration"
        kind, asset, at = max(found, key=lambda f: f[2])
        return True, f"registered for {kind} {asset} at {iso(at)}"

    def _engaged(self, body: dict[str, Any], kind: str) -> tuple[bool, str]:
        since = self.window(body.get("within"))
        campaign = body.get("campaign_id")
        needle = _text(body.get("url_contains"))
        found = []
        for event in self.facts.events:
            if event.kind != kind or event.at < since:
                continue
            if campaign is not None and event.campaign_id != campaign:
                continue
            if needle is not None:
                url = self.facts.links.get((event.campaign_id, event.link_id)) or ""
                if needle not in url.lower():
                    continue
            found.append(event)
        self.newest([e.at for e in found], body.get("within"))
        word = "opened" if kind == "open" else "clicked"
        if not found:
            return False, f"never {word} a matching campaign"
        event = max(found, key=lambda e: e.at)
        return True, f"{word} campaign {event.campaign_id} at {iso(event.at)}"

    def opened(self, body: dict[str, Any]) -> tuple[bool, str]:
        return self._engaged(body, "open")

    def clicked(self, body: dict[str, Any]) -> tuple[bool, str]:
        return self._engaged(body, "click")

    def sent(self, body: dict[str, Any]) -> tuple[bool, str]:
        at = self.facts.sent.get(body["campaign_id"])
        since = self.window(body.get("within"))
        if at is None or at < since:
            return False, f"campaign {body['campaign_id']} was not sent to them in the window"
        self.newest([at], body.get("within"))
        return True, f"sent campaign {body['campaign_id']} at {iso(at)}"

    def in_list(self, list_id: str) -> tuple[bool, str]:
        member = list_id in self.facts.lists
        return member, f"{'on' if member else 'not on'} list {list_id}"

    def in_segment(self, segment_id: str) -> tuple[bool, str]:
        since = self.facts.segments.get(segment_id)
        if since is None:
            return False, f"not in segment {segment_id}"
        return True, f"in segment {segment_id} since {iso(since)}"

    def account(self, body: dict[str, Any]) -> tuple[bool, str]:
        account = self.facts.account
        if "has_open_opportunity" in body:
            has = account is not None and self.facts.account_has_open_opportunity
            value = has == body["has_open_opportunity"]
            if account is None:
                return value, "no account"
            name = account.get("name") or account.get("id") or "the account"
            return value, (f"account {name} ({account.get('id', '')}) "
                           f"{'has an' if has else 'has no'} open opportunity")
        have = (account or {}).get(body["field"]) or None
        value, _ = compare(body["op"], have, body["value"], self.now, "text")
        if account is None:
            return value, "no account"
        return value, f"account {body['field']} is {_show(have, body['field'])}"


def score_flip(decay: Any, scaled: float, now: float, op: str, want: Any) -> float | None:
    """The first whole second after ``now`` at which ``score op want`` changes by decay
    alone: the rounded score leaves k when the current value falls below k - 0.5
    (``decay.crossing``), and only the k whose leaving changes the answer count; the second
    is found from there with the same arithmetic the evaluation uses, so it is exact."""
    if decay.half_life <= 0 or scaled <= 0:
        return None
    have = decay.rounded(scaled, now)
    best: float | None = None
    for v in want if isinstance(want, list) else [want]:
        for k in {math.floor(v), math.floor(v) + 1, math.ceil(v), math.ceil(v) + 1}:
            if k < 1 or k > have or (compare(op, float(k), want, now, "number")[0]
                                     == compare(op, float(k - 1), want, now, "number")[0]):
                continue
            moment = decay.crossing(scaled, k - 0.5)
            if moment is None:
                continue
            second = max(int(now) + 1, math.floor(moment))
            for _ in range(100):  # a step or two: ``moment`` is within a second of it
                if second > int(now) + 1 and decay.rounded(scaled, second - 1) < k:
                    second -= 1
                elif decay.rounded(scaled, second) >= k:
                    second += 1
                else:
                    break
            if best is None or second < best:
                best = second
    return best


def evaluate(rules: dict[str, Any], facts: Facts, now: float, *, explain: bool = False) -> Verdict:
    """The value of a checked tree for one person at ``now`` (whole seconds: stored times are
    whole seconds, so a value changes only on a second and ``flip`` is exact)."""
    evaluator = _Evaluator(facts, float(int(now)), explain)
    value = evaluator.node(rules, "rules")
    return Verdict(value, evaluator.flip, evaluator.nodes)
