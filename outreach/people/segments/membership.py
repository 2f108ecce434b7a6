"""Keeping memberships current, one person at a time.

A saved segment has its members (``members``: bitmaps by person number, and a field per
membership in the person's hash), and the index of what each segment reads
(``Keys.segment_readers``). ``touch`` re-evaluates, for one person, only the segments that
read what changed, moves the person in or out, and keeps the moment their value can next
flip by time alone in ``Keys.segment_due``, which ``tick`` drains. A change of membership
touches the segments whose ``in_segment`` names it (no cycles: ``catalog`` refuses them).
Every step is an idempotent re-evaluation, so a redelivered or repeated touch is harmless.
Several people (an ingest batch, ``settle``, ``touch_many``, a build's page, the beat's due
pairs) are done together (``evaluate_changes``, ``evaluate_many``): their facts in a few
pipelined round trips and their moves in a few transactions, so the round trips do not grow
with the number of people.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from redis.exceptions import WatchError

from outreach.people.segments import members, moves
from outreach.people.segments.compiled import compiled, text_test
from outreach.people.segments.evaluate import field_value
from outreach.people.segments.facts import Facts, load, load_many
from outreach.people.segments.rules import TEXT_FIELDS
from outreach.platform import webhooks
from outreach.store import Store

log = logging.getLogger(__name__)

ANY = "*"  # what_changed: anything about the person (a new person, a merge, a status change)
TICK_BATCH = 500
WATCH_CHUNK = 64  # people a settling transaction WATCHes (``_batch_round``)
MAX_ATTEMPTS = 20  # re-evaluations of one person while others keep changing them


def eligible(member_type: str, facts: Facts) -> bool:
    """A lead or a contact may be a member; with ``any`` a qualified lead whose contact
    exists is not (the address is one member: the contact)."""
    kind = facts.type
    if member_type == "any":
        return kind == "contact" or (kind == "lead" and not facts.h.get("contact_id"))
    return kind == member_type


def definitions(store: Store, segment_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{id: {"member_type", "rules", "announced"}}`` of the saved segments among
    ``segment_ids``; ``announced``: the segment was built once, so its moves are events
    (webhooks, and the ``segment_moves`` stream when something listens)."""
    ids = sorted(set(segment_ids))
    if not ids:
        return {}
    pipe = store.r.pipeline(transaction=False)
    for segment_id in ids:
        pipe.hmget(store.keys.segment(segment_id), "member_type", "rules", "built_at")
    pipe.hmget(store.keys.segment_move_listeners, ids)
    *rows, listeners = pipe.execute()
    out = {}
    for segment_id, (member_type, rules, built_at), listening in zip(ids, rows, listeners,
                                                                      strict=True):
        if member_type and rules:
            out[segment_id] = {"member_type": member_type, **_derived(rules),
                               "announced": bool(built_at),
                               "listened": bool(built_at) and int(listening or 0) > 0}
    return out


_TIMED = ('"within"', '"score"', '"created_at"', '"updated_at"')  # conservative, as text
_DERIVED: dict[str, dict[str, Any]] = {}
_DERIVED_MAX = 2000


def _derived(rules: str) -> dict[str, Any]:
    """What settling needs of a tree, worked out once per process for its JSON text: the
    tree, its required text conditions, its compiled form, and whether time alone can move
    anyone (a window, a date, a fading score; a tree that cannot has no due entries)."""
    found = _DERIVED.get(rules)
    if found is None:
        if len(_DERIVED) >= _DERIVED_MAX:
            _DERIVED.clear()
        tree = json.loads(rules)
        found = _DERIVED[rules] = {"rules": tree, "required": _required_text(tree),
                                   "compiled": compiled(rules, tree),
                                   "timed": any(word in rules for word in _TIMED)}
    return found


def _required_text(tree: dict[str, Any]) -> list[tuple[str, Callable[[Any], bool]]]:
    """The text conditions a tree requires of every member (the root, or the children of a
    root ``all``), each as (field, a test of the field's value as the evaluator compares it,
    ``compiled.text_test``): a person failing one is no member, and time alone cannot change
    that (a text comparison has no flip), so the full evaluation can be skipped."""
    return [(node["field"], text_test(node["op"], node["value"]))
            for node in tree.get("all", [tree])
            if "field" in node and node["field"] in TEXT_FIELDS]


