"""The Celery app, wired to the Flask app the way Flask's documentation shows.

Tasks are thin: ids in, one service call, retries. Task names are explicit and
stable (``outreach.<area>.<verb>``) because queued messages outlive deployments.

``app`` (module level) is for Celery's own tools with the ``OUTREACH_*`` settings:
``celery -A tasks inspect ping|active|stats``, ``celery -A tasks purge``,
``celery -A tasks events`` and Flower. Its settings are read from the environment when a
tool first asks for them, never at import. Workers and the beat run with ``outreach worker``
and ``outreach beat``, whose app ``celery_init_app`` wires to the Flask app (tasks run in its
context).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from celery import Celery, Task
from flask import Flask
from kombu import Exchange, Queue

from outreach.config import Config

QUEUES = ("ingest", "send", "default")


class _SettingsFromEnvironment(Mapping[str, Any]):
    """``celery_settings`` of ``Config.from_env()``, computed on first use (Celery reads its
    configuration lazily, so importing ``tasks`` reads no environment and opens nothing)."""

    def __init__(self) -> None:
        self._settings: dict[str, Any] | None = None

    def _loaded(self) -> dict[str, Any]:
        if self._settings is None:
            self._settings = celery_settings(Config.from_env())
        return self._settings

    def __getitem__(self, key: str) -> Any:
        return self._loaded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


app = Celery("outreach", config_source=_SettingsFromEnvironment(), set_as_current=False)


def celery_init_app(app: Flask, config: Config) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(celery_settings(config))
    from tasks.recovery import RecoverOnReconnect, harden_kombu_redis

    harden_kombu_redis()
    celery_app.steps["consumer"].add(RecoverOnReconnect)
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    # importing registers the @shared_task functions with this app
    from tasks import (  # noqa: F401
        bounces,
        campaigns,
        consent,
        conversion,
        imports,
        ingest,
        journeys,
        privacy,
        sales,
        segments,
    )

    return celery_app


def celery_settings(config: Config) -> dict[str, Any]:
    broker = config.effective_broker_url or "memory://"
    return {
        "broker_url": broker,
        "broker_connection_retry_on_startup": True,
        # a broker that goes away (restart, failover) is reconnected to forever, never given up on
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
        "broker_channel_error_retry": True,
        "broker_transport_options": broker_transport_options(config, broker),
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": "default",
        "task_queues": [Queue(name, Exchange(name), routing_key=name) for name in QUEUES],
        "task_routes": {
            "outreach.ingest.*": {"queue": "ingest"},
            "outreach.send.*": {"queue": "send"},
        },
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "worker_send_task_events": False,
        "beat_schedule": {
            "ingest-safety-net": {"task": "outreach.ingest.drain", "schedule": 10.0},
            "campaign-watch": {"task": "outreach.campaigns.tick", "schedule": 5.0},
            "conversion": {
                "task": "outreach.conversion.run",
                "schedule": config.conversion_interval_seconds,
            },
            "task-reminders": {"task": "outreach.sales.remind",
                               "schedule": config.task_reminder_seconds},
            "webhook-deliveries": {"task": "outreach.webhooks.tick",
                                   "schedule": config.webhook_tick_seconds},
            "bounce-mailbox": {"task": "outreach.bounces.poll_mailbox",
                               "schedule": config.bounce_mailbox_poll_seconds},
            # Redis is the outbox: work a request started, due in a schedule, runs from here
            "imports-due": {"task": "outreach.imports.tick",
                            "schedule": config.outbox_tick_seconds},
            "confirmations-due": {"task": "outreach.consent.tick",
                                  "schedule": config.outbox_tick_seconds},
            "retention": {"task": "outreach.retention.run",
                          "schedule": config.retention_interval_seconds},
            "erasures": {"task": "outreach.erasure.run_due",
                         "schedule": config.erasure_tick_seconds},
            "segment-windows": {"task": "outreach.segments.tick", "schedule": 2.0},
            # A/B decisions due (the campaign watch decides too, at its next look)
            "experiments-due": {"task": "outreach.experiments.tick", "schedule": 1.0},
            # journeys: inbox (entries, opens, clicks), segment moves, due steps
            "journey-steps": {"task": "outreach.journeys.tick",
                              "schedule": config.journey_tick_seconds},
        },
    }


def broker_transport_options(config: Config, broker: str) -> dict[str, Any]:
    """Visibility timeout; for a Redis broker, socket timeouts and health checks so that a
    dead or half-open connection is noticed and reconnected (a publish never hangs), and
    Sentinel's master name."""
    options: dict[str, Any] = {"visibility_timeout": config.visibility_timeout_seconds}
    if broker.startswith(("redis://", "rediss://", "sentinel://", "unix://")):
        options.update(
            socket_timeout=config.broker_socket_timeout,
            socket_connect_timeout=config.redis_connect_timeout,
            socket_keepalive=True,
            health_check_interval=config.broker_health_check_seconds,
        )
    if broker.startswith("sentinel://"):
        options["master_name"] = config.redis_sentinel_master
        options["sentinel_kwargs"] = {"socket_timeout": config.redis_socket_timeout,
                                      "socket_connect_timeout": config.redis_connect_timeout}
    return options
