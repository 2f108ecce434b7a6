"""A journey's definition (trigger, steps, settings) and the checks activation makes.

A bad step is a 422 whose ``fields`` key is ``steps.<i>`` and whose message names the step
id; the graph must hold together: ids exist, every step is reachable from the first, no loop
runs without a ``wait``, and the templates, lists and segments named exist.
"""

from __future__ import annotations

import re
from typing import Any

from outreach.errors import Invalid
from outreach.people.segments import rules as segment_rules
from outreach.store import Store

TRIGGERS = ("registration", "segment_entered", "qualified", "manual")
STEP_TYPES = ("send", "wait", "branch", "add_to_list", "remove_from_list", "task", "qualify",
              "exit")
RE_ENTRY = ("never", "after_exit")
MIN_WAIT, MAX_WAIT = 1, 90 * 86400
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_STEPS = 200


def duration(text: Any) -> int | None:
    """``PT2S`` .. ``P90D`` -> seconds; anything else (or out of range) None."""
    if not isinstance(text, str) or text.startswith("-"):
        return None
    seconds = segment_rules.duration_seconds(text)
    if seconds is None or not MIN_WAIT <= seconds <= MAX_WAIT:
        return None
    return seconds


def clock(text: Any) -> tuple[int, int] | None:
    """``"HH:MM"`` -> (hour, minute); anything else None."""
    match = _CLOCK.match(text) if isinstance(text, str) else None
    return (int(match[1]), int(match[2])) if match else None


def _bad(key: str, message: str) -> Invalid:
    return Invalid("Validation failed.", {key: [message]})


def next_of(steps: list[dict[str, Any]], index: int) -> list[str]:
    """The ids a step may lead to (``next`` defaults to the following step)."""
    step = steps[index]
    if step["type"] == "exit":
        return []
    if step["type"] == "branch":
        return [step["then"], step["else"]]
    if step.get("next"):
        return [step["next"]]
    return [steps[index + 1]["id"]] if index + 1 < len(steps) else []


def check_shape(data: dict[str, Any]) -> None:
    """What needs no store: types, required fields, durations, clock times, rules."""
    trigger = data.get("trigger")
    if not isinstance(trigger, dict) or trigger.get("type") not in TRIGGERS:
        raise _bad("trigger.type", f"One of: {', '.join(TRIGGERS)}.")
    if trigger["type"] == "registration" and not isinstance(trigger.get("asset"), str):
        raise _bad("trigger.asset", "A registration trigger names an asset slug.")
    if trigger["type"] == "segment_entered" and not isinstance(trigger.get("segment_id"), str):
        raise _bad("trigger.segment_id", "A segment_entered trigger names a segment.")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise _bad("steps", "At least one step.")
    if len(steps) > MAX_STEPS:
        raise _bad("steps", f"At most {MAX_STEPS} steps.")
    seen: set[str] = set()
    for i, step in enumerate(steps):
        _check_step(i, step, seen)
    _check_settings(data.get("settings") or {})


def _check_step(i: int, step: Any, seen: set[str]) -> None:
    key = f"steps.{i}"
    if not isinstance(step, dict) or not isinstance(step.get("id"), str) or not _ID.match(step["id"]):
        raise _bad(key, f"Step {i} needs an id (letters, digits, '_', '-', '.').")
    sid = step["id"]
    if sid in seen:
        raise _bad(key, f"Step {sid!r}: the id is used twice.")
    seen.add(sid)
    kind = step.get("type")
    if kind not in STEP_TYPES:
        raise _bad(key, f"Step {sid!r}: type is one of {', '.join(STEP_TYPES)}.")
    if "next" in step and step["next"] is not None and not isinstance(step["next"], str):
        raise _bad(key, f"Step {sid!r}: next is a step id.")
    if kind == "send" and not isinstance(step.get("template_id"), str):
        raise _bad(key, f"Step {sid!r}: a send names a template_id.")
    if kind == "wait":
        has_duration, has_until = "duration" in step, "until" in step
        if has_duration == has_until:
            raise _bad(key, f"Step {sid!r}: a wait has a duration or an until, not both.")
        if has_duration and duration(step["duration"]) is None:
            raise _bad(key, f"Step {sid!r}: duration is ISO 8601 from PT1S to P90D.")
        if has_until and clock(step["until"]) is None:
            raise _bad(key, f"Step {sid!r}: until is a local time \"HH:MM\".")
    if kind == "branch":
        _check_branch(key, sid, step)
    if kind in ("add_to_list", "remove_from_list") and not isinstance(step.get("list_id"), str):
        raise _bad(key, f"Step {sid!r}: names a list_id.")
    if kind == "task":
        if not isinstance(step.get("subject"), str) or not step["subject"].strip():
            raise _bad(key, f"Step {sid!r}: a task has a subject.")
        if "due_in" in step and duration(step["due_in"]) is None:
            raise _bad(key, f"Step {sid!r}: due_in is ISO 8601 from PT1S to P90D.")


