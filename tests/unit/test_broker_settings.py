"""Celery on RabbitMQ: what the second CI pass relies on, checked on the settings themselves."""

from __future__ import annotations

from outreach.config import Config
from tasks import QUEUES, broker_transport_options, celery_settings

AMQP = "amqp://guest:guest@127.0.0.1:5672/outreach-ci"


def test_rabbitmq_settings_survive_a_broker_restart_and_a_lost_worker() -> None:
    settings = celery_settings(Config(broker_url=AMQP))
    assert settings["broker_url"] == AMQP
    # acknowledged after the task ran: a worker lost mid-task has its delivery redelivered
    assert settings["task_acks_late"] and settings["task_reject_on_worker_lost"]
    # one unacknowledged message per worker process: nothing waits in a dead worker's buffer
    assert settings["worker_prefetch_multiplier"] == 1
    # durable queues and exchanges (kombu's default delivery mode is persistent): the queued
    # tasks are on disk when RabbitMQ restarts
    assert [q.name for q in settings["task_queues"]] == list(QUEUES)
    assert all(q.durable and q.exchange.durable for q in settings["task_queues"])
    assert settings.get("task_default_delivery_mode", "persistent") == "persistent"
    assert settings["broker_connection_retry"] and settings["broker_connection_max_retries"] is None


def test_redis_only_transport_options_are_not_sent_to_amqp() -> None:
    options = broker_transport_options(Config(), AMQP)
    # visibility_timeout means nothing to RabbitMQ (unacked deliveries come back when the
    # channel closes); the Redis socket options must not reach py-amqp
    assert not {"socket_timeout", "health_check_interval", "master_name"} & set(options)


def test_countdowns_stay_below_rabbitmqs_consumer_timeout() -> None:
    from tasks.campaigns import MAX_COUNTDOWN_SECONDS

    rabbitmq_default_consumer_timeout = 30 * 60
    longest = MAX_COUNTDOWN_SECONDS
    assert longest <= rabbitmq_default_consumer_timeout / 2
    assert longest <= Config().visibility_timeout_seconds / 2
