"""The proof: after any sequence of changes (registrations, edits, opens, clicks, list
additions, qualification, disqualification, unsubscribes) and of clock advances, every
segment's incremental membership equals a brute-force evaluation of every person."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach.campaigns import tracking
from outreach.people import ingest, lists, records
from outreach.people.segments import build, catalog, members, membership, rules
from outreach.people.segments.evaluate import evaluate
from outreach.people.segments.facts import load
from outreach.platform import refs
from outreach.sales import opportunities, qualify
from outreach.tokens import Tokens

EMAILS = [f"p{i}@{d}" for i, d in enumerate(["acme.com", "beta.io", "gmail.com", "corp.de"])]
COUNTRIES = ["DE", "FR", "US"]
COMPANIES = ["Acme", "Beta Ltd", "Corp"]
ASSETS = ["guide", "webinar"]
CAMPAIGNS = ["cp1", "cp2"]
WINDOWS = ["-PT1H", "-PT3H", "-P1D"]
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


class Clock:
    """The segments' clock: still, except when the test moves it forward (the services keep
    stamping real times: a stamp after the clock's start is simply in its near future)."""

    def __init__(self) -> None:
        import time as real

        self.start = float(int(real.time()))
        self.offset = 0.0

    def time(self) -> float:
        return self.start + self.offset


# ---------------------------------------------------------------- random rule trees

def _conditions() -> st.SearchStrategy[dict[str, Any]]:
    text = st.sampled_from(["country", "company", "email_domain", "status", "consent_status",
                            "source"])
    values = st.sampled_from([*COUNTRIES, *COMPANIES, "acme.com", "beta.io", "new", "qualified",
                              "disqualified", "given", "withdrawn", "none", "import", "web_form"])
    field_rule = st.one_of(
        st.builds(lambda f, op, v: {"field": f, "op": op, "value": v}, text,
                  st.sampled_from(["eq", "ne", "contains", "starts_with", "ends_with"]), values),
        st.builds(lambda f, op, v: {"field": f, "op": op, "value": v}, text,
                  st.sampled_from(["in", "not_in"]), st.lists(values, min_size=1, max_size=3)),
        st.builds(lambda f, v: {"field": f, "op": "exists", "value": v}, text, st.booleans()),
        st.builds(lambda op, v: {"field": "score", "op": op, "value": v},
                  st.sampled_from(["gt", "gte", "lt", "lte", "eq"]), st.integers(0, 20)),
        st.builds(lambda f, op, v: {"field": f, "op": op, "value": v},
                  st.sampled_from(["created_at", "updated_at"]),
                  st.sampled_from(["gt", "gte", "lt", "lte"]), st.sampled_from(WINDOWS)),
    )

    def maybe(options: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({}, optional=options)

    return st.one_of(
        field_rule,
        st.builds(lambda b: {"registered": b}, maybe({"asset": st.sampled_from(ASSETS),
                                                      "kind": st.just("white_paper"),
                                                      "within": st.sampled_from(WINDOWS)})),
        st.builds(lambda b: {"opened": b}, maybe({"campaign_id": st.sampled_from(CAMPAIGNS),
                                                  "within": st.sampled_from(WINDOWS)})),
        st.builds(lambda b: {"clicked": b}, maybe({"campaign_id": st.sampled_from(CAMPAIGNS),
                                                   "url_contains": st.sampled_from(["pricing", "docs"]),
                                                   "within": st.sampled_from(WINDOWS)})),
        st.builds(lambda i: {"in_list": f"@list{i}"}, st.integers(0, 1)),
        st.builds(lambda f, op, v: {"account": {"field": f, "op": op, "value": v}},
                  st.sampled_from(["name", "domain"]), st.sampled_from(["eq", "ne", "contains"]),
                  st.sampled_from(["Acme", "beta.io", "corp"])),
        st.builds(lambda v: {"account": {"has_open_opportunity": v}}, st.booleans()),
    )


TREES = st.recursive(
    _conditions(),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, inner),
    ),
    max_leaves=6,
)

