"""Reference Celery app for bench/ingest.py: one no-op task, outreach's own Celery settings.

Started as ``celery -A bench.noop_app worker -c 2 -Q ingest,send,default`` from the
project root, with ``OUTREACH_REDIS_URL`` pointing at the benchmark's broker db, so the
broker, serializer, acks_late, prefetch and queues are exactly the product worker's.
"""

from __future__ import annotations

from celery import Celery

from outreach.config import Config
from tasks import celery_settings

app = Celery("bench_noop")
app.config_from_object(celery_settings(Config.from_env()))
app.conf.beat_schedule = {}


@app.task(name="bench.noop", ignore_result=True)
def noop() -> None:
    """Does nothing: what is left is Celery's own cost per message."""