class _Plan:
    """The required text conditions of several segments (``_required_text``) by field, to
    find the segments a person fails in one look-up a field: the answer for each value of a
    field is worked out once (e.g. of ten segments each requiring another country, the nine
    a person from one country is not in)."""

    MAX_VALUES = 5000  # answers kept a field

    def __init__(self, evaluated: Mapping[str, dict[str, Any]]) -> None:
        self.tests: dict[str, list[tuple[str, Callable[[Any], bool]]]] = {}
        for segment_id, definition in evaluated.items():
            for name, test in definition.get("required", ()):
                self.tests.setdefault(name, []).append((segment_id, test))
        self.answers: dict[str, dict[Any, frozenset[str]]] = {name: {} for name in self.tests}
        self.order = sorted(evaluated)  # the segments, in the order their moves are written

    def failing(self, facts: Facts) -> frozenset[str] | set[str]:
        """The segments a required condition of which ``facts`` fails."""
        failed: set[str] = set()
        for name, tests in self.tests.items():
            have = field_value(facts, name)
            answers = self.answers[name]
            found = answers.get(have)
            if found is None:
                found = frozenset(segment_id for segment_id, test in tests if not test(have))
                if len(answers) < self.MAX_VALUES:
                    answers[have] = found
            if len(self.tests) == 1:
                return found
            failed |= found
        return failed


def readers(store: Store, what_changed: Iterable[str]) -> set[str]:
    """The saved segments that read any of ``what_changed`` (one round trip)."""
    keys = store.keys
    tokens = set(what_changed)
    if not tokens:
        return set()
    if ANY in tokens:
        return set(store.r.zrange(keys.segments, 0, -1))
    return set(store.r.sunion([keys.segment_readers(t) for t in sorted(tokens)]))


def touch(store: Store, ref: str, what_changed: Iterable[str], now: float | None = None) -> int:
    """Re-evaluate, for ``ref`` only, the segments that read ``what_changed``; returns how
    many memberships moved."""
    return evaluate_for(store, ref, readers(store, what_changed), now)


def touch_many(store: Store, person_refs: Iterable[str], what_changed: Iterable[str],
               now: float | None = None) -> int:
    """``touch`` for several people changed in the same way, all at once
    (``evaluate_changes``)."""
    tokens = set(what_changed)
    return evaluate_changes(store, {ref: tokens for ref in dict.fromkeys(person_refs) if ref},
                            now)


def settle(store: Store, person_refs: list[str], now: float | None = None,
           changed: Mapping[str, Iterable[str]] | None = None,
           created: Iterable[str] = ()) -> int:
    """Re-evaluate people a script marked dirty (``Keys.segment_dirty``), then clear the
    marks. ``changed``: what changed about each person (``what_changed`` tokens, as the
    ingest script reports them); a person it does not name is re-evaluated for every
    segment (a mark a dead worker left says only *who*). ``created``: the people the same
    script created (no due entry of theirs to remove). Returns how many memberships moved."""
    if not person_refs:
        return 0
    people = list(dict.fromkeys(person_refs))
    changed = changed or {}
    moved = evaluate_changes(store, {ref: set(changed.get(ref) or (ANY,)) for ref in people}, now,
                             created)
    store.r.srem(store.keys.segment_dirty, *people)
    return moved


def evaluate_changes(store: Store, changes: Mapping[str, set[str]],
                     now: float | None = None, created: Iterable[str] = ()) -> int:
    """Re-evaluate, for each person of ``changes`` (ref -> what changed), the segments that
    read what changed, and then the segments naming the ones they moved in or out of, until
    nothing moves: everyone at once, in a number of round trips that does not grow with the
    number of people (readers in one pipeline; each round's facts in ``load_many``'s few; the
    moves of everyone in one transaction WATCHing everyone; a person changed meanwhile is
    done again alone, ``_round``). ``created``: people created just now (``settle``).
    Returns how many memberships moved."""
    return evaluate_many(store, _readers_per_person(store, changes), now, created)


