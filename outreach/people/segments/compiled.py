"""A saved segment's rules compiled once into Python closures, for the hot paths that settle
many people (``membership``): the same value and the same ``flip`` as ``evaluate.evaluate``
(which stays the reference, and the only one that explains), without walking the dict tree,
building explanations or dispatching by name for every person.

Every child of a group is evaluated, as the interpreter does, so that ``flip`` (the earliest
moment any node can change by time alone) is the interpreter's exactly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from outreach.people.segments.evaluate import _text, compare, field_value, score_flip
from outreach.people.segments.facts import Facts
from outreach.people.segments.rules import DATE_FIELDS, NUMBER_FIELDS, duration_seconds

# a node: (facts, now, flip holder) -> value; the holder is a one-element list (the flip)
Node = Callable[[Facts, float, list[Any]], bool]
Compiled = Callable[[Facts, float], tuple[bool, float | None]]

# fields read straight from the hash (``field_value``'s last case)
_SPECIAL = {"email_domain", "status", "source", "latest_source", "consent_status",
            *NUMBER_FIELDS, *DATE_FIELDS}
_CACHE: dict[str, Compiled] = {}
_CACHE_MAX = 2000


def _soon(acc: list[Any], moment: float | None, now: float) -> None:
    if moment is not None and moment > now and (acc[0] is None or moment < acc[0]):
        acc[0] = moment


def compiled(rules_text: str, rules: dict[str, Any]) -> Compiled:
    """The compiled tree of ``rules`` (its JSON text ``rules_text`` is the cache key: a saved
    segment's rules are compiled once per process)."""
    fn = _CACHE.get(rules_text)
    if fn is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        fn = _CACHE[rules_text] = compile_rules(rules)
    return fn


def compile_rules(rules: dict[str, Any]) -> Compiled:
    """``(facts, now) -> (value, flip)`` of a checked tree, as ``evaluate.evaluate`` gives
    them (``now`` is taken in whole seconds, as there)."""
    root = _node(rules)

    def run(facts: Facts, now: float) -> tuple[bool, float | None]:
        acc: list[Any] = [None]
        value = root(facts, float(int(now)), acc)
        return value, acc[0]

    return run


def _node(node: dict[str, Any]) -> Node:
    if "field" in node:
        return _condition(node["field"], node["op"], node["value"])
    (kind, body), = node.items()
    if kind in ("all", "any"):
        children = tuple(_node(child) for child in body)
        if kind == "all":
            return lambda facts, now, acc: all([c(facts, now, acc) for c in children])
        return lambda facts, now, acc: any([c(facts, now, acc) for c in children])
    if kind == "not":
        inner = _node(body)
        return lambda facts, now, acc: not inner(facts, now, acc)
    return _LEAVES[kind](body)


def _condition(name: str, op: str, want: Any) -> Node:
    if name == "score":
        return _score(op, want)
    if name in DATE_FIELDS:
        def dated(facts: Facts, now: float, acc: list[Any]) -> bool:
            value, flip = compare(op, field_value(facts, name), want, now, "date")
            _soon(acc, flip, now)
            return value
        return dated
    if name in _SPECIAL:
        def get(facts: Facts) -> Any:
            return field_value(facts, name)
    else:
        def get(facts: Facts) -> Any:
            return facts.h.get(name) or None
    return _text_test(get, op, want)


def text_test(op: str, want: Any) -> Callable[[Any], bool]:
    """``compare(op, have, want, now, "text")``'s value as a function of ``have`` (None: no
    value), with ``want`` lowered once: time never changes a text comparison."""
    if op == "exists":
        return lambda have: (have is not None) == want
    low = [_text(v) for v in want] if isinstance(want, list) else _text(want)
    test: Callable[[Any], bool] = {
        "eq": lambda have: have == low, "ne": lambda have: have != low,
        "in": lambda have: have in low, "not_in": lambda have: have not in low,
        "contains": lambda have: low in have, "starts_with": lambda have: have.startswith(low),
        "ends_with": lambda have: have.endswith(low),
        "gt": lambda have: have > low, "gte": lambda have: have >= low,
        "lt": lambda have: have < low, "lte": lambda have: have <= low,
    }[op]
    missing = op in ("ne", "not_in")
    return lambda have: missing if have is None else bool(test(_text(have)))


def _text_test(get: Callable[[Facts], Any], op: str, want: Any) -> Node:
    """``compare(op, get(facts), want, now, "text")`` as a node."""
    test = text_test(op, want)
    return lambda facts, now, acc: test(get(facts))


def _score(op: str, want: Any) -> Node:
    def score(facts: Facts, now: float, acc: list[Any]) -> bool:
        decay = facts.decay
        scaled = float(facts.h.get("score") or 0)
        value, _ = compare(op, float(decay.rounded(scaled, now)), want, now, "number")
        if op != "exists":
            _soon(acc, score_flip(decay, scaled, now, op, want), now)
        return value
    return score


def _window(within: str | None) -> int | None:
    return duration_seconds(within) if within else None


def _registered(body: dict[str, Any]) -> Node:
    back = _window(body.get("within"))
    want_kind = body.get("kind")
    want_asset = _text(body["asset"]) if "asset" in body else None

    def registered(facts: Facts, now: float, acc: list[Any]) -> bool:
        since = now - back if back is not None else float("-inf")
        found = [at for kind, asset, at in facts.registrations
                 if (want_kind is None or want_kind == kind)
                 and (want_asset is None or want_asset == _text(asset)) and at >= since]
        if back is not None and found:
            _soon(acc, max(found) + back + 1, now)
        return bool(found)
    return registered


def _engaged(kind: str) -> Callable[[dict[str, Any]], Node]:
    def build(body: dict[str, Any]) -> Node:
        back = _window(body.get("within"))
        campaign = body.get("campaign_id")
        needle = _text(body.get("url_contains"))

        def engaged(facts: Facts, now: float, acc: list[Any]) -> bool:
            since = now - back if back is not None else float("-inf")
            found = []
            for event in facts.events:
                if event.kind != kind or event.at < since:
                    continue
                if campaign is not None and event.campaign_id != campaign:
                    continue
                if needle is not None:
                    url = facts.links.get((event.campaign_id, event.link_id)) or ""
                    if needle not in url.lower():
                        continue
                found.append(event.at)
            if back is not None and found:
                _soon(acc, max(found) + back + 1, now)
            return bool(found)
        return engaged
    return build


def _sent(body: dict[str, Any]) -> Node:
    back = _window(body.get("within"))
    campaign = body["campaign_id"]

    def sent(facts: Facts, now: float, acc: list[Any]) -> bool:
        at = facts.sent.get(campaign)
        if at is None or (back is not None and at < now - back):
            return False
        if back is not None:
            _soon(acc, at + back + 1, now)
        return True
    return sent


def _in_list(list_id: str) -> Node:
    return lambda facts, now, acc: list_id in facts.lists


def _in_segment(segment_id: str) -> Node:
    return lambda facts, now, acc: facts.segments.get(segment_id) is not None


def _account(body: dict[str, Any]) -> Node:
    if "has_open_opportunity" in body:
        wanted = body["has_open_opportunity"]
        return lambda facts, now, acc: (
            (facts.account is not None and facts.account_has_open_opportunity) == wanted)
    name, op, want = body["field"], body["op"], body["value"]
    return _text_test(lambda facts: (facts.account or {}).get(name) or None, op, want)


_LEAVES: dict[str, Callable[[Any], Node]] = {
    "registered": _registered, "opened": _engaged("open"), "clicked": _engaged("click"),
    "sent": _sent, "in_list": _in_list, "in_segment": _in_segment, "account": _account,
}