# ---------------------------------------------------------------- random changes

REGISTER = st.tuples(st.just("register"), st.sampled_from(EMAILS), st.sampled_from(ASSETS),
                     st.sampled_from(COUNTRIES), st.sampled_from(COMPANIES), st.booleans())
# several registrations (new people and repeats, maybe of one person) drained from the intake
# stream as one batch: settled at once, for what each one changed (membership.settle)
BATCH = st.tuples(st.just("batch"), st.lists(REGISTER, min_size=2, max_size=5))
CHANGES = st.one_of(
    REGISTER,
    BATCH,
    st.tuples(st.just("edit"), st.sampled_from(EMAILS), st.sampled_from(["country", "company"]),
              st.sampled_from([*COUNTRIES, *COMPANIES, ""])),
    st.tuples(st.just("open"), st.sampled_from(EMAILS), st.sampled_from(CAMPAIGNS)),
    st.tuples(st.just("click"), st.sampled_from(EMAILS), st.sampled_from(CAMPAIGNS),
              st.sampled_from(["l1", "l2"])),
    st.tuples(st.just("list"), st.sampled_from(EMAILS), st.integers(0, 1)),
    st.tuples(st.just("qualify"), st.sampled_from(EMAILS)),
    st.tuples(st.just("disqualify"), st.sampled_from(EMAILS)),
    st.tuples(st.just("unsubscribe"), st.sampled_from(EMAILS), st.sampled_from(CAMPAIGNS)),
    st.tuples(st.just("opportunity"), st.sampled_from(EMAILS), st.sampled_from(["won", "lost", "open"])),
    st.tuples(st.just("wait"), st.sampled_from([600, 3600, 4 * 3600, 30 * 3600])),
)


SCORE_RULES = st.builds(lambda op, v: {"field": "score", "op": op, "value": v},
                        st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne"]),
                        st.one_of(st.integers(0, 40), st.floats(0, 40).map(lambda x: round(x, 1))))
SCORE_TREES = st.recursive(
    st.one_of(SCORE_RULES, SCORE_RULES, _conditions()),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, inner),
    ),
    max_leaves=4,
)
SCORING = st.one_of(
    st.tuples(st.just("open"), st.sampled_from(EMAILS), st.sampled_from(CAMPAIGNS)),
    st.tuples(st.just("click"), st.sampled_from(EMAILS), st.sampled_from(CAMPAIGNS),
              st.sampled_from(["l1", "l2"])),
    REGISTER,
    BATCH,
    st.tuples(st.just("wait"), st.sampled_from([60, 600, 1800, 3600, 3 * 3600, 8 * 3600])),
    st.tuples(st.just("wait"), st.sampled_from([600, 3600, 4 * 3600])),
)


# ---------------------------------------------------------------- the world

