"""What each step type does, for one claimed (enrollment, step). Each returns an ``Act``:
how the engine marks the step (advance to the next step, defer this one, or end).

Sends go through the campaign machinery: each send step (per version and entry number) is
backed by a campaign record that is not in the campaign listings (``journey_campaigns``),
so its ledger (claim, DATA, mark; a dead run's claim before DATA goes back to the queue,
after DATA it is ``unknown``), consent, suppression and erasure checks, per-domain pace,
DKIM, tracking, one-click unsubscribe and bounces are the campaigns' own.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from outreach.campaigns import dispatch
from outreach.campaigns.sending.context import CampaignContext, load_people
from outreach.campaigns.sending.deliver import deliver_one
from outreach.config import Config
from outreach.journeys import catalog, definition, timing
from outreach.normalize import email_hash
from outreach.people import lists
from outreach.people.segments import evaluate as segment_evaluate
from outreach.people.segments import facts as segment_facts
from outreach.platform import refs
from outreach.sales import activities, owners, qualify
from outreach.store import Store
from outreach.zones import zone_of

log = logging.getLogger(__name__)


@dataclass
class Act:
    mode: str  # advance | defer | end
    outcome: str = ""  # history outcome (and the step's counter when in COUNTED)
    next_step: str = ""
    at: float = 0.0  # when the next (or deferred) step is due
    end: str = ""  # done | exited
    detail: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    history: bool = True


COUNTED = ("sent", "failed", "unknown", "skipped")


@dataclass
class Step:
    store: Store
    config: Config
    messenger: Any
    journey_id: str
    journey_name: str
    ref: str
    enrollment: dict[str, str]
    body: dict[str, Any]
    index: int
    seq: str
    run: str
    now: float
    stale: bool
    person: dict[str, str]
    contexts: dict[str, CampaignContext]

    @property
    def step(self) -> dict[str, Any]:
        return self.body["steps"][self.index]

    def following(self) -> str:
        after = definition.next_of(self.body["steps"], self.index)
        return after[0] if after else ""


def rule_holds(store: Store, ref: str, rule: dict[str, Any], now: float) -> bool:
    """The segment rule ``rule`` for ``ref`` as the person is now."""
    loaded = segment_facts.load(store, ref, [rule])
    return loaded is not None and bool(segment_evaluate.evaluate(rule, loaded, now).value)


def run(s: Step) -> Act | None:
    kind = s.step["type"]
    return _EXECUTORS[kind](s)


def _advance(s: Step, outcome: str, **detail: Any) -> Act:
    return Act("advance", outcome, s.following(), detail=detail)


def wait(s: Step) -> Act:
    due = float(s.enrollment.get("due_at") or 0)
    if s.now + 0.001 < due:  # woken early (an exit check): back to sleep until the end
        return Act("defer", at=due, history=False)
    return _advance(s, "waited")


def branch(s: Step) -> Act:
    step = s.step
    cond = step["if"]
    if "opened" in cond or "clicked" in cond:
        what = "opened" if "opened" in cond else "clicked"
        target = cond[what]["step"]
        holds = bool(s.enrollment.get(("o:" if what == "opened" else "c:") + target))
        awaits = f"{'open' if what == 'opened' else 'click'}:{target}"
    else:
        holds = rule_holds(s.store, s.ref, cond, s.now)
        awaits = ""
    if holds:
        return Act("advance", "then", step["then"])
    until = float(s.enrollment.get("branch_until") or 0)
    if not until:
        within = definition.duration(step.get("within"))
        if within is None:
            return Act("advance", "else", step["else"])
        until = float(s.enrollment.get("due_at") or s.now) + within
    if s.now >= until:
        return Act("advance", "else", step["else"])
    return Act("defer", at=until, history=False,
               fields={"branch_until": repr(until), "await": awaits})


def exit_step(s: Step) -> Act:
    return Act("end", "exited", end="exited", detail={"reason": "exit step"})


def _list_step(s: Step, add: bool) -> Act:
    list_id = s.step["list_id"]
    member_type = s.store.r.hget(s.store.keys.list(list_id), "member_type")
    kind, person_id = refs.parse(s.ref)
    if member_type is None:
        return _advance(s, "skipped", reason="the list is gone")
    if (member_type == "lead") != (kind == refs.LEAD) or member_type == "account":
        return _advance(s, "skipped", reason=f"a {refs.TYPES[kind]} is not on a {member_type} list")
    if add:
        lists.add_members(s.store, list_id, [s.person["email"]])
    else:
        lists.remove_member(s.store, list_id, s.ref)
    return _advance(s, "added" if add else "removed", list_id=list_id)


def add_to_list(s: Step) -> Act:
    return _list_step(s, True)


def remove_from_list(s: Step) -> Act:
    return _list_step(s, False)


def task(s: Step) -> Act:
    """A follow-up task for the person's owner, else the next sales user in turn. Exactly
    once: the task carries the enrollment's visit (``by``), so a run that takes over a dead
    one's claim finds the task it made instead of making another."""
    store = s.store
    kind, person_id = refs.parse(s.ref)
    record_kind = refs.TYPES[kind]
    by = f"journey:{s.journey_id}:{s.enrollment.get('gen') or 1}:{s.seq}"
    if s.stale:
        recent = store.r.zrevrange(store.keys.record_activities(f"{record_kind}:{person_id}"), 0, 49)
        for activity_id in recent:
            if store.r.hget(store.keys.activity(activity_id), "by") == by:
                return _advance(s, "task", task_id=activity_id)
    owner = s.person.get("owner") or ""
    if not owner:
        pool = owners.assignment_pool(store, s.config)
        if pool:
            turn = int(store.r.hincrby(store.keys.journey_stats(s.journey_id), "task_turn", 1))
            owner = pool[(turn - 1) % len(pool)]
    if not owner:
        return _advance(s, "failed", reason="nobody to own the task (no owner, no sales user)")
    due_in = definition.duration(s.step.get("due_in") or "P1D") or 86400
    created = activities.create_activity(store, record_kind, person_id, {
        "type": "task", "subject": s.step["subject"], "body": s.step.get("body") or "",
        "due_at": s.now + due_in, "owner": owner}, by=by, me=None)
    return _advance(s, "task", task_id=created["id"], owner=owner)


