"""Everything that grows has a bound: a finished campaign older than
OUTREACH_CAMPAIGN_DETAIL_DAYS keeps its stats and drops its per-recipient detail."""

from __future__ import annotations

import time

from click.testing import CliRunner

from outreach.campaigns.retention import detail_keys, run_retention

DAY = 86_400


def _finished_campaign(env) -> str:
    list_id = env.leads("a@example.com", "b@example.com", "c@example.com")
    campaign_id = env.launched([list_id])
    shown = env.run(campaign_id)
    assert shown["status"] == "sent" and shown["stats"]["sent"] == 3
    return campaign_id


def test_a_finished_campaign_past_retention_keeps_only_its_stats(make_cenv) -> None:
    with make_cenv(campaign_detail_days=90) as env:
        campaign_id = _finished_campaign(env)
        before = env.show(campaign_id)
        keys = env.store.keys
        assert env.store.r.exists(keys.campaign_ledger(campaign_id))
        # not yet: 89 days after its end
        assert run_retention(env.store, env.config, now=time.time() + 89 * DAY) == []
        # a dry run names it and changes nothing
        later = time.time() + 91 * DAY
        named = run_retention(env.store, env.config, dry_run=True, now=later)
        assert named == [{"id": campaign_id, "name": "c"}]
        assert env.store.r.exists(keys.campaign_ledger(campaign_id))
        assert run_retention(env.store, env.config, now=later) == named
        assert not any(env.store.r.exists(k) for k in detail_keys(env.store, campaign_id))
        after = env.show(campaign_id)
        assert after["stats"] == before["stats"] and after["status"] == "sent"
        gone = env.get(f"/api/v1/campaigns/{campaign_id}/recipients")
        assert gone.status_code == 410
        assert "retention" in gone.get_json()["error"]["message"]
        # once only
        assert run_retention(env.store, env.config, now=later) == []


def test_drafts_and_running_campaigns_are_never_compacted(make_cenv) -> None:
    with make_cenv() as env:
        draft = env.campaign([env.leads("a@example.com")])
        assert run_retention(env.store, env.config, now=time.time() + 1000 * DAY) == []
        assert env.show(draft)["status"] == "draft"


def test_beat_runs_retention_daily(make_cenv) -> None:
    with make_cenv() as env:
        schedule = env.app.extensions["celery"].conf.beat_schedule
        (entry,) = [e for e in schedule.values() if e["task"] == "outreach.retention.run"]
        assert entry["schedule"] == 24 * 3600


def test_the_cli_refuses_without_a_store() -> None:
    from outreach.cli.main import main

    result = CliRunner().invoke(main, ["retention", "run", "--dry-run"], env={"OUTREACH_REDIS_URL": ""})
    assert result.exit_code == 2
