"""Scores that fade: the epoch-scaled store against a brute-force sum of each point's
current worth, the ordering of the score index, rebases, conversion on the decayed score,
the ``score`` endpoint and segment rules whose score crosses a boundary with time alone."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from outreach.campaigns import model, tracking
from outreach.people import ingest, scoring
from outreach.people.segments import build, catalog, members, membership, reading
from outreach.platform import refs
from outreach.sales import qualify
from outreach.tokens import Tokens

DAY = 86_400.0
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
EMAILS = ["a@acme.com", "b@beta.io", "c@corp.de"]


class World:
    """Leads, campaigns and a clock that only the test moves (``model.now``: what tracking
    stamps an event with)."""

    def __init__(self, env: Any, patch: pytest.MonkeyPatch) -> None:
        self.env, self.store, self.config = env, env.store, env.config
        self.tokens = Tokens(self.config.secret_key)
        self.start = float(int(model.now()))
        self.now = self.start
        patch.setattr(model, "now", lambda: self.now)
        ingest.apply_rows(self.store, self.config, [
            {"email": e, "kind": "white_paper", "asset": "guide", "consent": True,
             "source": "import"} for e in EMAILS])
        self.ids = {e: self.store.r.hget(self.store.keys.lead_by_email, e) for e in EMAILS}
        self.given: dict[str, list[tuple[float, float]]] = {e: [] for e in EMAILS}  # (at, points)
        self.seen: set[tuple[str, str, str]] = set()

    def campaign(self, campaign_id: str) -> None:
        self.store.r.hset(self.store.keys.campaign(campaign_id), mapping={"name": campaign_id})
        # three links, two ever clicked: never a link scanner (machine_opens)
        self.store.r.hset(self.store.keys.campaign_links(campaign_id), mapping={
            link: f"https://example.com/{link}" for link in ("l1", "l2", "l3")})

    def event(self, email: str, campaign_id: str, kind: str, link: str = "l1") -> None:
        """An open or a click at ``self.now``; the points it should give, by the rules."""
        self.campaign(campaign_id)
        ref = refs.lead_ref(self.ids[email])
        if kind == "open":
            tracking.record_open(self.store, self.config,
                                 self.tokens.sign("open", [campaign_id, ref]), user_agent=BROWSER)
        else:
            tracking.record_click(self.store, self.config,
                                  self.tokens.sign("click", [campaign_id, ref, link]),
                                  user_agent=BROWSER)
            if (email, campaign_id, link) not in self.seen:
                self.seen.add((email, campaign_id, link))
                self.given[email].append((self.now, self.config.score_click))
        if (email, campaign_id, "open") not in self.seen:  # a click proves an open
            self.seen.add((email, campaign_id, "open"))
            self.given[email].append((self.now, self.config.score_open))

    def brute(self, email: str, now: float) -> float:
        half_life = self.config.score_half_life_days * DAY
        return sum(p * 2 ** (-(now - at) / half_life) for at, p in self.given[email])


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


EVENTS = st.lists(st.tuples(st.sampled_from(EMAILS), st.sampled_from(["cp1", "cp2", "cp3"]),
                            st.sampled_from(["open", "click"]), st.sampled_from(["l1", "l2"]),
                            st.integers(0, 20 * 86_400)), min_size=1, max_size=25)


@settings(max_examples=50, deadline=None, report_multiple_bugs=False,
          suppress_health_check=[HealthCheck.too_slow])
@given(events=EVENTS, later=st.integers(0, 60 * 86_400), half_life=st.sampled_from([0.5, 3, 30]),
       rebase_at=st.one_of(st.none(), st.integers(0, 24)))
def test_the_scaled_store_equals_a_brute_force_sum_and_orders_leads(
        make_env, events, later, half_life, rebase_at) -> None:
    with make_env(score_half_life_days=half_life) as env, pytest.MonkeyPatch.context() as patch:
        world = World(env, patch)
        store = env.store
        for i, (email, campaign_id, kind, link, step) in enumerate(events):
            world.now += step
            world.event(email, campaign_id, kind, link)
            if i == rebase_at:  # a rebase between events changes no value
                store.run("score_rebase", args=[store.keys.tag, repr(world.now),
                                                repr(half_life * DAY)])
        now = world.now + later
        decay = scoring.decay_of(store)
        current = {}
        for email in EMAILS:
            lead_id = world.ids[email]
            scaled = float(store.r.hget(store.keys.lead(lead_id), "score") or 0)
            current[email] = decay.current(scaled, now)
            assert _close(current[email], world.brute(email, now)), email
            # the items add up to the score, each worth its points decayed since it was given
            shown = scoring.score_items(store, env.config, lead_id, now=now)
            assert shown["score"] == math.floor(world.brute(email, now) + 0.5)
            assert _close(sum(i["now"] for i in shown["items"]), current[email]) or abs(
                sum(i["now"] for i in shown["items"]) - current[email]) < 0.01
            assert sorted(i["points"] for i in shown["items"]) == sorted(
                p for _, p in world.given[email])
        # the score index orders leads by their current score, at any moment
        ranked = store.r.zrevrange(store.keys.lead_scores, 0, -1)
        by_id = {world.ids[e]: world.brute(e, now) for e in EMAILS}
        values = [by_id[lead_id] for lead_id in ranked]
        assert all(a >= b * (1 - 1e-9) for a, b in zip(values, values[1:], strict=False))
        assert set(ranked) == {world.ids[e] for e in EMAILS if world.given[e]}


def test_a_rebase_keeps_values_and_happens_when_the_factor_grows_large(make_env) -> None:
    with make_env(score_half_life_days=1) as env, pytest.MonkeyPatch.context() as patch:
        world = World(env, patch)
        store = env.store
        world.event(EMAILS[0], "cp1", "click")
        lead_id = world.ids[EMAILS[0]]
        before = scoring.decay_of(store)
        # far in the future: 600 half-lives past the epoch, more than MAX_EXPONENT
        future = before.epoch + 600 * DAY
        assert (future - before.epoch) / DAY > scoring.MAX_EXPONENT
        value = before.current(float(store.r.hget(store.keys.lead(lead_id), "score")), future)
        scoring.ensure_decay(store, env.config, now=future, force=True)
        after = scoring.decay_of(store)
        assert after.epoch == float(int(future)) and after.half_life == DAY
        scaled = float(store.r.hget(store.keys.lead(lead_id), "score"))
        assert _close(after.current(scaled, future), value)
        assert store.r.zscore(store.keys.lead_candidates, lead_id) == scaled
        # within the bound nothing is rewritten
        scoring.ensure_decay(store, env.config, now=future + DAY, force=True)
        assert scoring.decay_of(store) == after


def test_changing_the_half_life_carries_scores_over_at_their_value(make_env) -> None:
    with make_env(score_half_life_days=10) as env, pytest.MonkeyPatch.context() as patch:
        world = World(env, patch)
        world.event(EMAILS[0], "cp1", "open")
        lead_id = world.ids[EMAILS[0]]
        store = env.store
        now = world.now + 10 * DAY
        worth = scoring.decay_of(store).current(
            float(store.r.hget(store.keys.lead(lead_id), "score")), now)
        assert _close(worth, env.config.score_open / 2)
        # decay turned off: scores keep their value at that moment
        scoring.ensure_decay(store, dataclasses.replace(env.config, score_half_life_days=0.0),
                             now=now)
        assert scoring.decay_of(store).half_life == 0
        assert _close(float(store.r.hget(store.keys.lead(lead_id), "score")), worth)


def test_the_score_endpoint_lists_each_scored_event(cenv) -> None:
    list_id = cenv.leads("bob@example.com", asset="guide")
    cenv.leads("bob@example.com", asset="summit", kind="event")
    campaign_id = cenv.launched([list_id])
    cenv.run(campaign_id)
    html = cenv.messenger.to("bob@example.com").get_body(preferencelist=("html",)).get_content()
    import re

    click = re.search(r'href="https?://[^"/]+(/t/c/[^"]+)"', html)
    assert click and cenv.client.get(click.group(1)).status_code == 302
    lead = cenv.lead_of("bob@example.com")
    response = cenv.get(f"/api/v1/leads/{lead['id']}/score")
    assert response.status_code == 200
    body = response.get_json()
    w = cenv.config
    assert body["half_life_days"] == w.score_half_life_days
    assert body["threshold"] == w.promotion_threshold
    assert sorted(i["points"] for i in body["items"]) == sorted(
        [w.score_open, w.score_click, w.score_repeat_registration,
         w.score_event_after_white_paper])
    whats = " / ".join(i["what"] for i in body["items"])
    assert f"opened campaign {campaign_id}" in whats and "clicked link" in whats
    assert "registered for event summit" in whats
    assert body["score"] == lead["score"] == round(sum(i["now"] for i in body["items"]))
    assert all(set(i) == {"at", "what", "points", "now"} for i in body["items"])
    assert cenv.get("/api/v1/leads/nope/score").status_code == 404


def test_items_beyond_the_bound_fold_into_earlier_events(make_env) -> None:
    with make_env(score_half_life_days=5) as env, pytest.MonkeyPatch.context() as patch:
        world = World(env, patch)
        email = EMAILS[0]
        for i in range(30):  # 30 campaigns opened, a day apart: more than the items kept (20)
            world.now += DAY
            world.event(email, f"cq{i}", "open")
        shown = scoring.score_items(env.store, env.config, world.ids[email], now=world.now)
        assert len(shown["items"]) == 21 and shown["items"][-1]["what"] == "earlier events"
        assert shown["items"][-1]["points"] == 10 * env.config.score_open
        assert abs(sum(i["now"] for i in shown["items"]) - world.brute(email, world.now)) < 0.01


def test_conversion_promotes_on_the_decayed_score(make_env) -> None:
    with make_env(score_half_life_days=1, promotion_threshold=20) as env, \
            pytest.MonkeyPatch.context() as patch:
        world = World(env, patch)
        store = env.store
        old, fresh = EMAILS[0], EMAILS[1]
        # both earn 20 points; one of them long ago (two half-lives: worth 5 now)
        world.now -= 2 * DAY
        world.event(old, "cp1", "click")
        world.now += 2 * DAY
        world.event(fresh, "cp1", "click")
        result = qualify.run_conversion(store, env.config)
        assert result["promoted"] == 1
        statuses = {e: store.r.hget(store.keys.lead(world.ids[e]), "status") for e in (old, fresh)}
        assert statuses == {old: "new", fresh: "qualified"}


def test_a_score_rule_moves_people_out_when_their_score_fades(make_env) -> None:
    with make_env(score_half_life_days=1) as env, pytest.MonkeyPatch.context() as patch:
        world = World(env, patch)
        store = env.store
        patch.setattr(membership, "time", type("Clock", (), {"time": lambda: world.now}))
        segment = catalog.create_segment(store, "engaged", "lead",
                                         {"field": "score", "op": "gte", "value": 10})
        assert not build.build(store, segment["id"], now=world.now)
        world.event(EMAILS[0], "cp1", "click")  # 20 points now
        ref = refs.lead_ref(world.ids[EMAILS[0]])
        def member() -> bool:
            return ref in set().union(*members.pages(store, segment["id"]))

        assert member()
        # 20 x 2^(-t/1d) falls below 9.5 (rounds to 9) after log2(20/9.5) days
        (due, flip), = store.r.zrange(store.keys.segment_due, 0, -1, withscores=True)
        assert due == f"{segment['id']}|{ref}"
        crossing = world.now + DAY * math.log2(20 / 9.5)
        assert flip == math.floor(crossing) + 1 or flip == math.ceil(crossing)
        membership.tick(store, now=flip - 1)
        assert member()
        membership.tick(store, now=flip)
        assert not member()
        world.now = flip
        explained = reading.explain(store, segment["id"], EMAILS[0], now=flip)
        assert not explained["member"]
        assert explained["rules"][0]["because"].startswith("score is 9 (")
