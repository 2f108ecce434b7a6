"""Status indexes stay true: one script per lead status change keeps every index (the status
sets the funnel counts and the conversion candidates), and the conversion pass walks only the
leads that can still convert."""

from __future__ import annotations

from outreach.sales import qualify as qualification


def _lead_id(env, email: str) -> str:
    return env.get("/api/v1/leads", query_string={"email": email}).get_json()["items"][0]["id"]


def test_disqualifying_a_qualified_lead_without_an_opportunity_moves_it(env) -> None:
    env.registered("ann@acme.io", consent=True, company="Acme")
    env.registered("bob@acme.io", consent=True, company="Acme")
    lead_id = _lead_id(env, "ann@acme.io")
    qualified = env.post(f"/api/v1/leads/{lead_id}/qualify", json={"create_opportunity": False})
    assert qualified.status_code == 200, qualified.get_json()
    answer = env.post(f"/api/v1/leads/{lead_id}/disqualify", json={"reason": "no_budget"})
    assert answer.status_code == 200, answer.get_json()
    funnel = env.get("/api/v1/funnel").get_json()["leads"]
    assert funnel == {"total": 2, "new": 1, "qualified": 0, "disqualified": 1}
    listed = env.get("/api/v1/leads?status=qualified").get_json()["items"]
    assert listed == []
    assert env.post(f"/api/v1/leads/{lead_id}/reactivate").status_code == 200
    funnel = env.get("/api/v1/funnel").get_json()["leads"]
    assert funnel == {"total": 2, "new": 2, "qualified": 0, "disqualified": 0}


def test_a_disqualified_lead_is_never_promoted_even_from_a_stale_read(make_env, monkeypatch) -> None:
    """The conversion pass reads the status, then qualifies: a disqualify in between wins."""
    with make_env(promotion_threshold=20, score_event_after_white_paper=0) as env:
        for asset in ("one", "two", "three"):
            env.registered("hot@a.io", asset=asset, consent=True)
        lead_id = _lead_id(env, "hot@a.io")
        real = qualification._run_qualify

        def racing(store, config, part, auto, pool):
            qualification.disqualify(store, lead_id, "bad_timing", None)  # lands in between
            return real(store, config, part, auto, pool)

        monkeypatch.setattr(qualification, "_run_qualify", racing)
        assert qualification.run_conversion(env.store, env.config)["promoted"] == 0
        lead = env.get(f"/api/v1/leads/{lead_id}").get_json()
        assert lead["status"] == "disqualified"
        funnel = env.get("/api/v1/funnel").get_json()["leads"]
        assert funnel == {"total": 1, "new": 0, "qualified": 0, "disqualified": 1}


def test_the_conversion_pass_walks_only_leads_that_can_still_convert(make_env, monkeypatch) -> None:
    with make_env(promotion_threshold=20, score_event_after_white_paper=0) as env:
        for email in ("a@a.io", "b@b.io", "c@c.io"):
            for asset in ("one", "two", "three"):
                env.registered(email, asset=asset, consent=True)
        assert qualification.run_conversion(env.store, env.config)["promoted"] == 3
        walked: list[str] = []
        real = env.store.r.zrangebyscore

        def counting(key, *args, **kwargs):
            ids = real(key, *args, **kwargs)
            walked.extend(ids)
            return ids

        monkeypatch.setattr(env.store.r, "zrangebyscore", counting)
        assert qualification.run_conversion(env.store, env.config)["promoted"] == 0
        assert walked == []  # the qualified leads are not walked again
        # a disqualified lead is no candidate; reactivated, it is one again
        env.registered("d@d.io", asset="one", consent=True)
        for asset in ("two", "three"):
            env.registered("d@d.io", asset=asset, consent=True)
        d = _lead_id(env, "d@d.io")
        env.post(f"/api/v1/leads/{d}/disqualify", json={"reason": "no_budget"})
        assert qualification.run_conversion(env.store, env.config)["promoted"] == 0
        env.post(f"/api/v1/leads/{d}/reactivate")
        assert qualification.run_conversion(env.store, env.config)["promoted"] == 1
