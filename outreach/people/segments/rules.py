"""A segment's rules: a tree of conditions, checked before it is saved or previewed.

Rules are user-supplied programs, so a tree is bounded (``MAX_NODES`` nodes, ``MAX_DEPTH``
levels, ``MAX_VALUES`` values in an ``in``) and every error names the path of the bad node
(``rules.all.2.op``; the root is ``rules``, a ``not``'s child ``rules.not``). ``reads`` says
what a tree depends on, so that a change re-evaluates only the segments that read it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from outreach.errors import Invalid
from outreach.vocabulary import KINDS, PROFILE_FIELDS

MAX_NODES = 100
MAX_DEPTH = 10
MAX_VALUES = 200
MAX_TEXT = 500

TEXT_FIELDS = (*PROFILE_FIELDS, "timezone", "email", "email_domain", "status", "source",
               "latest_source", "consent_status", "owner")
NUMBER_FIELDS = ("score",)
DATE_FIELDS = ("created_at", "updated_at")
FIELDS = (*TEXT_FIELDS, *NUMBER_FIELDS, *DATE_FIELDS)
OPS = ("eq", "ne", "in", "not_in", "contains", "starts_with", "ends_with", "exists", "gt", "gte",
       "lt", "lte")
TEXT_ONLY_OPS = ("contains", "starts_with", "ends_with")
ORDER_OPS = ("gt", "gte", "lt", "lte")
ENGAGEMENT = ("sent", "opened", "clicked")
ACCOUNT_FIELDS = ("name", "domain")
ACCOUNT_OPEN = "account:has_open_opportunity"  # what an account's open opportunities touch
# the stored hash field each rule field is read from (what a change to that field touches)
STORED_AS = {"email_domain": "email", "consent_status": "consent", "source": "source",
             "latest_source": "latest_source"}
MEMBER_TYPES = ("lead", "contact", "any")

_DURATION = re.compile(r"^-P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def duration_seconds(text: str) -> int | None:
    """``-P30D`` (a negative ISO 8601 duration back from now) -> 2592000; anything else None.
    ``P30D`` without the sign is accepted for ``within`` (a window is always back from now)."""
    if not isinstance(text, str):
        return None
    match = _DURATION.match(text if text.startswith("-") else "-" + text)
    if not match or not any(match.groups()) or text.endswith(("P", "T")):
        return None
    weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds


def absolute_date(text: str) -> float | None:
    """An ISO 8601 date or date-time (UTC when no offset is given) as epoch seconds."""
    if not isinstance(text, str) or text.startswith("-"):
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


class _Checker:
    def __init__(self) -> None:
        self.nodes = 0

    def fail(self, path: str, message: str) -> None:
        raise Invalid("Validation failed.", {path: [message]})

    def node(self, node: Any, path: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.fail(path, f"A segment's rules hold at most {MAX_NODES} conditions and groups.")
        if depth > MAX_DEPTH:
            self.fail(path, f"Groups nest at most {MAX_DEPTH} deep.")
        if not isinstance(node, dict) or len(node) == 0:
            self.fail(path, "A rule is an object: a group (all, any, not) or one condition.")
        if "field" in node:
            self.condition(node, path)
            return
        if len(node) != 1:
            self.fail(path, "A rule has exactly one of all, any, not, field, registered, sent, "
                            "opened, clicked, in_list, in_segment, account.")
        (kind, body), = node.items()
        here = f"{path}.{kind}"
        if kind in ("all", "any"):
            if not isinstance(body, list) or not body:
                self.fail(here, "Give a non-empty list of rules.")
            for i, child in enumerate(body):
                self.node(child, f"{here}.{i}", depth + 1)
        elif kind == "not":
            self.node(body, here, depth + 1)
        elif kind == "registered":
            self.options(body, here, {"asset": self.text, "kind": self.kind, "within": self.window})
        elif kind in ENGAGEMENT:
            allowed = {"campaign_id": self.text, "within": self.window}
            if kind == "clicked":
                allowed["url_contains"] = self.text
            self.options(body, here, allowed)
            if kind == "sent" and "campaign_id" not in body:
                self.fail(f"{here}.campaign_id", "Give the campaign whose sends count.")
        elif kind in ("in_list", "in_segment"):
            self.text(body, here)
        elif kind == "account":
            self.account(body, here)
        else:
            self.fail(here, "Unknown rule.")

    def options(self, body: Any, path: str, allowed: dict[str, Any]) -> None:
        if not isinstance(body, dict):
            self.fail(path, "Give an object.")
        for name, value in body.items():
            if name not in allowed:
                self.fail(f"{path}.{name}", f"Unknown option; one of {', '.join(allowed)}.")
            allowed[name](value, f"{path}.{name}")

    def text(self, value: Any, path: str) -> None:
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
            self.fail(path, f"Give a non-empty text of at most {MAX_TEXT} characters.")

    def kind(self, value: Any, path: str) -> None:
        if value not in KINDS:
            self.fail(path, f"One of {', '.join(KINDS)}.")

    def window(self, value: Any, path: str) -> None:
        if duration_seconds(value) is None:
            self.fail(path, "An ISO 8601 duration back from now, e.g. -P30D.")

    def account(self, body: Any, path: str) -> None:
        if not isinstance(body, dict):
            self.fail(path, "Give an object.")
        if "has_open_opportunity" in body:
            extra = set(body) - {"has_open_opportunity"}
            if extra:
                self.fail(f"{path}.{sorted(extra)[0]}",
                          "has_open_opportunity stands alone (or use field, op, value).")
            if not isinstance(body["has_open_opportunity"], bool):
                self.fail(f"{path}.has_open_opportunity", "true or false.")
            return
        if body.get("field") not in ACCOUNT_FIELDS:
            self.fail(f"{path}.field", f"One of {', '.join(ACCOUNT_FIELDS)}.")
        extra = set(body) - {"field", "op", "value"}
        if extra:
            self.fail(f"{path}.{sorted(extra)[0]}", "Unknown option.")
        self.comparison(body, path, "text")

    def condition(self, node: dict[str, Any], path: str) -> None:
        extra = set(node) - {"field", "op", "value"}
        if extra:
            self.fail(f"{path}.{sorted(extra)[0]}", "Unknown key; a condition has field, op, value.")
        if node["field"] not in FIELDS:
            self.fail(f"{path}.field", "Unknown field.")
        field = node["field"]
        self.comparison(node, path, "number" if field in NUMBER_FIELDS else
                        "date" if field in DATE_FIELDS else "text")

    def comparison(self, node: dict[str, Any], path: str, kind: str) -> None:
        op = node.get("op")
        if op not in OPS:
            self.fail(f"{path}.op", f"One of {', '.join(OPS)}.")
        if "value" not in node:
            self.fail(f"{path}.value", "Missing value.")
        value, here = node["value"], f"{path}.value"
        if op == "exists":
            if not isinstance(value, bool):
                self.fail(here, "true or false.")
            return
        if op in TEXT_ONLY_OPS and kind != "text":
            self.fail(f"{path}.op", "Only text fields take this operator.")
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value or len(value) > MAX_VALUES:
                self.fail(here, f"Give a list of 1 to {MAX_VALUES} values.")
            for i, item in enumerate(value):
                self.scalar(item, f"{here}.{i}", kind)
            return
        self.scalar(value, here, kind)

    def scalar(self, value: Any, path: str, kind: str) -> None:
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(path, "A number.")
        elif kind == "date":
            if duration_seconds(value) is None and absolute_date(value) is None:
                self.fail(path, "An ISO 8601 date, or a negative duration back from now (-P30D).")
        else:
            self.text(value, path)


def check(rules: Any, path: str = "rules") -> None:
    """Raise ``Invalid`` naming the path of the first bad node (or the bound exceeded)."""
    _Checker().node(rules, path, 1)


def walk(node: dict[str, Any], path: str = "rules") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every node of a checked tree with its path, parents first."""
    yield path, node
    if "field" in node:
        return
    (kind, body), = node.items()
    if kind in ("all", "any"):
        for i, child in enumerate(body):
            yield from walk(child, f"{path}.{kind}.{i}")
    elif kind == "not":
        yield from walk(body, f"{path}.not")


