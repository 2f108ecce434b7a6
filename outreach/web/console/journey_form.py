"""The journey editor without JSON: a journey's definition as flat form fields and back, the
editor's add / remove / move actions, what the selects offer, and the words and layout the
journey page's diagram uses.

The form names each step's fields ``steps-<i>-<field>``; ``step_count`` says how many. A wait
is a number and a unit (or a local time), a branch condition an open or click of an earlier
send within a window, or membership of a saved segment (``{"in_segment": id}``); a rule made
through the API that the form cannot show is kept as it was (a hidden JSON field).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from outreach.campaigns import templates
from outreach.errors import NotFound
from outreach.journeys import definition
from outreach.people import assets, lists
from outreach.people.segments import catalog as segments
from outreach.people.segments import rules as segment_rules
from outreach.store import Store

UNITS = {"minutes": 60, "hours": 3600, "days": 86400}
_ISO = {"minutes": "PT{}M", "hours": "PT{}H", "days": "P{}D"}
STEP_NAMES = {"send": "Send an email", "wait": "Wait", "branch": "Branch (if / else)",
              "add_to_list": "Add to a list", "remove_from_list": "Remove from a list",
              "task": "Task for the owner", "qualify": "Qualify the lead", "exit": "Exit"}
TRIGGER_NAMES = {"manual": "Manual (enrolled by hand or through the API)",
                 "registration": "Registers for an asset", "segment_entered": "Enters a segment",
                 "qualified": "Is qualified"}
STEP_FIELDS = ("id", "type", "next", "template_id", "from_email", "wait_mode", "wait_amount",
               "wait_unit", "until", "cond", "cond_step", "within_amount", "within_unit",
               "segment_id", "rule", "then", "else", "list_id", "subject", "due_amount", "due_unit")
CHOICES = 200


# ---------------------------------------------------------------- durations

def to_iso(amount: str, unit: str) -> str | None:
    """``("3", "days")`` -> ``"P3D"``; None when the number is not a whole number from 1 or
    the span is out of a journey's range (1 s .. 90 days)."""
    if unit not in UNITS or not amount.strip().isdigit():
        return None
    n = int(amount)
    if not 1 <= n * UNITS[unit] <= definition.MAX_WAIT:
        return None
    return _ISO[unit].format(n)


