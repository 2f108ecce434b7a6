"""The module-level Celery app for operators' tools (``celery -A tasks ...``)."""

from __future__ import annotations

import importlib


def test_tasks_app_reads_the_outreach_settings_lazily(monkeypatch) -> None:
    import tasks

    monkeypatch.setenv("OUTREACH_REDIS_URL", "redis://127.0.0.1:6399/3")
    monkeypatch.delenv("OUTREACH_BROKER_URL", raising=False)
    # a fresh app as `celery -A tasks` gets it: nothing is read before a tool asks
    fresh = importlib.reload(tasks)
    monkeypatch.setenv("OUTREACH_REDIS_URL", "redis://127.0.0.1:6398/4")
    conf = fresh.app.conf
    assert conf.broker_url == "redis://127.0.0.1:6398/4"
    assert [q.name for q in conf.task_queues] == ["ingest", "send", "default"]
    assert conf.task_routes["outreach.send.*"] == {"queue": "send"}
    assert conf.task_acks_late and conf.worker_prefetch_multiplier == 1
    assert "campaign-watch" in conf.beat_schedule


def test_celery_finds_the_app_in_the_tasks_package() -> None:
    from celery.app.utils import find_app

    import tasks

    assert find_app("tasks") is tasks.app