class World:
    def __init__(self, env: Any, clock: Clock) -> None:
        self.env, self.clock = env, clock
        self.store, self.config = env.store, env.config
        self.tokens = Tokens(self.config.secret_key)
        keys = self.store.keys
        for campaign_id in CAMPAIGNS:
            # a campaign's stored links, as sending leaves them
            self.store.r.hset(keys.campaign(campaign_id), mapping={"name": campaign_id})
            self.store.r.hset(keys.campaign_links(campaign_id), mapping={
                "l1": f"https://example.com/{campaign_id}/pricing",
                "l2": f"https://example.com/{campaign_id}/docs"})
        self.lists = [lists.create_list_pair(self.store, f"L{i}", "lead")["id"] for i in range(2)]

    def ref_of(self, email: str) -> str | None:
        keys = self.store.keys
        contact = self.store.r.hget(keys.contact_by_email, email)
        if contact:
            return refs.contact_ref(contact)
        lead = self.store.r.hget(keys.lead_by_email, email)
        return refs.lead_ref(lead) if lead else None

    def lead_of(self, email: str) -> str | None:
        return self.store.r.hget(self.store.keys.lead_by_email, email)

    def apply(self, change: tuple[Any, ...]) -> None:
        kind, *args = change
        store, config = self.store, self.config
        if kind == "register":
            email, asset, country, company, consent = args
            ingest.apply_rows(store, config, [{
                "email": email, "kind": "white_paper", "asset": asset, "country": country,
                "company": company, "consent": consent, "source": "import"}])
            return
        if kind == "batch":
            for _, email, asset, country, company, consent in args[0]:
                store.r.xadd(store.keys.intake_stream, {"d": json.dumps({
                    "email": email, "kind": "white_paper", "asset": asset, "country": country,
                    "company": company, "consent": 1 if consent else 0})})
            ingest.drain(store, config, "hypothesis")
            return
        if kind == "wait":
            self.clock.offset += args[0]
            while membership.tick(store) == membership.TICK_BATCH:
                pass
            return
        email = args[0]
        ref, lead_id = self.ref_of(email), self.lead_of(email)
        if ref is None:
            return
        if kind == "edit":
            if lead_id:
                records.update_lead(store, lead_id, {args[1]: args[2]})
        elif kind in ("open", "click", "unsubscribe"):
            campaign_id = args[1]
            if kind == "open":  # a mail client's user agent: a human open, scored
                tracking.record_open(store, config, self.tokens.sign("open", [campaign_id, ref]),
                                     user_agent=BROWSER)
            elif kind == "click":
                tracking.record_click(store, config,
                                      self.tokens.sign("click", [campaign_id, ref, args[2]]),
                                      user_agent=BROWSER)
            else:
                tracking.unsubscribe(store, config,
                                     self.tokens.sign("unsubscribe", [campaign_id, ref]))
        elif kind == "list" and lead_id:
            lists.add_members(store, self.lists[args[1]], [email])
        elif kind == "qualify" and lead_id:
            status = store.r.hget(store.keys.lead(lead_id), "status")
            if status == "new":
                qualify.qualify(store, config, lead_id, on_duplicate="create")
        elif kind == "opportunity" and lead_id:  # close (won, lost) or reopen the lead's deal
            opp_id = store.r.hget(store.keys.lead(lead_id), "opportunity_id")
            if opp_id:
                opportunities.update_opportunity(store, opp_id, {
                    "status": args[1], **({"lost_reason": "no_budget"} if args[1] == "lost" else {})})
        elif kind == "disqualify" and lead_id:
            status, opp = store.r.hmget(store.keys.lead(lead_id), "status", "opportunity_id")
            if status == "new" and not opp:
                qualify.disqualify(store, lead_id, "no_budget", None)

    def people(self) -> list[str]:
        keys = self.store.keys
        return ([refs.lead_ref(i) for i in self.store.r.zrange(keys.leads, 0, -1)]
                + [refs.contact_ref(i) for i in self.store.r.zrange(keys.contacts, 0, -1)])

    def brute_force(self, segments: list[tuple[str, str, dict[str, Any]]]) -> dict[str, set[str]]:
        """Every person against every segment, from scratch, at the segments' clock; an
        ``in_segment`` reads the brute-force answer of the segment it names."""
        now = self.clock.time()
        answer: dict[str, set[str]] = {}
        for segment_id, member_type, tree in segments:  # in creation order: named ones first
            answer[segment_id] = set()
            for ref in self.people():
                facts = load(self.store, ref, [tree])
                assert facts is not None
                facts.segments = {s: 0.0 for s, members in answer.items() if ref in members}
                if membership.eligible(member_type, facts) and evaluate(tree, facts, now).value:
                    answer[segment_id].add(ref)
        return answer

    def incremental(self, segment_id: str) -> set[str]:
        return set().union(*members.pages(self.store, segment_id))


