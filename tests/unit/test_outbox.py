"""Redis is the outbox (issue 18): a state change writes its follow-up work into Redis in
the same transaction; the publish after it is only a nudge, and the beat (the campaign
tick and the watch) drives whatever is due, exactly once."""

from __future__ import annotations

from outreach.campaigns import lifecycle
from outreach.campaigns import watch as watching
from outreach.mail.smtp.classify import PermanentFailure
from outreach.platform.jobs import NoJobs


class BrokerDown(NoJobs):
    """Jobs whose every publish fails, as with the broker unreachable."""

    def dispatch(self, campaign_id: str) -> None:
        raise ConnectionError("broker down")

    def send_batch(self, campaign_id: str, batch_no: int, countdown: float = 0) -> None:
        raise ConnectionError("broker down")

    def watch(self, campaign_id: str, token: str, countdown: float = 0) -> None:
        raise ConnectionError("broker down")

    def retry_failed(self, campaign_id: str) -> None:
        raise ConnectionError("broker down")


def _broker_back(cenv) -> None:
    """The broker is back: the beat's tick runs, then every job it leads to."""
    cenv.app.extensions["outreach.jobs"] = cenv.jobs
    for _ in range(5):
        watching.watch_all(cenv.store, cenv.config, cenv.jobs)
        for name, args in list(cenv.pending()):
            if name == "watch":
                cenv.watch(str(args[0]))
            else:
                cenv.jobs.calls.append((name, args))
        cenv.pump()
        # watch_all restarts only a watch that looks dead: make every one look so
        for campaign_id in cenv.store.r.smembers(cenv.store.keys.active_campaigns):
            cenv.store.r.hset(cenv.store.keys.campaign(campaign_id), "watched_at", "0")


def test_launch_with_the_broker_down_answers_and_completes_after_it_returns(cenv) -> None:
    emails = [f"p{i}@example.com" for i in range(7)]
    list_id = cenv.leads(*emails)
    campaign_id = cenv.campaign([list_id])
    cenv.app.extensions["outreach.jobs"] = BrokerDown()
    response = cenv.post(f"/api/v1/campaigns/{campaign_id}/launch")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "sending"
    keys = cenv.store.keys
    assert cenv.store.r.sismember(keys.active_campaigns, campaign_id)
    assert cenv.messenger.recipients == []

    _broker_back(cenv)
    shown = cenv.show(campaign_id)
    assert shown["status"] == "sent"
    assert cenv.messenger.counts() == dict.fromkeys(emails, 1)


def test_resume_with_the_broker_down_completes_after_it_returns(cenv) -> None:
    emails = [f"p{i}@example.com" for i in range(6)]
    campaign_id = cenv.launched([cenv.leads(*emails)])
    cenv.pending()
    cenv.dispatch(campaign_id)
    cenv.pending()  # the send tasks are lost with the broker
    lifecycle.pause(cenv.store, campaign_id)
    cenv.app.extensions["outreach.jobs"] = BrokerDown()
    response = cenv.post(f"/api/v1/campaigns/{campaign_id}/resume")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "sending"

    _broker_back(cenv)
    assert cenv.show(campaign_id)["status"] == "sent"
    assert cenv.messenger.counts() == dict.fromkeys(emails, 1)


def test_retry_failed_is_a_job_and_survives_the_broker_down(cenv) -> None:
    emails = [f"p{i}@example.com" for i in range(6)]
    campaign_id = cenv.launched([cenv.leads(*emails)])
    cenv.messenger.fail["p1@example.com"] = PermanentFailure("550 5.2.1 disabled", 550)
    cenv.messenger.fail["p4@example.com"] = PermanentFailure("550 5.2.1 disabled", 550)
    assert cenv.run(campaign_id)["status"] == "sent"
    cenv.messenger.fail.clear()
    cenv.app.extensions["outreach.jobs"] = BrokerDown()
    response = cenv.post(f"/api/v1/campaigns/{campaign_id}/retry-failed")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["requeued"] == 2
    # the watch does not finish the campaign while its retry waits
    cenv.watch(campaign_id)
    assert cenv.show(campaign_id)["status"] == "sending"

    _broker_back(cenv)
    shown = cenv.show(campaign_id)
    assert shown["status"] == "sent"
    assert shown["stats"]["failed"] == 0 and shown["stats"]["sent"] == 6
    assert cenv.messenger.counts() == dict.fromkeys(emails, 1)
    assert not cenv.store.r.zscore(cenv.store.keys.campaigns_retry_due, campaign_id)


def test_retry_failed_job_twice_queues_each_once(cenv) -> None:
    emails = [f"p{i}@example.com" for i in range(6)]
    campaign_id = cenv.launched([cenv.leads(*emails)])
    for address in emails[:4]:
        cenv.messenger.fail[address] = PermanentFailure("550 5.2.1 disabled", 550)
    cenv.run(campaign_id)
    cenv.messenger.fail.clear()
    cenv.post(f"/api/v1/campaigns/{campaign_id}/retry-failed")
    cenv.pending()
    cenv.store.r.zadd(cenv.store.keys.campaigns_retry_due, {campaign_id: 1})
    first = lifecycle.requeue_failed(cenv.store, cenv.jobs, campaign_id, 3)
    assert first == 4
    cenv.store.r.zadd(cenv.store.keys.campaigns_retry_due, {campaign_id: 2})
    assert lifecycle.requeue_failed(cenv.store, cenv.jobs, campaign_id, 3) == 0
    cenv.pump()
    cenv.watch(campaign_id)
    assert cenv.show(campaign_id)["status"] == "sent"
    assert cenv.messenger.counts() == dict.fromkeys(emails, 1)
