"""Imports and double opt-in mails are in Redis with the request that starts them (issue
18): the publish is a nudge; the beat's ticks run what is due; no import stays running."""

from __future__ import annotations

import io

import pytest
import redis

from outreach.people import confirmations
from outreach.people.imports import jobs as imports
from outreach.people.imports import run as import_run

FILE = b"email,first_name\nann@example.com,Ann\nbob@example.com,Bob\n"


def _broken(*_args, **_kwargs):
    raise ConnectionError("broker down")


def _upload(env, content: bytes = FILE):
    return env.client.post("/api/v1/imports", headers=env.auth, data={
        "file": (io.BytesIO(content), "x.csv"), "type": "leads"},
        content_type="multipart/form-data")


def test_an_import_with_the_broker_down_is_run_by_the_beat_once(env) -> None:
    env.app.extensions["outreach.import_jobs"] = _broken
    response = _upload(env)
    assert response.status_code == 202, response.get_json()
    import_id = response.get_json()["id"]
    assert env.store.r.zscore(env.store.keys.imports_due, import_id) is not None
    # the beat's tick, later (the nudge's grace has passed): the job is claimed once
    later = env.store.r.zscore(env.store.keys.imports_due, import_id) + 1
    assert imports.claim_due_jobs(env.store, env.config, now=later) == [import_id]
    assert imports.claim_due_jobs(env.store, env.config, now=later) == []
    assert imports.run_job(env.store, env.config, import_id)["status"] == "done"
    assert env.get(f"/api/v1/imports/{import_id}").get_json()["created"] == 2
    # done: out of the schedule, its file and its share of the quota gone
    assert env.store.r.zscore(env.store.keys.imports_due, import_id) is None
    assert not env.store.r.exists(env.store.keys.import_file(import_id))
    assert int(env.store.r.hget(env.store.keys.import_bytes, "total")) == 0


def test_an_unexpected_error_fails_the_import_with_the_reason(env, monkeypatch) -> None:
    env.app.extensions["outreach.import_jobs"] = lambda import_id: None
    import_id = _upload(env).get_json()["id"]

    def boom(*_args, **_kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(imports, "run_import", boom)
    job = imports.run_job(env.store, env.config, import_id)
    assert job["status"] == "failed" and "KeyError" in job["error"] and "surprise" in job["error"]
    assert env.store.r.zscore(env.store.keys.imports_due, import_id) is None


def test_a_store_error_is_raised_for_a_retry_and_gives_the_lease_back(env, monkeypatch) -> None:
    env.app.extensions["outreach.import_jobs"] = lambda import_id: None
    import_id = _upload(env).get_json()["id"]
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise redis.ConnectionError("store restarting")
        return real(*args, **kwargs)

    real = import_run.run_import
    monkeypatch.setattr(imports, "run_import", flaky)
    with pytest.raises(redis.ConnectionError):
        imports.run_job(env.store, env.config, import_id)
    assert env.get(f"/api/v1/imports/{import_id}").get_json()["status"] == "queued"
    assert imports.run_job(env.store, env.config, import_id)["status"] == "done"


def test_uploads_share_a_global_quota_checked_before_anything_is_stored(make_env) -> None:
    with make_env(import_upload_quota_bytes=300) as env:
        env.app.extensions["outreach.import_jobs"] = lambda import_id: None
        first = _upload(env)
        assert first.status_code == 202
        refused = _upload(env, FILE * 3)
        assert refused.status_code == 503, refused.get_json()
        assert env.store.r.zcard(env.store.keys.imports_due) == 1
        imports.run_job(env.store, env.config, first.get_json()["id"])
        assert _upload(env, FILE * 3).status_code == 202


DOI = {"slug": "guide", "kind": "white_paper", "title": "The Guide",
       "form": {"double_opt_in": True, "consent_text": "Send me the newsletter."}}


def test_a_double_opt_in_registration_with_the_broker_down_is_mailed_by_the_beat(cenv) -> None:
    from tasks.consent import tick

    assert cenv.post("/api/v1/assets", json=DOI).status_code == 201
    cenv.app.extensions["outreach.consent_mail"] = _broken
    cenv.app.extensions["outreach.messenger"] = cenv.messenger
    response = cenv.register("ann@example.com", consent=True)
    assert response.status_code == 202, response.get_json()
    again = cenv.register("ann@example.com", consent=True)
    assert again.status_code == 202
    (waiting,) = confirmations.pending(cenv.store)
    assert (waiting["email"], waiting["asset"]) == ("ann@example.com", "guide")
    # the broker is back: the beat's tick takes it once due and a worker sends it (eagerly)
    cenv.store.r.zadd(cenv.store.keys.confirmations_due,
                      {confirmations.entry("ann@example.com", "guide", 1): 0})
    cenv.app.extensions["celery"].conf.task_always_eager = True
    with cenv.app.app_context():
        assert tick.apply().result == 1
        assert tick.apply().result == 0
    assert cenv.messenger.recipients == ["ann@example.com"]
    assert confirmations.pending(cenv.store) == []


def test_a_job_whose_worker_died_is_taken_again_by_the_beat_once_its_lease_lapses(env) -> None:
    env.app.extensions["outreach.import_jobs"] = lambda import_id: None
    import_id = _upload(env).get_json()["id"]
    due = env.store.r.zscore(env.store.keys.imports_due, import_id)
    assert imports.claim_due_jobs(env.store, env.config, now=due) == [import_id]
    # its worker takes it and dies without a word: running, lease held
    assert imports.claim_job(env.store, env.config, import_id, now=due)
    lapsed = due + env.config.import_lease_seconds + 1
    assert imports.claim_due_jobs(env.store, env.config, now=due + 1) == []
    assert imports.claim_due_jobs(env.store, env.config, now=lapsed) == [import_id]
    env.store.r.hset(env.store.keys.import_job(import_id), "lease_until", 0)
    job = imports.run_job(env.store, env.config, import_id)
    assert job["status"] == "done" and job["created"] == 2
    assert env.store.r.zscore(env.store.keys.imports_due, import_id) is None


def test_a_send_batch_that_meets_a_store_error_is_retried(cenv, monkeypatch) -> None:
    """``outreach.send.batch`` retries store errors (with backoff), as the watch and the
    drain do, instead of failing and leaving the batch to the stale timer."""
    import redis

    from outreach.campaigns.sending import batch
    from tasks.campaigns import send_batch

    def down(*_: object, **__: object) -> None:
        raise redis.exceptions.ConnectionError("the store went away")

    from celery.exceptions import Retry

    asked: list[BaseException] = []

    def retry(*_: object, exc: BaseException | None = None, **__: object) -> None:
        asked.append(exc)  # type: ignore[arg-type]
        raise Retry(exc=exc)  # the worker would publish it again with its backoff

    monkeypatch.setattr(batch, "send_batch", down)
    monkeypatch.setattr(send_batch, "retry", retry)
    cenv.app.extensions["outreach.messenger"] = cenv.messenger
    with cenv.app.app_context():
        result = send_batch.apply(args=["cp1", 1])
    assert result.state == "RETRY", result.state
    assert [type(e) for e in asked] == [redis.exceptions.ConnectionError]