def _check_branch(key: str, sid: str, step: dict[str, Any]) -> None:
    cond = step.get("if")
    if not isinstance(cond, dict):
        raise _bad(key, f"Step {sid!r}: a branch has an if.")
    if set(cond) & {"opened", "clicked"}:
        if len(cond) != 1:
            raise _bad(key, f"Step {sid!r}: if is opened or clicked, not both.")
        (what, body), = cond.items()
        if not isinstance(body, dict) or not isinstance(body.get("step"), str):
            raise _bad(key, f"Step {sid!r}: {what} names a step: {{\"step\": ID}}.")
        if duration(step.get("within")) is None:
            raise _bad(key, f"Step {sid!r}: within is ISO 8601 from PT1S to P90D.")
    else:
        try:
            segment_rules.check(cond, path=f"{key}.if")
        except Invalid as exc:
            first = next(iter((exc.fields or {}).values()), [exc.message])
            raise _bad(key, f"Step {sid!r}: {first[0]}") from exc
        if "within" in step and duration(step["within"]) is None:
            raise _bad(key, f"Step {sid!r}: within is ISO 8601 from PT1S to P90D.")
    for side in ("then", "else"):
        if not isinstance(step.get(side), str):
            raise _bad(key, f"Step {sid!r}: a branch names its {side} step.")


def _check_settings(settings: Any) -> None:
    if not isinstance(settings, dict):
        raise _bad("settings", "An object.")
    if settings.get("re_entry", "never") not in RE_ENTRY:
        raise _bad("settings.re_entry", f"One of: {', '.join(RE_ENTRY)}.")
    for name in ("exit_when", "goal"):
        if settings.get(name) is not None:
            segment_rules.check(settings[name], path=f"settings.{name}")
    quiet = settings.get("quiet_hours")
    if quiet is not None and (not isinstance(quiet, dict) or clock(quiet.get("start")) is None
                              or clock(quiet.get("end")) is None
                              or quiet["start"] == quiet["end"]):
        raise _bad("settings.quiet_hours", 'Local times {"start": "HH:MM", "end": "HH:MM"}.')


def check_graph(store: Store | None, data: dict[str, Any]) -> None:
    """Activation's checks: ids exist, every step reachable, no loop without a wait, and
    (with a store) the templates, lists, segments and asset named exist."""
    steps = data["steps"]
    index = {s["id"]: i for i, s in enumerate(steps)}
    for i, step in enumerate(steps):
        sid = step["id"]
        targets = ([step["next"]] if step.get("next") else []) + (
            [step["then"], step["else"]] if step["type"] == "branch" else [])
        for target in targets:
            if target not in index:
                raise _bad(f"steps.{i}", f"Step {sid!r} leads to {target!r}, which does not exist.")
        cond = step.get("if") if step["type"] == "branch" else None
        if isinstance(cond, dict) and set(cond) & {"opened", "clicked"}:
            (what, body), = cond.items()
            target = body["step"]
            if target not in index or steps[index[target]]["type"] != "send":
                raise _bad(f"steps.{i}", f"Step {sid!r}: {what} names {target!r}, not a send step.")
    reached = {steps[0]["id"]}
    todo = [0]
    while todo:
        for target in next_of(steps, todo.pop()):
            if target not in reached:
                reached.add(target)
                todo.append(index[target])
    for i, step in enumerate(steps):
        if step["id"] not in reached:
            raise _bad(f"steps.{i}", f"Step {step['id']!r} cannot be reached from the first step.")
    _check_loops(steps, index)
    if store is not None:
        _check_references(store, data)