def qualify_step(s: Step) -> Act:
    kind, person_id = refs.parse(s.ref)
    if kind != refs.LEAD:
        return _advance(s, "skipped", reason="already a contact")
    try:
        result = qualify.qualify(s.store, s.config, person_id, on_duplicate="link",
                                 by=f"journey:{s.journey_id}")
    except Exception as exc:  # noqa: BLE001 - a refusal (disqualified, ...) is this step's
        return _advance(s, "failed", reason=str(exc)[:300])
    return _advance(s, "qualified", contact_id=result["contact_id"],
                    opportunity_id=result["opportunity_id"])


# ------------------------------------------------------------------ send

def backing_campaign(s: Step) -> str:
    """The hidden campaign of this send step (version, step, entry number), made once."""
    store, keys = s.store, s.store.keys
    version = s.enrollment.get("version") or "1"
    gen = s.enrollment.get("gen") or "1"
    field_name = f"{version}|{s.step['id']}|{gen}"
    found = store.r.hget(keys.journey_campaigns(s.journey_id), field_name)
    if found:
        return found
    campaign_id, _ = store.next_id("campaign", "cp")
    now = str(int(s.now))
    record = {"name": f"{s.journey_name} · {s.step['id']}", "status": "sending",
              "template_id": s.step["template_id"],
              "from_email": s.step.get("from_email") or "", "list_ids": "[]",
              "created_at": now, "launched_at": now, "dispatched": "1",
              "journey_id": s.journey_id, "journey_step": s.step["id"],
              "journey_version": version, "journey_gen": gen}
    if not record["from_email"]:
        del record["from_email"]
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(keys.campaign(campaign_id), mapping=record)
    pipe.hsetnx(keys.journey_campaigns(s.journey_id), field_name, campaign_id)
    pipe.execute()
    winner = store.r.hget(keys.journey_campaigns(s.journey_id), field_name) or campaign_id
    if winner != campaign_id:
        store.r.delete(keys.campaign(campaign_id))
    return winner


