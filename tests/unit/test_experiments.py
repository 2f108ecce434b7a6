"""A/B experiments: the statistics (textbook values and scipy's answers for the same counts),
the assignment (balance and stability, by hypothesis), and a whole experiment driven by hand
on fakeredis: the test share only, each variant's template, counters per variant, the
decision at ``decide_after`` (by the test, by hand), the rest with the winner, each address
once."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.campaigns import model
from outreach.campaigns.experiments import assignment, decision, stats
from outreach.campaigns.experiments.setup import duration_seconds

scipy_stats = pytest.importorskip("scipy.stats")


# ---------------------------------------------------------------- statistics

def test_wilson_matches_the_closed_form_and_scipy() -> None:
    # 0 of n: the upper bound is z^2 / (n + z^2) (Wilson 1927)
    low, high = stats.wilson(0, 10, 0.95)
    z = 1.959963984540054
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(z * z / (10 + z * z), abs=1e-12)
    for x, n, confidence in [(81, 263, 0.95), (3, 40, 0.9), (50, 50, 0.99), (1, 1000, 0.95),
                             (420, 1000, 0.8)]:
        ci = scipy_stats.binomtest(x, n).proportion_ci(confidence_level=confidence,
                                                       method="wilson")
        assert stats.wilson(x, n, confidence) == pytest.approx((ci.low, ci.high), abs=1e-9)
    assert stats.wilson(0, 0) == (0.0, 1.0)
    assert stats.wilson(12, 10) == stats.wilson(10, 10)  # counters off by a race stay in range


def test_the_z_test_matches_scipys_chi_square_without_correction() -> None:
    for x1, n1, x2, n2 in [(30, 200, 45, 210), (5, 100, 5, 100), (120, 1000, 90, 980),
                           (0, 50, 4, 50)]:
        z, p = stats.two_proportion_z(x1, n1, x2, n2)
        chi2, expected_p, _, _ = scipy_stats.chi2_contingency(
            [[x1, n1 - x1], [x2, n2 - x2]], correction=False)
        assert z * z == pytest.approx(chi2, rel=1e-9)
        assert p == pytest.approx(expected_p, rel=1e-9)
    # no variance at all, or no data: nothing to tell
    assert stats.two_proportion_z(0, 10, 0, 10) == (0.0, 1.0)
    assert stats.two_proportion_z(1, 0, 1, 10) == (0.0, 1.0)


def test_holm_adjusts_as_the_textbook_does() -> None:
    # p = .01 .04 .03 .005: sorted .005 x4, .01 x3, .03 x2, .04 x1 (kept monotone)
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # monotone: never below


def test_the_decision_needs_the_best_to_beat_every_other_one() -> None:
    clear = stats.decide({"A": (10, 500), "B": (60, 500)}, 0.95)
    assert (clear.winner, clear.best) == ("B", "B")
    close = stats.decide({"A": (50, 500), "B": (55, 500)}, 0.95)
    assert close.winner is None and close.best == "B"
    # C clearly beats A but not B: inconclusive among three
    three = stats.decide({"A": (10, 500), "B": (52, 500), "C": (60, 500)}, 0.95)
    assert three.winner is None and three.p_values["A"] < 0.05 < three.p_values["B"]
    tie = stats.decide({"A": (30, 300), "B": (30, 300)}, 0.95)
    assert tie.winner is None and tie.best == "A"


def test_durations() -> None:
    assert duration_seconds("PT4H") == 14400
    assert duration_seconds("PT3S") == 3
    assert duration_seconds("P1DT30M") == 86400 + 1800
    assert duration_seconds("P2W") == 14 * 86400
    for bad in ("", "P", "PT", "4H", "PT0S", "P1Y", "PT-1S", "P1DT"):
        assert duration_seconds(bad) is None, bad


# ---------------------------------------------------------------- assignment

@settings(max_examples=25, deadline=None)
@given(campaign=st.from_regex(r"cp[0-9]{1,6}", fullmatch=True),
       share=st.sampled_from([0.1, 0.2, 0.5]), variants=st.integers(2, 5))
def test_assignment_is_balanced(campaign: str, share: float, variants: int) -> None:
    n = 50_000
    placed = [assignment.bucket(campaign, f"user{i}@example.com", share, variants)
              for i in range(n)]
    tested = [v for v in placed if v is not None]
    # within 5 standard deviations of the binomial, and a few % of even at these sizes
    assert abs(len(tested) / n - share) < max(0.01, 5 * (share * (1 - share) / n) ** 0.5)
    even = 1 / variants
    for variant in range(variants):
        spread = 5 * (even * (1 - even) / len(tested)) ** 0.5
        assert abs(tested.count(variant) / len(tested) - even) < min(0.04, spread)


@settings(max_examples=200, deadline=None)
@given(campaign=st.text(min_size=1, max_size=12), local=st.from_regex(r"[a-z0-9.]{1,20}",
       fullmatch=True), share=st.floats(0.01, 0.99), variants=st.integers(2, 5))
def test_assignment_is_stable(campaign: str, local: str, share: float, variants: int) -> None:
    email = f"{local}@example.com"
    first = assignment.bucket(campaign, email, share, variants)
    assert assignment.bucket(campaign, email, share, variants) == first
    assert assignment.bucket(campaign, f" {email.upper()} ", share, variants) == first
    # a bigger test share keeps everyone who was in the test in it, with the same variant
    if first is not None:
        assert assignment.bucket(campaign, email, min(0.999, share + 0.2), variants) == first


# ---------------------------------------------------------------- a whole experiment

PEOPLE = [f"p{i:02d}@ex{i % 3}.example" for i in range(40)]


def _experiment(env, campaign_id):
    response = env.get(f"/api/v1/campaigns/{campaign_id}/experiment")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def launched(cenv, monkeypatch):
    clock = [1_800_000_000.0]
    monkeypatch.setattr(model, "now", lambda: clock[0])
    list_id = cenv.leads(*PEOPLE)
    template = cenv.template(subject="Plain subject",
                             html='<p>Hi</p><a href="https://example.com/a">A</a>')
    other = cenv.template(subject="Other template", name="other")
    campaign_id = cenv.launched([list_id], template, experiment={
        "variants": [{}, {"subject": "Subject B"}, {"template_id": other}],
        "test_share": 0.5, "metric": "clicks", "decide_after": "PT1H"})
    return cenv, campaign_id, clock


def _variant_subjects(env) -> dict[str, str]:
    return {rcpt: msg["Subject"] for msg, _, rcpt in env.messenger.messages}


def test_an_experiment_runs_the_test_share_then_the_rest_with_the_winner(launched) -> None:
    env, campaign_id, clock = launched
    shown = env.show(campaign_id)
    assert shown["experiment"]["variants"][1] == {"name": "B", "template_id": shown["template_id"],
                                                  "subject": "Subject B"}
    env.pump()
    assert env.watch(campaign_id) is not None  # held open: the rest is still to come
    expected = {e: assignment.bucket(campaign_id, e, 0.5, 3) for e in PEOPLE}
    tested = {e for e, v in expected.items() if v is not None}
    assert set(env.messenger.recipients) == tested and 0 < len(tested) < len(PEOPLE)
    subjects = {0: "Plain subject", 1: "Subject B", 2: "Other template"}
    assert _variant_subjects(env) == {e: subjects[expected[e]] for e in tested}
    shown = env.show(campaign_id)
    assert shown["status"] == "sending" and shown["progress"] < 1.0  # the rest is to come
    assert set(env.ledger(campaign_id)) == tested  # the rest is not in the ledger yet

    # everyone who got B clicks; one A person opens (a click proves an open)
    clock[0] += 60
    for msg, _, rcpt in env.messenger.messages:
        body = msg.get_body(("html",)).get_content()
        if expected[rcpt] == 1:
            assert env.client.get(re.search(r"/t/c/[^\"]+", body).group(0)).status_code == 302
    first_a = next(r for r in sorted(tested) if expected[r] == 0)
    body = env.messenger.to(first_a).get_body(("html",)).get_content()
    env.client.get(re.search(r"/t/o/[^\"]+", body).group(0), headers={"User-Agent": "Thunderbird/115"})
    view = _experiment(env, campaign_id)
    by_name = {v["name"]: v for v in view["variants"]}
    n = {i: sum(1 for e in tested if expected[e] == i) for i in range(3)}
    assert [by_name[x]["sent"] for x in "ABC"] == [n[0], n[1], n[2]]
    assert by_name["B"]["clicked"] == by_name["B"]["opened"] == n[1] and by_name["B"]["rate"] == 1.0
    assert (by_name["A"]["opened"], by_name["A"]["clicked"]) == (1, 0)
    assert view["status"] == "testing" and view["winner"] is None
    assert by_name["B"]["ci_low"] < 1.0 == by_name["B"]["ci_high"]

    # not yet due: the watch holds; then due: the watch decides by the test
    assert decision.drain(env.store, env.config, env.jobs) == 0
    clock[0] += 3600
    env.watch(campaign_id)
    view = _experiment(env, campaign_id)
    assert (view["status"], view["winner"], view["decided_by"]) == ("decided", "B", "test")
    assert "z-test" in view["method"] and "Holm" in view["method"]
    env.pump()
    env.watch(campaign_id)
    counts = env.messenger.counts()
    assert sorted(counts) == sorted(PEOPLE) and set(counts.values()) == {1}
    subjects_now = _variant_subjects(env)
    assert all(subjects_now[e] == "Subject B" for e in PEOPLE if e not in tested)
    assert env.show(campaign_id)["status"] == "sent"
    view = _experiment(env, campaign_id)
    assert sum(v["sent"] for v in view["variants"]) == len(PEOPLE)
    assert {v["name"]: v["sent"] for v in view["variants"]}["B"] == n[1] + len(PEOPLE) - len(tested)
    report = env.get(f"/api/v1/campaigns/{campaign_id}/report").get_json()
    assert report["variants"] == view["variants"]
    conflict = env.post(f"/api/v1/campaigns/{campaign_id}/experiment/decide", json={"variant": "A"})
    assert conflict.status_code == 409


def test_an_inconclusive_test_sends_the_rest_a(launched) -> None:
    env, campaign_id, clock = launched
    env.pump()
    env.watch(campaign_id)
    clock[0] += 3601
    assert decision.drain(env.store, env.config, env.jobs) == 1  # the beat's due index
    view = _experiment(env, campaign_id)
    assert (view["status"], view["winner"], view["rest_variant"]) == ("inconclusive", None, "A")
    env.pump()
    env.watch(campaign_id)
    expected = {e: assignment.bucket(campaign_id, e, 0.5, 3) for e in PEOPLE}
    subjects = _variant_subjects(env)
    assert all(subjects[e] == "Plain subject" for e in PEOPLE if expected[e] is None)
    assert set(env.messenger.counts().values()) == {1} and len(env.messenger.counts()) == 40


def test_pause_during_the_test_waits_and_a_decision_by_hand(launched) -> None:
    env, campaign_id, clock = launched
    sent_before_pause = []

    def pause_after_three(rcpt: str) -> None:
        sent_before_pause.append(rcpt)
        if len(sent_before_pause) == 3:
            env.post(f"/api/v1/campaigns/{campaign_id}/pause")

    env.messenger.before_send = pause_after_three
    env.pump()
    env.messenger.before_send = None
    assert env.show(campaign_id)["status"] == "paused"
    clock[0] += 7200
    assert decision.drain(env.store, env.config, env.jobs) == 0  # waits while paused
    assert _experiment(env, campaign_id)["status"] == "testing"
    # by hand: unknown variant 422, then C by a key; a second decision 409
    bad = env.post(f"/api/v1/campaigns/{campaign_id}/experiment/decide", json={"variant": "Z"})
    assert bad.status_code == 422 and "variant" in bad.get_json()["error"]["fields"]
    done = env.post(f"/api/v1/campaigns/{campaign_id}/experiment/decide", json={"variant": "C"})
    assert done.status_code == 200, done.get_json()
    assert (done.get_json()["winner"], done.get_json()["status"]) == ("C", "decided")
    assert done.get_json()["decided_by"]
    again = env.post(f"/api/v1/campaigns/{campaign_id}/experiment/decide", json={"variant": "B"})
    assert again.status_code == 409
    assert env.post(f"/api/v1/campaigns/{campaign_id}/resume").status_code == 200
    env.pump()
    env.watch(campaign_id)
    env.pump()
    env.watch(campaign_id)
    counts = env.messenger.counts()
    assert sorted(counts) == sorted(PEOPLE) and set(counts.values()) == {1}
    expected = {e: assignment.bucket(campaign_id, e, 0.5, 3) for e in PEOPLE}
    subjects = _variant_subjects(env)
    names = {0: "Plain subject", 1: "Subject B", 2: "Other template"}
    for e in PEOPLE:  # the test share kept its own variant through the pause
        assert subjects[e] == names[2 if expected[e] is None else expected[e]]


def test_experiment_validation_and_absence(cenv, check_error) -> None:
    list_id = cenv.leads("ann@example.com")
    template = cenv.template()
    base = {"name": "x", "template_id": template, "list_ids": [list_id]}
    for experiment, field in [
        ({"variants": [{}]}, "experiment.variants"),
        ({"variants": [{}] * 6}, "experiment.variants"),
        ({"variants": [{}, {}], "test_share": 1}, "experiment.test_share"),
        ({"variants": [{}, {}], "test_share": 0}, "experiment.test_share"),
        ({"variants": [{}, {}], "metric": "revenue"}, "experiment.metric"),
        ({"variants": [{}, {}], "decide_after": "soon"}, "experiment.decide_after"),
        ({"variants": [{}, {}], "confidence": 1.0}, "experiment.confidence"),
        ({"variants": [{}, {"template_id": "nope"}]}, "experiment.variants.1.template_id"),
        ({"variants": [{}, {"subject": ""}]}, "experiment.variants.1.subject"),
    ]:
        response = cenv.post("/api/v1/campaigns", json={**base, "experiment": experiment})
        check_error(response, 422)
        assert field in response.get_json()["error"]["fields"], (experiment, response.get_json())
    plain = cenv.campaign([list_id], template)
    assert cenv.show(plain)["experiment"] is None
    check_error(cenv.get(f"/api/v1/campaigns/{plain}/experiment"), 404)
    made = cenv.campaign([list_id], template, experiment={"variants": [{}, {}]})
    assert cenv.show(made)["experiment"] == {
        "variants": [{"name": "A", "template_id": template, "subject": None},
                     {"name": "B", "template_id": template, "subject": None}],
        "test_share": 0.2, "metric": "clicks", "decide_after": "PT4H", "confidence": 0.95}
    check_error(cenv.post(f"/api/v1/campaigns/{made}/experiment/decide", json={"variant": "A"}), 409)


def test_erasure_forgets_the_recorded_variant(launched) -> None:
    env, campaign_id, _ = launched
    env.pump()
    variants = env.store.keys.campaign_variants(campaign_id)
    email = sorted(env.store.r.hkeys(variants))[0]
    env.erase(email)
    env.run_erasures()
    assert not env.store.r.hexists(variants, email)
    assert email not in env.store.r.hkeys(variants)