def _check_loops(steps: list[dict[str, Any]], index: dict[str, int]) -> None:
    """A cycle through steps that are not waits would run forever without pausing: refused.
    (Branches on an open or click with ``within`` wait too, but count as no wait here.)"""
    state: dict[int, int] = {}

    def visit(i: int) -> None:
        state[i] = 1
        for target in next_of(steps, i):
            j = index[target]
            if steps[j]["type"] == "wait":
                continue
            if state.get(j) == 1:
                raise _bad(f"steps.{j}", f"Step {steps[j]['id']!r} is on a loop without a wait.")
            if j not in state:
                visit(j)
        state[i] = 2

    for i in range(len(steps)):
        if steps[i]["type"] != "wait" and i not in state:
            visit(i)


def _check_references(store: Store, data: dict[str, Any]) -> None:
    keys = store.keys
    trigger = data["trigger"]
    if trigger["type"] == "registration" and not store.r.exists(keys.asset(trigger["asset"])):
        raise _bad("trigger.asset", f"No asset {trigger['asset']!r}.")
    if trigger["type"] == "segment_entered" and not store.r.exists(keys.segment(trigger["segment_id"])):
        raise _bad("trigger.segment_id", f"No segment {trigger['segment_id']!r}.")
    for i, step in enumerate(data["steps"]):
        sid = step["id"]
        if step["type"] == "send" and not store.r.exists(keys.template(step["template_id"])):
            raise _bad(f"steps.{i}", f"Step {sid!r}: no template {step['template_id']!r}.")
        if step["type"] in ("add_to_list", "remove_from_list") and not store.r.exists(
                keys.list(step["list_id"])):
            raise _bad(f"steps.{i}", f"Step {sid!r}: no list {step['list_id']!r}.")
        if step["type"] == "branch" and "opened" not in step["if"] and "clicked" not in step["if"]:
            for segment_id in segment_rules.named_segments(step["if"]):
                if not store.r.exists(keys.segment(segment_id)):
                    raise _bad(f"steps.{i}", f"Step {sid!r}: no segment {segment_id!r}.")
    settings = data.get("settings") or {}
    for name in ("exit_when", "goal"):
        if not settings.get(name):
            continue
        for segment_id in segment_rules.named_segments(settings[name]):
            if not store.r.exists(keys.segment(segment_id)):
                raise _bad(f"settings.{name}", f"No segment {segment_id!r}.")


def normalized(data: dict[str, Any]) -> dict[str, Any]:
    """The stored definition: trigger, steps, settings with defaults filled in."""
    settings = dict(data.get("settings") or {})
    settings.setdefault("re_entry", "never")
    return {"trigger": data["trigger"], "steps": data["steps"], "settings": settings}


def trigger_field(trigger: dict[str, Any]) -> str:
    """The ``journey_triggers`` field an active journey with ``trigger`` listens on ('' for
    manual)."""
    kind = trigger["type"]
    if kind == "registration":
        return f"registration:{trigger['asset']}"
    if kind == "segment_entered":
        return f"segment:{trigger['segment_id']}"
    return "qualified" if kind == "qualified" else ""


def listened_segments(body: dict[str, Any]) -> set[str]:
    """The segments whose moves an active journey wants (``segments.moves.listen``): its
    trigger's, and those its exit rule and segment-rule branches name (a move wakes the
    person's enrollment, so the rule is checked when the person changes)."""
    out: set[str] = set()
    trigger = body.get("trigger") or {}
    if trigger.get("type") == "segment_entered":
        out.add(trigger["segment_id"])
    exit_when = (body.get("settings") or {}).get("exit_when")
    if exit_when:
        out |= segment_rules.named_segments(exit_when)
    for step in body.get("steps") or []:
        cond = step.get("if") if step.get("type") == "branch" else None
        if isinstance(cond, dict) and not set(cond) & {"opened", "clicked"}:
            out |= segment_rules.named_segments(cond)
    return out