def reads(rules: dict[str, Any]) -> set[str]:
    """What a checked tree depends on: ``field:<stored field>``, ``event:<open|click>``,
    ``event:sent:<campaign id>``,
    ``list:<id>``, ``segment:<id>``, ``account`` (``account:has_open_opportunity`` too when
    the tree asks whether the account has an open opportunity)."""
    out: set[str] = set()
    for _, node in walk(rules):
        if "field" in node:
            field = node["field"]
            out.add("field:" + STORED_AS.get(field, field))
            continue
        (kind, body), = node.items()
        if kind == "registered":
            out.add("field:regs")
        elif kind == "sent":
            out.add(f"event:sent:{body['campaign_id']}")
        elif kind == "opened":
            out.add("event:open")
        elif kind == "clicked":
            out.update(("event:click", "event:open"))
        elif kind == "in_list":
            out.add(f"list:{body}")
        elif kind == "in_segment":
            out.add(f"segment:{body}")
        elif kind == "account":
            out.update(("account", "field:account_id", "field:company", "field:email"))
            if "has_open_opportunity" in body:
                out.add(ACCOUNT_OPEN)
    return out


def named_segments(rules: dict[str, Any]) -> set[str]:
    """The segments an ``in_segment`` of this tree names."""
    return {node["in_segment"] for _, node in walk(rules) if "in_segment" in node}
