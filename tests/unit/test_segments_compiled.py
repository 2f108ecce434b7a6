"""The compiled rules (``segments.compiled``) against the interpreter (``evaluate``): the same
value and the same flip for random trees and random people, at random moments."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_segments_incremental import ASSETS, CAMPAIGNS, COMPANIES, COUNTRIES, SCORE_TREES, TREES

from outreach.people.scoring import NO_DECAY, Decay
from outreach.people.segments import membership
from outreach.people.segments.compiled import compile_rules, compiled
from outreach.people.segments.evaluate import evaluate
from outreach.people.segments.facts import Event, Facts

NOW = 1_790_000_000
HOUR = 3600
TIMES = st.integers(NOW - 40 * HOUR, NOW + HOUR)
TEXT = st.sampled_from([*COUNTRIES, *COMPANIES, "acme.com", "Beta.IO", "new", "Qualified",
                        "given", "import", ""])


@st.composite
def people(draw: st.DrawFn) -> Facts:
    h: dict[str, str] = {"email": draw(st.sampled_from(["a@acme.com", "b@beta.io", "c@gmail.com",
                                                         ""]))}
    for name in ("country", "company", "status", "consent", "source", "latest_source",
                 "contact_id"):
        if draw(st.booleans()):
            h[name] = draw(TEXT)
    for name in ("created_at", "updated_at"):
        if draw(st.booleans()):
            h[name] = str(draw(TIMES))
    if draw(st.booleans()):
        h["score"] = str(draw(st.floats(0, 60).map(lambda x: round(x, 2))))
    events = draw(st.lists(st.builds(Event, st.sampled_from(["open", "click"]),
                                     st.sampled_from(CAMPAIGNS), TIMES,
                                     st.sampled_from(["", "l1", "l2"])), max_size=4))
    account = draw(st.one_of(st.none(), st.fixed_dictionaries(
        {"id": st.just("a1")}, optional={"name": st.sampled_from(["Acme", "Corp"]),
                                         "domain": st.sampled_from(["acme.com", "beta.io"])})))
    return Facts(
        draw(st.sampled_from(["l:1", "c:1"])), h,
        registrations=draw(st.lists(st.tuples(st.sampled_from(["white_paper", "event"]),
                                              st.sampled_from([*ASSETS, "Guide"]), TIMES),
                                    max_size=3)),
        events=events,
        lists=set(draw(st.lists(st.sampled_from(["@list0", "@list1"]), max_size=2))),
        segments={s: 1.0 for s in draw(st.lists(st.sampled_from(["s1", "s2"]), max_size=2))},
        sent={c: at for c, at in draw(st.lists(st.tuples(st.sampled_from(CAMPAIGNS), TIMES),
                                               max_size=2))},
        links={("cp1", "l1"): "https://x.test/Pricing", ("cp2", "l2"): "https://x.test/docs"},
        account=account,
        account_has_open_opportunity=draw(st.booleans()),
        decay=draw(st.sampled_from([NO_DECAY, Decay(NOW - 10 * 86400, 7 * 86400)])),
    )


EXTRA = st.sampled_from([
    {"sent": {"campaign_id": "cp1", "within": "-PT3H"}},
    {"sent": {"campaign_id": "cp2"}},
    {"in_segment": "s1"},
    {"registered": {"asset": "GUIDE", "kind": "event", "within": "-P1D"}},
    {"field": "email_domain", "op": "in", "value": ["ACME.com", "beta.io"]},
    {"field": "created_at", "op": "gte", "value": "2026-09-20T00:00:00Z"},
    {"field": "score", "op": "in", "value": [3, 10.5]},
    {"field": "score", "op": "exists", "value": True},
])
ANY_TREE = st.one_of(TREES, SCORE_TREES, EXTRA,
                     st.builds(lambda a, b: {"any": [a, {"not": b}]}, TREES, EXTRA))


@settings(max_examples=400, deadline=None)
@given(ANY_TREE, people(), TIMES)
def test_compiled_rules_give_the_interpreters_value_and_flip(tree, facts, now) -> None:
    # the trees name lists "@list<i>", as the people's lists do
    want = evaluate(tree, facts, now)
    assert compile_rules(tree)(facts, now) == (want.value, want.flip)


def test_a_compiled_tree_is_kept_by_its_text() -> None:
    tree = {"field": "country", "op": "eq", "value": "DE"}
    first = compiled('{"field": "country", "op": "eq", "value": "DE"}', tree)
    assert compiled('{"field": "country", "op": "eq", "value": "DE"}', tree) is first
    other = {"field": "country", "op": "eq", "value": "FR"}
    assert compiled('{"field": "country", "op": "eq", "value": "FR"}', other) is not first


@settings(max_examples=300, deadline=None)
@given(st.lists(TREES, min_size=1, max_size=6), st.lists(people(), min_size=1, max_size=4))
def test_required_conditions_never_drop_a_member(trees, everyone) -> None:
    """A segment the required-condition shortcut (``_Plan``: answers kept by field value
    across people) skips is one the interpreter says the person is not in."""
    definitions = {f"s{i}": {"rules": tree, "required": membership._required_text(tree)}
                   for i, tree in enumerate([*trees, *EQUAL])}
    plan = membership._Plan(definitions)
    for facts in everyone:
        failed = plan.failing(facts)
        for segment_id, definition in definitions.items():
            if segment_id in failed:
                assert evaluate(definition["rules"], facts, NOW).value is False


# segments that each require another value of one field (the case the plan is for)
EQUAL = [{"all": [{"field": "country", "op": "eq", "value": c},
                  {"field": "company", "op": "starts_with", "value": "a"}]} for c in COUNTRIES]
