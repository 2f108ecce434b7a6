"""Reading segments: members a page at a time, a preview of unsaved rules, and why a person
is (or is not) a member."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from outreach.errors import NotFound
from outreach.people.records import asset_slugs, contact_view, lead_view
from outreach.people.scoring import decay_of
from outreach.people.segments import candidates
from outreach.people.segments import members as segment_members
from outreach.people.segments.catalog import check_references, require
from outreach.people.segments.compiled import compiled
from outreach.people.segments.evaluate import evaluate
from outreach.people.segments.facts import load
from outreach.people.segments.membership import eligible
from outreach.platform import refs
from outreach.platform.paging import int_position, walk
from outreach.store import Store
from outreach.vocabulary import iso

PREVIEW_SAMPLE = 20
PREVIEW_BUDGET_SECONDS = 2.0  # rules are user programs: a preview's work is bounded in time


def people_views(store: Store, person_refs: list[str]) -> list[dict[str, Any] | None]:
    """Each ref's person as the people endpoints show it, with ``type``; None when gone."""
    pipe = store.r.pipeline(transaction=False)
    for ref in person_refs:
        pipe.hgetall(store.keys.person(ref))
    rows = pipe.execute()
    slugs = asset_slugs(store, [h.get("regs") for h in rows if h])
    decay = decay_of(store)
    out: list[dict[str, Any] | None] = []
    for ref, h in zip(person_refs, rows, strict=True):
        kind, person_id = refs.parse(ref)
        if not h or not kind:
            out.append(None)
            continue
        view = lead_view if kind == refs.LEAD else contact_view
        out.append(dict(view(person_id, h, slugs, decay), type=refs.TYPES[kind]))
    return out


def members(store: Store, segment_id: str, *, limit: int = 50,
            cursor: str | None = None) -> dict[str, Any]:
    """A page of the segment's members (leads, then contacts, each in creation order)."""
    require(store, segment_id)

    def step(position: str, size: int) -> tuple[list[tuple[Any, str | None]], str | None, int]:
        found, following = segment_members.scan(store, segment_id, int_position(position), size)
        views = people_views(store, [ref for ref, _ in found])
        return ([(view, str(after)) for view, (_, after) in zip(views, found, strict=True)
                 if view is not None],
                None if following is None else str(following), len(found))

    return walk(step, limit=limit, cursor=cursor,
                any_left=lambda position: bool(segment_members.scan(
                    store, segment_id, int_position(position), 1)[0]))


def preview(store: Store, member_type: str, rules: dict[str, Any],
            now: float | None = None, budget: float = PREVIEW_BUDGET_SECONDS) -> dict[str, Any]:
    """``{"count", "sample", "complete"}`` for checked, unsaved rules; ``complete`` is false
    when the time budget ended the scan first (the count is then a lower bound). A tree an
    index answers on its own (a lone list or score condition: ``candidates.answered``) is
    counted there; otherwise the people are narrowed by the indexes a rule allows
    (``candidates``) and evaluated a page at a time, each page's facts loaded in a few
    pipelined round trips."""
    check_references(store, None, rules)
    now = time.time() if now is None else now
    deadline = time.monotonic() + budget
    count, sample = 0, []
    complete = True
    loader: candidates.Loader | None = None  # built for the first page there is to evaluate
    quick = candidates.prefilter(rules)
    run = compiled(json.dumps(rules, sort_keys=True), rules)  # evaluate's answer, faster
    known = candidates.answered(store, member_type, rules, now, PREVIEW_SAMPLE)
    if known is None:
        pages: Iterable[list[str]] = candidates.people(store, member_type, rules, now)
    else:  # an index answers the tree: only the doubtful are evaluated
        count, sample = known.count, known.first
        pages = [known.doubtful] if known.doubtful else []
    for page_refs in pages:
        loader = loader or candidates.Loader(store, rules)
        for facts in loader.load(page_refs):
            if not facts or (quick is not None and not quick(facts.h)):
                continue  # not there, or fails a required field without an evaluation
            if eligible(member_type, facts) and run(facts, now)[0]:
                count += 1
                if len(sample) < PREVIEW_SAMPLE:
                    sample.append(facts.ref)
        if time.monotonic() > deadline:
            complete = False
            break
    return {"count": count, "sample": [v for v in people_views(store, sample) if v],
            "complete": complete}


def person_of(store: Store, member_type: str, email: str) -> str:
    """The ref a segment of ``member_type`` would hold for ``email``; 404 when none."""
    keys = store.keys
    contact_id = store.r.hget(keys.contact_by_email, email) if member_type != "lead" else None
    if contact_id:
        return refs.contact_ref(contact_id)
    lead_id = store.r.hget(keys.lead_by_email, email) if member_type != "contact" else None
    if lead_id:
        return refs.lead_ref(lead_id)
    raise NotFound(f"No {'person' if member_type == 'any' else member_type} with the address {email}.")


def explain(store: Store, segment_id: str, email: str, now: float | None = None) -> dict[str, Any]:
    """``{"member", "since", "rules": [{"path", "value", "because"}]}`` for one address."""
    h = require(store, segment_id)
    ref = person_of(store, h["member_type"], email)
    rules = json.loads(h["rules"])
    facts = load(store, ref, [rules])
    if facts is None:
        raise NotFound(f"No person with the address {email}.")
    verdict = evaluate(rules, facts, time.time() if now is None else now, explain=True)
    since = facts.segments.get(segment_id)
    return {"member": since is not None, "since": iso(since) if since is not None else None,
            "rules": verdict.nodes}