def evaluate_many(store: Store, pending: Mapping[str, set[str]], now: float | None = None,
                  created: Iterable[str] = (), every_due: bool = False) -> int:
    """Re-evaluate, for each person of ``pending`` (ref -> segment ids), those segments,
    and then the segments naming the ones they moved in or out of, until nothing moves, all
    at once (``evaluate_changes``; a build's page, the beat's due pairs). ``every_due``: the
    due entries of every pair are written, whatever the tree (``_queue``). Returns how many
    memberships moved."""
    now = time.time() if now is None else now
    new = frozenset(created)
    known: dict[str, dict[str, Any]] = {}
    asked: set[str] = set()
    moved = 0
    for _ in range(1000):  # cycles are refused at save time; this only bounds a corrupt store
        pending = {ref: segment_ids for ref, segment_ids in pending.items() if segment_ids}
        if not pending:
            break
        missing = set().union(*pending.values()) - asked
        asked |= missing
        known.update(definitions(store, missing))
        shared: dict[frozenset[str], dict[str, dict[str, Any]]] = {}  # one a set of segments
        evaluated = {}
        for ref, segment_ids in pending.items():
            which = frozenset(segment_ids)
            mine = shared.get(which)
            if mine is None:
                mine = shared[which] = {s: known[s] for s in which if s in known}
            if mine:
                evaluated[ref] = mine
        if not evaluated:
            break
        changed, forgotten = _batch_round(store, evaluated, known, now, new, every_due)
        every_due = False  # the segments that follow a move: as any change
        moved += forgotten + sum(len(c) for c in changed.values())
        moved_segments = set().union(*changed.values()) if changed else set()
        if not moved_segments:
            break
        followers = _readers_of_segments(store, moved_segments)
        pending = {ref: set().union(*(followers[s] for s in segment_ids))
                   for ref, segment_ids in changed.items() if segment_ids}
    return moved


