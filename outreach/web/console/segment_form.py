"""The segment rule builder's form: a rule tree as flat form fields and back.

Every node of the tree is a row of fields named ``<what>:<node id>``; a node id is its
place in the tree (``r`` the root, ``r.0`` its first child, ``r.0.1`` ...), and the ids come
in ``n`` in tree order. The same POST serves the live count (htmx), the no-JS "Count" button
and the structural buttons (add a condition or a group, remove a node): the server parses
the form, applies the action, numbers the nodes afresh and renders the builder again. A 422
path of the API (``rules.all.2.op``) is mapped back to the node it names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from outreach.people.segments import rules as rule_tree

GROUPS = ("all", "any", "not")
CONDITIONS = ("field", "registered", "opened", "clicked", "sent", "in_list", "in_segment",
              "account")
KIND_LABELS = {
    "all": "All of", "any": "Any of", "not": "Not",
    "field": "Profile field", "registered": "Registered for", "opened": "Opened a campaign",
    "clicked": "Clicked in a campaign", "sent": "Was sent a campaign", "in_list": "On the list",
    "in_segment": "In the segment",
    "account": "Their account",
}
OP_LABELS = {
    "eq": "is", "ne": "is not", "in": "is one of", "not_in": "is none of",
    "contains": "contains", "starts_with": "starts with", "ends_with": "ends with",
    "exists": "is set", "gt": "greater / later than", "gte": "at least / from",
    "lt": "less / earlier than", "lte": "at most / until",
}
INPUTS = ("field", "op", "value", "asset", "rkind", "within", "campaign", "url", "list",
          "segment", "afield")
MAX_FORM_NODES = rule_tree.MAX_NODES


@dataclass
class Node:
    kind: str = "field"
    values: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    id: str = "r"
    path: str = "rules"  # the API path (as in a 422's fields)
    errors: list[str] = field(default_factory=list)

    @property
    def group(self) -> bool:
        return self.kind in GROUPS

    def get(self, name: str) -> str:
        return self.values.get(name, "")


def empty() -> Node:
    return number(Node("all", children=[Node("field", {"field": "country", "op": "eq"})]))


# ---------------------------------------------------------------- form -> nodes

def parse(form: Any) -> Node:
    """The tree the posted form describes (``form`` a MultiDict)."""
    ids = [i for i in form.getlist("n") if i][:MAX_FORM_NODES * 2]
    nodes: dict[str, Node] = {}
    for node_id in ids:
        kind = form.get(f"kind:{node_id}", "field")
        if kind not in GROUPS and kind not in CONDITIONS:
            kind = "field"
        values = {name: form.get(f"{name}:{node_id}", "").strip()[:rule_tree.MAX_TEXT * 4]
                  for name in INPUTS if form.get(f"{name}:{node_id}") is not None}
        node = Node(kind, values, id=node_id)
        parent = node_id.rpartition(".")[0]
        if parent in nodes and nodes[parent].group:
            nodes[parent].children.append(node)
        elif node_id != "r":
            continue  # an orphan (its group was changed into a condition): dropped
        nodes[node_id] = node
    root = nodes.get("r") or Node("all")
    return number(root)


def number(root: Node) -> Node:
    """Give every node its id and API path afresh (children of ``not``: only the first)."""
    def visit(node: Node, node_id: str, path: str) -> None:
        node.id, node.path = node_id, path
        if node.kind == "not":
            node.children = node.children[:1]
        elif not node.group:
            node.children = []
        for i, child in enumerate(node.children):
            visit(child, f"{node_id}.{i}",
                  f"{path}.not" if node.kind == "not" else f"{path}.{node.kind}.{i}")

    visit(root, "r", "rules")
    return root


def find(root: Node, node_id: str) -> Node | None:
    if root.id == node_id:
        return root
    for child in root.children:
        found = find(child, node_id)
        if found:
            return found
    return None


def count_nodes(root: Node) -> int:
    return 1 + sum(count_nodes(c) for c in root.children)


def apply_action(root: Node, action: str) -> Node:
    """``add:<id>`` a condition, ``group:<id>`` a group, ``remove:<id>`` a node."""
    verb, _, node_id = action.partition(":")
    target = find(root, node_id)
    if target is None:
        return root
    if verb in ("add", "group") and target.group and count_nodes(root) < MAX_FORM_NODES:
        if target.kind != "not" or not target.children:
            target.children.append(
                Node("field", {"field": "country", "op": "eq"}) if verb == "add"
                else Node("any", children=[Node("field", {"field": "country", "op": "eq"})]))
    elif verb == "remove" and node_id != "r":
        parent = find(root, node_id.rpartition(".")[0])
        if parent:
            parent.children = [c for c in parent.children if c.id != node_id]
    return number(root)


# ---------------------------------------------------------------- nodes -> rules

def _value(node: Node, kind: str) -> Any:
    op, raw = node.get("op"), node.get("value")
    if op == "exists":
        return raw.lower() not in ("no", "false", "0", "")
    if op in ("in", "not_in"):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if kind == "number":
        try:
            number_ = float(raw)
        except ValueError:
            return raw
        return int(number_) if number_.is_integer() else number_
    return raw


def _options(node: Node, names: dict[str, str]) -> dict[str, Any]:
    return {api: node.get(name) for name, api in names.items() if node.get(name)}


def to_rules(node: Node) -> dict[str, Any]:
    """The API rule tree (unchecked: ``rules.check`` names the bad node's path)."""
    kind = node.kind
    if kind in ("all", "any"):
        return {kind: [to_rules(c) for c in node.children]}
    if kind == "not":
        return {"not": to_rules(node.children[0]) if node.children else {}}
    if kind == "field":
        name = node.get("field")
        typed = "number" if name in rule_tree.NUMBER_FIELDS else "text"
        return {"field": name, "op": node.get("op"), "value": _value(node, typed)}
    if kind == "registered":
        return {"registered": _options(node, {"asset": "asset", "rkind": "kind",
                                              "within": "within"})}
    if kind == "opened":
        return {"opened": _options(node, {"campaign": "campaign_id", "within": "within"})}
    if kind == "clicked":
        return {"clicked": _options(node, {"campaign": "campaign_id", "url": "url_contains",
                                           "within": "within"})}
    if kind == "sent":
        return {"sent": _options(node, {"campaign": "campaign_id", "within": "within"})}
    if kind == "in_list":
        return {"in_list": node.get("list")}
    if kind == "in_segment":
        return {"in_segment": node.get("segment")}
    if node.get("afield") == "has_open_opportunity":
        return {"account": {"has_open_opportunity": _value(Node(values={
            "op": "exists", "value": node.get("value")}), "text")}}
    return {"account": {"field": node.get("afield"), "op": node.get("op"),
                        "value": _value(node, "text")}}


def from_rules(rules: dict[str, Any]) -> Node:
    """The form tree of a saved rule tree."""
    def visit(rule: dict[str, Any]) -> Node:
        if "field" in rule:
            return Node("field", {"field": rule["field"], "op": rule["op"],
                                  "value": _show(rule["value"])})
        (kind, body), = rule.items()
        if kind in ("all", "any"):
            return Node(kind, children=[visit(c) for c in body])
        if kind == "not":
            return Node("not", children=[visit(body)])
        if kind == "registered":
            return Node(kind, {"asset": body.get("asset", ""), "rkind": body.get("kind", ""),
                               "within": body.get("within", "")})
        if kind in ("opened", "clicked", "sent"):
            return Node(kind, {"campaign": body.get("campaign_id", ""), "url": body.get("url_contains", ""),
                         "within": body.get("within", "")})
        if kind == "in_list":
            return Node(kind, {"list": body})
        if kind == "in_segment":
            return Node(kind, {"segment": body})
        if "has_open_opportunity" in body:
            return Node("account", {"afield": "has_open_opportunity",
                                    "value": _show(body["has_open_opportunity"])})
        return Node("account", {"afield": body.get("field", ""), "op": body.get("op", ""),
                                "value": _show(body.get("value", ""))})

    root = visit(rules)
    if not root.group:  # the builder always starts with a group
        root = Node("all", children=[root])
    return number(root)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# ---------------------------------------------------------------- errors -> nodes

def attach_errors(root: Node, fields: dict[str, Any]) -> list[str]:
    """Put each error of a 422's ``fields`` (paths under ``rules``) on the node its path
    names (the deepest node whose path starts it); returns the errors no node took."""
    nodes: list[Node] = []

    def collect(node: Node) -> None:
        nodes.append(node)
        for child in node.children:
            collect(child)

    collect(root)
    left = []
    for path, messages in _flatten(fields):
        if not path.startswith("rules"):
            left.append(f"{path}: {' '.join(messages)}")
            continue
        owner = max((n for n in nodes if path == n.path or path.startswith(n.path + ".")),
                    key=lambda n: len(n.path), default=None)
        if owner is None:
            left.append(" ".join(messages))
            continue
        what = path[len(owner.path) + 1:]
        label = {"op": "Operator", "value": "Value", "field": "Field", "in_list": "List",
                 "in_segment": "Segment"}.get(what.split(".")[-1] if what else "", "")
        owner.errors.append(f"{label}: {' '.join(messages)}" if label else " ".join(messages))
    return left


def _flatten(fields: dict[str, Any], prefix: str = "") -> list[tuple[str, list[str]]]:
    out = []
    for key, value in fields.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.extend(_flatten(value, path))
        else:
            out.append((path, [str(v) for v in value] if isinstance(value, list) else [str(value)]))
    return out
