"""Container healthchecks: ``outreach worker-ping`` and ``outreach beat-ping``.

``worker-ping`` asks this host's Celery worker node (``celery@<hostname>`` unless ``--node``)
over the broker's control channel and exits 0 only when it answers. ``beat-ping`` reads the
heartbeat that ``outreach beat``'s scheduler writes on every tick (``HeartbeatScheduler``)
and exits 0 only when it is younger than ``--max-age`` seconds.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from typing import Any

import click
from celery.beat import PersistentScheduler
from kombu.exceptions import OperationalError


class HeartbeatScheduler(PersistentScheduler):
    """Celery beat's default scheduler that also records each tick's time in the store."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from outreach import store as store_module
        from outreach.config import Config

        self._outreach_store = store_module.from_config(Config.from_env())
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        interval = super().tick(*args, **kwargs)
        # the store being away must not stop the schedule; the healthcheck notices
        store = self._outreach_store
        with contextlib.suppress(Exception):
            store.r.set(store.keys.beat_heartbeat, f"{time.time():.3f}", ex=3600)
        return min(interval, 5.0)


def _app() -> Any:
    """The service's Flask app as the other commands build it (checks included)."""
    from outreach import create_app
    from outreach.config import Config

    config = Config.from_env()
    if config.embedded:
        click.echo("Set OUTREACH_REDIS_URL.", err=True)
        sys.exit(2)
    return create_app(config)


@click.command("worker-ping")
@click.option("--node", default=None, help="Worker node name (default: celery@<this hostname>; "
                                           "give the -n you started the worker with).")
@click.option("--timeout", default=5.0, show_default=True, type=float)
def worker_ping(node: str | None, timeout: float) -> None:
    """Exit 0 when the worker node answers a control ping, else 1."""
    celery_app = _app().extensions["celery"]
    node = node or f"celery@{socket.gethostname()}"
    replies = None
    for attempt in (1, 2):  # a broker connection reset mid-ping (seen on RabbitMQ): once more
        try:
            replies = celery_app.control.ping(destination=[node], timeout=timeout)
            break
        except (OSError, OperationalError) as exc:
            if attempt == 2:
                click.echo(f"error: the broker did not answer the ping: {exc}", err=True)
                sys.exit(1)
    if any(node in reply for reply in replies or ()):
        click.echo(f"{node}: pong")
        return
    click.echo(f"error: worker {node} did not answer within {timeout:g} s", err=True)
    sys.exit(1)


@click.command("beat-ping")
@click.option("--max-age", default=30.0, show_default=True, type=float,
              help="Seconds since the beat's last tick that still count as alive.")
def beat_ping(max_age: float) -> None:
    """Exit 0 when ``outreach beat`` ticked within ``--max-age`` seconds, else 1."""
    store = _app().extensions["outreach.store"]
    raw = store.r.get(store.keys.beat_heartbeat)
    if raw is None:
        click.echo("error: no beat heartbeat in the store", err=True)
        sys.exit(1)
    age = time.time() - float(raw)
    if age > max_age:
        click.echo(f"error: the beat's last tick was {age:.0f} s ago", err=True)
        sys.exit(1)
    click.echo(f"beat: last tick {age:.1f} s ago")