_LEDGER_DONE = {"S": "sent", "f": "failed", "u": "unknown", "x": "skipped"}
_VERDICTS = {"x": "suppressed", "n": "no consent", "d": "disqualified", "-": "gone"}


def send(s: Step) -> Act | None:
    store, config, keys = s.store, s.config, s.store.keys
    email = s.person["email"]
    quiet = (s.body.get("settings") or {}).get("quiet_hours")
    if quiet:
        zone = zone_of(s.person.get("timezone"), config.default_timezone)
        end = timing.quiet_until(s.now, definition.clock(quiet["start"]) or (0, 0),
                                 definition.clock(quiet["end"]) or (0, 0), zone)
        if end is not None:  # a send due in quiet hours waits for their end
            return Act("defer", at=end, history=False)
    campaign_id = backing_campaign(s)
    ledger = keys.campaign_ledger(campaign_id)
    if store.r.hget(ledger, email) is None:
        kind, person_id = refs.parse(s.ref)
        verdict = dispatch.verdicts(store, refs.TYPES[kind], [person_id])
        if not verdict or verdict[2] != "1":
            reason = _VERDICTS.get(verdict[2] if verdict else "-", "gone")
            return _advance(s, "skipped", reason=reason, campaign_id=campaign_id)
        store.r.hsetnx(ledger, email, f"q|{s.ref}|")
    ctx = s.contexts.get(campaign_id)
    if ctx is None:
        h = store.r.hgetall(keys.campaign(campaign_id))
        ctx = s.contexts[campaign_id] = CampaignContext(store, config, campaign_id, h)
    state = (store.r.hget(ledger, email) or "")[:1]
    if state == "q":
        wait_ms = ctx.domain_wait(email)
        if wait_ms:
            return Act("defer", at=s.now + wait_ms / 1000.0, history=False,
                       fields={"send_campaign": campaign_id})
    claim_keys = [keys.campaign(campaign_id), ledger, keys.campaign_sending(campaign_id),
                  keys.suppressed, keys.campaign_bucket(campaign_id), keys.erased,
                  keys.campaign_errors(campaign_id), keys.campaign_claims(campaign_id),
                  keys.send_run(s.run)]
    outcome, detail = store.run("claim_send", keys=claim_keys, args=[
        email, repr(time.time()), config.send_claim_timeout_seconds, 0, email_hash(email),
        s.run, config.send_heartbeat_seconds, keys.send_run("")])
    if outcome == "done":
        return _advance(s, _LEDGER_DONE.get(detail, "skipped"), campaign_id=campaign_id)
    if outcome == "unknown":
        return _advance(s, "unknown", campaign_id=campaign_id)
    if outcome == "suppressed":
        return _advance(s, "skipped", reason="suppressed", campaign_id=campaign_id)
    if outcome in ("busy", "wait"):
        return Act("defer", at=s.now + 5, history=False)
    if outcome == "stopped":  # the relay's answers paused its campaign: so is the journey
        reason = store.r.hget(keys.campaign(campaign_id), "status_reason") or str(detail)
        catalog.auto_pause(store, s.journey_id, f"step {s.step['id']!r}: {reason}")
        return Act("defer", at=s.now, history=False)
    person = load_people(store, [s.ref]).get(s.ref) or {}
    verdict = deliver_one(store, config, s.messenger, ctx, email, s.ref, person, s.run)
    if verdict in ("sent", "failed", "unknown"):
        return _advance(s, verdict, campaign_id=campaign_id)
    if verdict == "lost":
        return None
    tries = int(s.enrollment.get("tries") or 0) + 1
    delay = min(2.0 ** tries, float(config.send_retry_max_seconds))
    return Act("defer", at=s.now + delay, history=False,
               fields={"tries": str(tries), "send_campaign": campaign_id})


_EXECUTORS = {"send": send, "wait": wait, "branch": branch, "add_to_list": add_to_list,
              "remove_from_list": remove_from_list, "task": task, "qualify": qualify_step,
              "exit": exit_step}