def from_iso(text: Any) -> tuple[str, str]:
    """An ISO 8601 duration as (amount, unit) in the largest unit that divides it; seconds
    that are not whole minutes are shown as minutes rounded up (the form has no seconds)."""
    seconds = segment_rules.duration_seconds(text) if isinstance(text, str) else None
    if not seconds:
        return "", "days"
    for unit in ("days", "hours", "minutes"):
        if seconds % UNITS[unit] == 0:
            return str(seconds // UNITS[unit]), unit
    return str(-(-seconds // 60)), "minutes"


def human_duration(text: Any) -> str:
    seconds = segment_rules.duration_seconds(text) if isinstance(text, str) else None
    if not seconds:
        return str(text or "")
    for unit in ("days", "hours", "minutes"):
        if seconds % UNITS[unit] == 0:
            n = seconds // UNITS[unit]
            return f"{n} {unit[:-1] if n == 1 else unit}"
    return f"{seconds} s"


# ---------------------------------------------------------------- definition <-> form

def blank_step(kind: str, steps: list[dict[str, str]], choices: dict[str, Any]) -> dict[str, str]:
    """A new step of ``kind`` with a fresh id and useful defaults."""
    used = {s["id"] for s in steps}
    n = len(steps) + 1
    while f"{kind.replace('_', '-')}-{n}" in used:
        n += 1
    step = dict.fromkeys(STEP_FIELDS, "")
    step.update(id=f"{kind.replace('_', '-')}-{n}", type=kind)
    if kind == "send" and choices.get("templates"):
        step["template_id"] = choices["templates"][0]["id"]
    if kind == "wait":
        step.update(wait_mode="duration", wait_amount="1", wait_unit="days", until="09:00")
    if kind == "branch":
        sends = [s["id"] for s in steps if s["type"] == "send"]
        step.update(cond="opened", cond_step=sends[-1] if sends else "", within_amount="2",
                    within_unit="days")
    if kind in ("add_to_list", "remove_from_list") and choices.get("lists"):
        step["list_id"] = choices["lists"][0]["id"]
    if kind == "task":
        step.update(subject="Call this lead", due_amount="1", due_unit="days")
    return step


def step_form(step: dict[str, Any]) -> dict[str, str]:
    """One stored step as the editor's fields."""
    out = dict.fromkeys(STEP_FIELDS, "")
    out.update(id=str(step.get("id", "")), type=str(step.get("type", "")),
               next=str(step.get("next") or ""))
    kind = out["type"]
    if kind == "send":
        out.update(template_id=step.get("template_id") or "", from_email=step.get("from_email") or "")
    elif kind == "wait":
        if "until" in step:
            out.update(wait_mode="until", until=str(step["until"]), wait_unit="days")
        else:
            amount, unit = from_iso(step.get("duration"))
            out.update(wait_mode="duration", wait_amount=amount, wait_unit=unit, until="09:00")
    elif kind == "branch":
        cond = step.get("if") or {}
        amount, unit = from_iso(step.get("within")) if step.get("within") else ("", "days")
        out.update(within_amount=amount, within_unit=unit, then=step.get("then") or "",
                   **{"else": step.get("else") or ""})
        if isinstance(cond, dict) and len(cond) == 1 and set(cond) <= {"opened", "clicked"}:
            (what, body), = cond.items()
            out.update(cond=what, cond_step=str((body or {}).get("step") or ""))
        elif isinstance(cond, dict) and set(cond) == {"in_segment"}:
            out.update(cond="segment", segment_id=str(cond["in_segment"]))
        else:
            out.update(cond="rule", rule=json.dumps(cond))
    elif kind in ("add_to_list", "remove_from_list"):
        out["list_id"] = step.get("list_id") or ""
    elif kind == "task":
        amount, unit = from_iso(step.get("due_in")) if step.get("due_in") else ("", "days")
        out.update(subject=step.get("subject") or "", due_amount=amount, due_unit=unit)
    return out


def rule_choice(rule: Any) -> tuple[str, str]:
    """A setting's rule as (segment id, kept JSON): a saved segment, else the rule kept."""
    if not rule:
        return "", ""
    if isinstance(rule, dict) and set(rule) == {"in_segment"}:
        return str(rule["in_segment"]), ""
    return "", json.dumps(rule)


def editor_values(journey: dict[str, Any] | None) -> dict[str, Any]:
    """The editor's values for a stored journey (or a new one)."""
    if journey is None:
        return {"name": "", "trigger_type": "manual", "trigger_asset": "", "trigger_segment": "",
                "steps": [], "re_entry": "never", "quiet_start": "", "quiet_end": "",
                "exit_segment": "", "exit_rule": "", "goal_segment": "", "goal_rule": ""}
    trigger = journey.get("trigger") or {}
    settings = journey.get("settings") or {}
    quiet = settings.get("quiet_hours") or {}
    exit_segment, exit_rule = rule_choice(settings.get("exit_when"))
    goal_segment, goal_rule = rule_choice(settings.get("goal"))
    return {"name": journey.get("name") or "", "trigger_type": trigger.get("type") or "manual",
            "trigger_asset": trigger.get("asset") or "",
            "trigger_segment": trigger.get("segment_id") or "",
            "steps": [step_form(s) for s in journey.get("steps") or []],
            "re_entry": settings.get("re_entry") or "never",
            "quiet_start": quiet.get("start") or "", "quiet_end": quiet.get("end") or "",
            "exit_segment": exit_segment, "exit_rule": exit_rule,
            "goal_segment": goal_segment, "goal_rule": goal_rule}


def posted_values(form: Any) -> dict[str, Any]:
    """The editor's values as posted (a werkzeug MultiDict)."""
    def get(name: str) -> str:
        return str(form.get(name, "")).strip()

    count = get("step_count")
    n = min(int(count), definition.MAX_STEPS + 1) if count.isdigit() else 0
    steps = [{f: get(f"steps-{i}-{f}") for f in STEP_FIELDS} for i in range(n)]
    values = {name: get(name) for name in (
        "name", "trigger_type", "trigger_asset", "trigger_segment", "re_entry", "quiet_start",
        "quiet_end", "exit_segment", "exit_rule", "goal_segment", "goal_rule")}
    values["steps"] = [s for s in steps if s["id"] or s["type"]]
    return values


def apply_action(values: dict[str, Any], form: Any, choices: dict[str, Any]) -> str:
    """Add, remove or move a step as the pressed button says; returns what was done ('' for
    none). A removed step's id is cleared wherever another step named it."""
    steps: list[dict[str, str]] = values["steps"]
    kind = str(form.get("add", ""))
    if kind in definition.STEP_TYPES:
        if len(steps) >= definition.MAX_STEPS:
            return f"At most {definition.MAX_STEPS} steps."
        steps.append(blank_step(kind, steps, choices))
        return f"Added step {len(steps)}: {STEP_NAMES[kind].lower()}."
    for name in ("remove", "up", "down"):
        raw = str(form.get(name, ""))
        if not raw.isdigit() or int(raw) >= len(steps):
            continue
        i = int(raw)
        if name == "remove":
            gone = steps.pop(i)["id"]
            for step in steps:
                for field in ("next", "then", "else", "cond_step"):
                    if step[field] == gone:
                        step[field] = ""
            return f"Removed step {i + 1} ({gone})."
        j = i - 1 if name == "up" else i + 1
        if 0 <= j < len(steps):
            steps[i], steps[j] = steps[j], steps[i]
            return f"Moved step {steps[j]['id']} {name} to position {j + 1}."
    return ""


def _rule(segment_id: str, kept: str) -> Any:
    if segment_id:
        return {"in_segment": segment_id}
    if kept:
        with contextlib.suppress(ValueError):
            return json.loads(kept)
    return None


def definition_of(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The journey the editor's values describe, and what the form itself finds wrong (a
    number that is not one), keyed as the domain keys its errors (``steps.<i>``, ...)."""
    errors: dict[str, list[str]] = {}
    kind = values["trigger_type"]
    trigger: dict[str, Any] = {"type": kind}
    if kind == "registration":
        trigger["asset"] = values["trigger_asset"] or None
    if kind == "segment_entered":
        trigger["segment_id"] = values["trigger_segment"] or None
    steps = []
    for i, form in enumerate(values["steps"]):
        step, problem = _step_of(form)
        if problem:
            errors[f"steps.{i}"] = [f"Step {form['id']!r}: {problem}"]
        steps.append(step)
    settings: dict[str, Any] = {"re_entry": values["re_entry"] or "never"}
    if values["quiet_start"] or values["quiet_end"]:
        if not (values["quiet_start"] and values["quiet_end"]):
            errors["settings.quiet_hours"] = ["Quiet hours need a start and an end."]
        settings["quiet_hours"] = {"start": values["quiet_start"][:5], "end": values["quiet_end"][:5]}
    for name, prefix in (("exit_when", "exit"), ("goal", "goal")):
        rule = _rule(values[f"{prefix}_segment"], values[f"{prefix}_rule"])
        if rule is not None:
            settings[name] = rule
    return {"name": values["name"], "trigger": trigger, "steps": steps, "settings": settings}, errors


def _step_of(form: dict[str, str]) -> tuple[dict[str, Any], str]:
    kind = form["type"]
    step: dict[str, Any] = {"id": form["id"], "type": kind}
    problem = ""
    if form["next"] and kind not in ("branch", "exit"):
        step["next"] = form["next"]
    if kind == "send":
        if form["template_id"]:
            step["template_id"] = form["template_id"]
        else:
            problem = "choose a template."
        if form["from_email"]:
            step["from_email"] = form["from_email"]
    elif kind == "wait":
        if form["wait_mode"] == "until":
            step["until"] = form["until"][:5]
            if definition.clock(step["until"]) is None:
                problem = "wait until a time of day (HH:MM)."
        else:
            iso = to_iso(form["wait_amount"], form["wait_unit"])
            step["duration"] = iso or ""
            if iso is None:
                problem = "the wait is a whole number of minutes, hours or days (at most 90 days)."
    elif kind == "branch":
        cond = form["cond"]
        if cond in ("opened", "clicked"):
            step["if"] = {cond: {"step": form["cond_step"] or None}}
            if not form["cond_step"]:
                problem = f"choose the email that is {cond}."
        elif cond == "segment":
            step["if"] = {"in_segment": form["segment_id"]}
            if not form["segment_id"]:
                problem = "choose a segment."
        else:
            step["if"] = _rule("", form["rule"]) or {}
        if form["within_amount"] or cond in ("opened", "clicked"):
            iso = to_iso(form["within_amount"], form["within_unit"])
            step["within"] = iso or ""
            if iso is None and not problem:
                problem = "wait for it a whole number of minutes, hours or days (at most 90 days)."
        step["then"], step["else"] = form["then"] or None, form["else"] or None
        if not problem and not (form["then"] and form["else"]):
            problem = "choose where “then” and “else” go."
    elif kind in ("add_to_list", "remove_from_list"):
        if form["list_id"]:
            step["list_id"] = form["list_id"]
        else:
            problem = "choose a list."
    elif kind == "task":
        step["subject"] = form["subject"]
        if form["due_amount"]:
            iso = to_iso(form["due_amount"], form["due_unit"])
            step["due_in"] = iso or ""
            if iso is None:
                problem = "due in a whole number of minutes, hours or days (at most 90 days)."
    return step, problem


# ---------------------------------------------------------------- choices and words

def choices(store: Store) -> dict[str, Any]:
    """What the editor's selects offer: the newest templates, lists, segments and assets."""
    return {
        "templates": templates.find_templates(store, limit=CHOICES, newest_first=True)["items"],
        "lists": lists.find_lists(store, limit=CHOICES)["items"],
        "segments": segments.find_segments(store, limit=CHOICES)["items"],
        "assets": assets.find_assets(store, limit=CHOICES)["items"],
    }


def names_of(store: Store, body: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The names of the templates, lists and segments a journey names (for its page)."""
    out: dict[str, dict[str, str]] = {"templates": {}, "lists": {}, "segments": {}}
    steps = body.get("steps") or []
    settings = body.get("settings") or {}
    wanted_segments = [s["if"]["in_segment"] for s in steps
                       if s.get("type") == "branch" and isinstance(s.get("if"), dict)
                       and isinstance(s["if"].get("in_segment"), str)]
    wanted_segments += [r["in_segment"] for r in (settings.get("exit_when"), settings.get("goal"))
                        if isinstance(r, dict) and isinstance(r.get("in_segment"), str)]
    trigger = body.get("trigger") or {}
    if isinstance(trigger.get("segment_id"), str):
        wanted_segments.append(trigger["segment_id"])
    for step in steps:
        with contextlib.suppress(NotFound):
            if step.get("type") == "send" and step.get("template_id") not in out["templates"]:
                out["templates"][step["template_id"]] = templates.get_template(
                    store, step["template_id"])["name"]
            if step.get("list_id") and step["list_id"] not in out["lists"]:
                out["lists"][step["list_id"]] = lists.get_list(store, step["list_id"])["name"]
    for segment_id in dict.fromkeys(wanted_segments):
        with contextlib.suppress(NotFound):
            out["segments"][segment_id] = segments.get_segment(store, segment_id)["name"]
    return out


def trigger_text(trigger: dict[str, Any] | None, names: dict[str, dict[str, str]] | None = None) -> str:
    trigger = trigger or {}
    kind = trigger.get("type")
    if kind == "registration":
        return f"registers for {trigger.get('asset')}"
    if kind == "segment_entered":
        sid = trigger.get("segment_id") or ""
        return f"enters segment {(names or {}).get('segments', {}).get(sid, sid)}"
    if kind == "qualified":
        return "is qualified"
    return "manual enrollment"


def rule_text(rule: Any, names: dict[str, dict[str, str]]) -> str:
    if isinstance(rule, dict) and set(rule) == {"in_segment"}:
        sid = rule["in_segment"]
        return f"in segment {names['segments'].get(sid, sid)}"
    return json.dumps(rule)


def step_text(step: dict[str, Any], names: dict[str, dict[str, str]]) -> str:
    """One line saying what a step does."""
    kind = step.get("type")
    if kind == "send":
        tid = step.get("template_id") or ""
        return f"Send “{names['templates'].get(tid, tid)}”"
    if kind == "wait":
        if "until" in step:
            return f"Wait until {step['until']} (their time)"
        return f"Wait {human_duration(step.get('duration'))}"
    if kind == "branch":
        cond = step.get("if") or {}
        if isinstance(cond, dict) and len(cond) == 1 and set(cond) <= {"opened", "clicked"}:
            (what, body), = cond.items()
            text = f"If {what} {(body or {}).get('step')}"
        else:
            text = "If " + rule_text(cond, names)
        if step.get("within"):
            text += f" within {human_duration(step['within'])}"
        return text
    if kind in ("add_to_list", "remove_from_list"):
        lid = step.get("list_id") or ""
        verb = "Add to" if kind == "add_to_list" else "Remove from"
        return f"{verb} list {names['lists'].get(lid, lid)}"
    if kind == "task":
        due = f" (due in {human_duration(step['due_in'])})" if step.get("due_in") else ""
        return f"Task: {step.get('subject')}{due}"
    if kind == "qualify":
        return "Qualify the lead"
    return "Exit the journey"


# ---------------------------------------------------------------- the diagram

BOX_W, BOX_H, GAP, TOP, LANE = 270, 80, 40, 58, 18


def _clip(text: str, n: int = 36) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def diagram(body: dict[str, Any], stats: dict[str, Any], names: dict[str, dict[str, str]]
            ) -> dict[str, Any]:
    """Boxes top to bottom in step order, a start pill, and the edges: to the following
    step straight down, any other jump routed in a lane at the right; branch edges are
    labelled then / else. Coordinates in px (the SVG is drawn at this size, text readable
    at a phone's width)."""
    steps = body.get("steps") or []
    per_step = (stats or {}).get("steps") or {}
    index = {s["id"]: i for i, s in enumerate(steps)}
    boxes = []
    for i, step in enumerate(steps):
        counts = per_step.get(step["id"], {})
        line2 = (f"entered {counts.get('entered', 0):,} · waiting {counts.get('waiting', 0):,}"
                 f" · done {counts.get('done', 0):,}")
        line3 = (f"sent {counts.get('sent', 0):,} · opened {counts.get('opened', 0):,}"
                 f" · clicked {counts.get('clicked', 0):,}") if step.get("type") == "send" else ""
        boxes.append({"id": step["id"], "type": step.get("type"), "x": 8, "y": TOP + i * (BOX_H + GAP),
                      "title": _clip(f"{i + 1}. {step['id']}", 40),
                      "text": _clip(step_text(step, names), 34), "line2": line2, "line3": line3,
                      "counts": counts})
    edges = []
    lanes = 0
    arriving: dict[int, int] = {}  # jumps into a box so far: each arrives a little lower
    for i, step in enumerate(steps):
        targets: list[tuple[str, str]] = []
        if step.get("type") == "branch":
            targets = [(str(step.get("then") or ""), "then"), (str(step.get("else") or ""), "else")]
        elif step.get("type") != "exit":
            following = steps[i + 1]["id"] if i + 1 < len(steps) else ""
            target = step.get("next") or following
            if target:
                targets = [(target, "")]
        for target, label in targets:
            if target not in index:
                continue
            j = index[target]
            y_from = boxes[i]["y"] + BOX_H
            if j == i + 1 and not (label == "else" and step.get("then") == target):
                x = 8 + BOX_W // 2 + (-40 if label == "then" else 40 if label == "else" else 0)
                edges.append({"d": f"M{x},{y_from} V{boxes[j]['y'] - 2}", "label": label,
                              "lx": x + 6, "ly": y_from + GAP // 2 + 4, "anchor": "start"})
                continue
            lanes += 1
            x_out = 8 + BOX_W
            lane_x = x_out + lanes * LANE
            y1 = boxes[i]["y"] + BOX_H // 2 + (8 if label == "else" else -8 if label == "then" else 0)
            n = arriving[j] = arriving.get(j, 0) + 1
            y2 = boxes[j]["y"] + 14 + ((n - 1) * 14) % (BOX_H - 20)
            edges.append({"d": f"M{x_out},{y1} H{lane_x} V{y2} H{x_out + 2}", "label": label,
                          "lx": x_out + 4, "ly": y1 - 4, "anchor": "start", "jump": True})
    width = 8 + BOX_W + (lanes + 1) * LANE + 8
    height = TOP + len(steps) * (BOX_H + GAP)
    return {"boxes": boxes, "edges": edges, "width": max(width, 300), "height": height,
            "box_w": BOX_W, "box_h": BOX_H, "start_text": "", "top": TOP}