def _bind(tree: dict[str, Any], list_ids: list[str]) -> dict[str, Any]:
    """The generated ``@list<i>`` placeholders as the world's list ids."""
    if "in_list" in tree:
        return {"in_list": list_ids[int(tree["in_list"][5:])]}
    if "not" in tree:
        return {"not": _bind(tree["not"], list_ids)}
    for group in ("all", "any"):
        if group in tree:
            return {group: [_bind(child, list_ids) for child in tree[group]]}
    return tree


@contextlib.contextmanager
def _world(make_env: Any) -> Iterator[World]:
    clock = Clock()
    with make_env() as env, pytest.MonkeyPatch.context() as patch:
        patch.setattr(membership, "time", clock)
        yield World(env, clock)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees=st.lists(st.tuples(TREES, st.sampled_from(rules.MEMBER_TYPES)), min_size=1,
                      max_size=3),
       before=st.lists(REGISTER, min_size=2, max_size=5).flatmap(
           lambda people: st.lists(CHANGES, max_size=4).map(lambda more: people + more)),
       after=st.lists(CHANGES, min_size=1, max_size=14),
       nest=st.booleans())
def test_incremental_membership_equals_brute_force(make_env, trees, before, after, nest) -> None:
    _incremental_equals_brute_force(make_env, trees, before, after, nest)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees=st.lists(st.tuples(SCORE_TREES, st.sampled_from(rules.MEMBER_TYPES)), min_size=1,
                      max_size=3),
       before=st.lists(REGISTER, min_size=2, max_size=5).flatmap(
           lambda people: st.lists(SCORING, max_size=6).map(lambda more: people + more)),
       after=st.lists(SCORING, min_size=1, max_size=14),
       nest=st.booleans())
def test_incremental_membership_equals_brute_force_as_scores_fade(make_env, trees, before, after,
                                                                  nest) -> None:
    """Scores with a short half-life (an hour and a bit): waits move people across score
    boundaries by decay alone, at the moment the due index names."""
    _incremental_equals_brute_force(lambda: make_env(score_half_life_days=0.05), trees, before,
                                    after, nest)


def _incremental_equals_brute_force(make_env, trees, before, after, nest) -> None:
    with _world(make_env) as world:
        for change in before:  # people that exist before the segments are saved
            world.apply(change)
        saved: list[tuple[str, str, dict[str, Any]]] = []
        for tree, member_type in trees:
            tree = _bind(tree, world.lists)
            if nest and saved:  # a segment that names the previous one
                tree = {"any": [tree, {"in_segment": saved[-1][0]}]}
            rules.check(tree)
            segment = catalog.create_segment(world.store, "s", member_type, tree)
            assert not build.build(world.store, segment["id"])
            saved.append((segment["id"], member_type, tree))
        world_state = world.brute_force(saved)
        for segment_id, *_ in saved:
            assert world.incremental(segment_id) == world_state[segment_id], "after the build"
        for change in after:
            world.apply(change)
            for segment_id in build.pending_builds(world.store):  # what the beat carries on
                assert not build.build(world.store, segment_id)
            expected = world.brute_force(saved)
            for segment_id, _, tree in saved:
                assert world.incremental(segment_id) == expected[segment_id], (change, tree)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREES, member_type=st.sampled_from(rules.MEMBER_TYPES),
       changes=st.lists(REGISTER, min_size=2, max_size=4).flatmap(
           lambda people: st.lists(CHANGES, max_size=8).map(lambda more: people + more)))
def test_an_edited_segment_is_rebuilt_to_the_brute_force_answer(make_env, tree, member_type,
                                                               changes) -> None:
    with _world(make_env) as world:
        segment = catalog.create_segment(world.store, "s", member_type, {"field": "country",
                                                                         "op": "exists",
                                                                         "value": True})
        for change in changes:
            world.apply(change)
        tree = _bind(tree, world.lists)
        catalog.update_segment(world.store, segment["id"], {"rules": tree})
        while build.build_page(world.store, segment["id"], page=2):
            pass
        expected = world.brute_force([(segment["id"], member_type, tree)])
        assert world.incremental(segment["id"]) == expected[segment["id"]]
