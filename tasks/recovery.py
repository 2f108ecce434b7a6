"""Workers pick up by themselves after the broker (or the store) comes back.

Celery restarts its consumer after a lost broker connection (``broker_connection_retry``,
forever). What was in flight then is not redelivered by Celery soon: a Redis broker
restores unacknowledged messages only after the visibility timeout, and countdown
tasks held by the worker (the campaign watch's next look) can be gone. So every time
the consumer starts again after a reconnect, this step asks for the same recovery a
starting worker does: an ingest drain (which takes over pending registrations) and a
forced campaign tick (new watches, which re-enqueue stale batches). Both are idempotent.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from celery import bootsteps

log = logging.getLogger(__name__)


class RecoverOnReconnect(bootsteps.StartStopStep):
    """A consumer step: ``start`` runs at the first start and after every reconnect."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.starts = 0

    def start(self, parent: Any) -> None:
        self.starts += 1
        if self.starts == 1:
            return  # the first start: ``worker_ready`` (tasks.ingest) recovers
        log.warning("broker connection re-established: recovering ingest and campaigns")
        try:
            parent.app.send_task("outreach.ingest.drain", queue="ingest")
            parent.app.send_task("outreach.campaigns.tick", kwargs={"force": True},
                                 queue="default")
        except Exception:  # noqa: BLE001 - the next reconnect or beat's safety net retries
            log.warning("could not ask for recovery after a reconnect", exc_info=True)


def harden_kombu_redis() -> None:
    """Make a closed Redis channel fail with a connection error instead of AttributeError.

    With kombu 5.7 / Celery 5.7, when the Redis broker dies while a task is unacknowledged,
    the consumer collects the connection (the transport's ``client`` becomes None) and then
    closes it again; closing the channel tries to restore the unacked messages, which
    builds connection parameters from ``transport.client`` -> ``AttributeError: 'NoneType'
    object has no attribute 'hostname'`` -> "Unrecoverable error" and the worker exits
    (seen in tests/integration/test_store_faults.py). A connection error here is what
    every caller already ignores: the messages stay in the broker's unacked index (restored
    after the visibility timeout) and our own recovery (``RecoverOnReconnect``) takes over.
    """
    try:
        from kombu.transport import redis as kombu_redis
    except ImportError:  # pragma: no cover - the redis extra is a dependency
        return
    channel = kombu_redis.Channel
    if getattr(channel._connparams, "_outreach_hardened", False):
        return
    original = channel._connparams

    @functools.wraps(original)
    def _connparams(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.connection is None or self.connection.client is None:
            import redis

            raise redis.ConnectionError("the broker connection is closed")
        return original(self, *args, **kwargs)

    _connparams._outreach_hardened = True  # type: ignore[attr-defined]
    channel._connparams = _connparams  # type: ignore[method-assign]