def _readers_per_person(store: Store, changes: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """ref -> the saved segments that read what changed about them (one round trip)."""
    keys = store.keys
    kinds = sorted({frozenset(tokens) for tokens in changes.values() if tokens}, key=sorted)
    if not kinds:
        return {}
    pipe = store.r.pipeline(transaction=False)
    for tokens in kinds:
        if ANY in tokens:
            pipe.zrange(keys.segments, 0, -1)
        else:
            pipe.sunion([keys.segment_readers(t) for t in sorted(tokens)])
    found = {tokens: set(reply) for tokens, reply in zip(kinds, pipe.execute(), strict=True)}
    return {ref: found[frozenset(tokens)] for ref, tokens in changes.items() if tokens}


def _readers_of_segments(store: Store, segment_ids: set[str]) -> dict[str, set[str]]:
    """segment -> the segments whose ``in_segment`` names it (one round trip)."""
    ids = sorted(segment_ids)
    pipe = store.r.pipeline(transaction=False)
    for segment_id in ids:
        pipe.smembers(store.keys.segment_readers(f"segment:{segment_id}"))
    return {s: set(reply) for s, reply in zip(ids, pipe.execute(), strict=True)}


def _batch_round(store: Store, evaluated: dict[str, dict[str, dict[str, Any]]],
                 known: dict[str, dict[str, Any]], now: float, new: frozenset[str] = frozenset(),
                 every_due: bool = False) -> tuple[dict[str, list[str]], int]:
    """``_round`` for several people at once: their facts in one ``load_many``, their moves
    in transactions of ``WATCH_CHUNK`` people each (each WATCHing its people: Redis checks
    every key WATCHed against the connection's others, so one transaction for a whole batch
    costs it quadratically); when any of a transaction's people changed meanwhile
    (WatchError), nothing of it was written and each half of it is done again the same way,
    down to the person who changed, who is done alone (``_round``, retried on its own).
    ``new``: people created just now, who have no due entries to remove; ``every_due``:
    as ``_queue``'s. Returns (ref -> segments moved, memberships of people gone that were
    removed)."""
    keys = store.keys
    people = sorted(evaluated)
    chunks = [people[i:i + WATCH_CHUNK] for i in range(0, len(people), WATCH_CHUNK)]
    changed: dict[str, list[str]] = {}
    gone: list[str] = []
    raced: list[list[str]] = []
    looked: dict[str, list[str]] = {}
    plans: dict[frozenset[str], _Plan] = {}

    def hooks(event: str) -> list[str]:  # the webhooks that want ``event``: once a batch
        if event not in looked:
            looked[event] = webhooks.subscribers(store, event)
        return looked[event]

    with contextlib.ExitStack() as stack:
        pipes = [stack.enter_context(store.r.pipeline(transaction=True)) for _ in chunks]
        for pipe, chunk in zip(pipes, chunks, strict=True):
            pipe.watch(*[key for ref in chunk for key in (
                keys.person(ref), keys.person_events(ref))])
        everyone = dict(zip(people, load_many(store, people, [d["rules"] for d in known.values()],
                                              only_read=True, segment_ids=known), strict=True))
        for pipe, chunk in zip(pipes, chunks, strict=True):
            pipe.multi()
            decided: dict[str, list[str]] = {}
            writes = members.Writes(store)
            announcing: list[moves.Moved] = []
            for ref in chunk:
                facts = everyone[ref]
                if facts is not None:
                    decided[ref] = _queue(writes, facts, evaluated[ref], now, announcing,
                                          every_due=every_due, new=ref in new, plans=plans)
            writes.queue(pipe)
            moves.announce(store, pipe, announcing, now, hooks)
            try:
                pipe.execute()
            except WatchError:
                raced.append(chunk)
                continue
            changed.update(decided)
            gone += [ref for ref in chunk if everyone[ref] is None]
    forgotten = sum(_forget(store, ref, set(evaluated[ref])) for ref in gone)
    for chunk in raced:
        if len(chunk) > 1:  # each half again: the people who changed are found in a few halvings
            middle = len(chunk) // 2
            for half in (chunk[:middle], chunk[middle:]):
                moved, gone_moved = _batch_round(store, {ref: evaluated[ref] for ref in half},
                                                 known, now, new, every_due)
                changed.update(moved)
                forgotten += gone_moved
            continue
        ref = chunk[0]
        moved_alone = _round(store, ref, evaluated[ref], known, now)
        if moved_alone is None:
            forgotten += _forget(store, ref, set(evaluated[ref]))
        else:
            changed[ref] = moved_alone
    return changed, forgotten


def evaluate_for(store: Store, ref: str, segment_ids: Iterable[str],
                 now: float | None = None) -> int:
    """Re-evaluate ``segment_ids`` for ``ref`` and, when one of them moves, the segments
    that name it, until nothing moves (``evaluate_many`` for one person)."""
    return evaluate_many(store, {ref: set(segment_ids)}, now, every_due=True)


def _round(store: Store, ref: str, evaluated: dict[str, dict[str, Any]],
           known: dict[str, dict[str, Any]], now: float) -> list[str] | None:
    """Evaluate ``evaluated`` for ``ref`` and apply the answers, unless the person changed
    meanwhile (WATCH on their hash, which holds their segments, and events): then again, on
    the new data, so that two workers touching one person never leave the older answer.
    Returns the segments the person moved in or out of; None when the person does not
    exist."""
    keys = store.keys
    for _ in range(MAX_ATTEMPTS):
        with store.r.pipeline(transaction=True) as pipe:
            pipe.watch(keys.person(ref), keys.person_events(ref))
            facts = load(store, ref, [d["rules"] for d in known.values()])
            if facts is None:
                pipe.unwatch()
                return None
            pipe.multi()
            writes = members.Writes(store)
            announcing: list[moves.Moved] = []
            changed = _queue(writes, facts, evaluated, now, announcing, every_due=True)
            writes.queue(pipe)
            moves.announce(store, pipe, announcing, now)
            try:
                pipe.execute()
            except WatchError:
                continue
            return changed
    log.warning("segments of %s: changed on every attempt; left to the next change", ref)
    return []


def _queue(writes: members.Writes, facts: Facts, evaluated: dict[str, dict[str, Any]],
           now: float, announcing: list[moves.Moved] | None = None, every_due: bool = False,
           new: bool = False, plans: dict[frozenset[str], _Plan] | None = None) -> list[str]:
    """Gather in ``writes`` the answers of ``evaluated`` for one person and in
    ``announcing`` their moves (the caller queues both on its transaction); their next flip
    times go into ``writes`` too (``Writes.due``); for a tree that time cannot move
    (``definitions``' ``timed``) only with ``every_due`` (the per-person path, which
    ``tick`` takes: a due entry left by an edited tree goes there); for a person created
    just now (``new``) only the times there are (there is no entry to remove; one a racing
    writer left is only a re-evaluation early). ``plans``: ``_Plan``s by the set of
    segments, kept by the caller for a batch. Returns the segments they moved in or out of."""
    changed = []
    which = frozenset(evaluated)
    plan = plans.get(which) if plans is not None else None
    if plan is None:
        plan = _Plan(evaluated)
        if plans is not None:
            plans[which] = plan
    failed = plan.failing(facts)
    for segment_id in plan.order:
        definition = evaluated[segment_id]
        was = segment_id in facts.segments
        if segment_id in failed:  # not a member, whatever the time
            if not (was or every_due or (not new and definition.get("timed", True))):
                continue  # nothing to write
            member, flip = False, None
        else:
            value, flip = definition["compiled"](facts, now)
            member = value and eligible(definition["member_type"], facts)
        if member and not was:
            writes.add(segment_id, facts.ref, now)
        elif was and not member:
            writes.remove(segment_id, facts.ref)
        if flip is not None or every_due or (not new and definition.get("timed", True)):
            writes.due(segment_id, facts.ref, flip)
        if member != was:
            changed.append(segment_id)
    if changed and announcing is not None:
        announcing.append((facts.ref, facts.h.get("email") or "",
                           [(s, s not in facts.segments) for s in changed
                            if evaluated[s]["announced"]],
                           {s for s in changed if evaluated[s]["listened"]}))
    return changed


def _forget(store: Store, ref: str, segment_ids: set[str]) -> int:
    """The person is gone (their hash, which named their segments, with them): out of every
    saved segment and of ``segment_ids``. Returns how many memberships that removed."""
    keys = store.keys
    every = sorted(set(store.r.zrange(keys.segments, 0, -1)) | segment_ids)
    pipe = store.r.pipeline(transaction=True)
    bits = members.clear_bits(store, pipe, every, ref)
    for segment_id in every:
        pipe.zrem(keys.segment_due, f"{segment_id}|{ref}")
    return sum(int(old) for old in pipe.execute()[:bits])


def tick(store: Store, now: float | None = None, limit: int = TICK_BATCH) -> int:
    """Re-evaluate the (segment, person) pairs whose value can have flipped by ``now``.
    Each pair is re-evaluated before its due entry is replaced, so a crash repeats work and
    loses none. Returns how many pairs were due."""
    now = time.time() if now is None else now
    # people a dead worker left dirty (the live path clears its own marks within moments)
    left = store.r.srandmember(store.keys.segment_dirty, limit)
    if left:
        settle(store, left, now)
    due = store.r.zrangebyscore(store.keys.segment_due, "-inf", int(now), start=0, num=limit)
    by_person: dict[str, set[str]] = {}
    for entry in due:
        segment_id, _, ref = entry.partition("|")
        by_person.setdefault(ref, set()).add(segment_id)
    evaluate_many(store, by_person, now, every_due=True)
    # a segment deleted since: nothing re-adds its entry
    mentioned = set().union(*by_person.values()) if by_person else set()
    stale = mentioned - set(definitions(store, mentioned))
    if stale:
        store.r.zrem(store.keys.segment_due, *[entry for entry in due
                                               if entry.partition("|")[0] in stale])
    return len(due)
