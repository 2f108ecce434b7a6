"""What services may ask the task queue to do, without knowing it is Celery."""

from __future__ import annotations

from typing import Protocol


class Jobs(Protocol):
    def dispatch(self, campaign_id: str) -> None:
        """Queue the next pages of a campaign's audience."""

    def send_batch(self, campaign_id: str, batch_no: int, countdown: float = 0) -> None:
        """Send one batch of a campaign."""

    def watch(self, campaign_id: str, token: str, countdown: float = 0) -> None:
        """Look after a running campaign (schedule, stale work, completion)."""

    def retry_failed(self, campaign_id: str) -> None:
        """Queue again the failed recipients of a campaign (its retry schedule says so)."""

    def build_segment(self, segment_id: str) -> None:
        """Build a new or edited segment (the beat carries on with it if this is lost)."""


class NoJobs:
    """Jobs that do nothing: for services driven step by step (tests, CLI)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def dispatch(self, campaign_id: str) -> None:
        self.calls.append(("dispatch", (campaign_id,)))

    def send_batch(self, campaign_id: str, batch_no: int, countdown: float = 0) -> None:
        self.calls.append(("send_batch", (campaign_id, batch_no)))

    def watch(self, campaign_id: str, token: str, countdown: float = 0) -> None:
        self.calls.append(("watch", (campaign_id, token)))

    def retry_failed(self, campaign_id: str) -> None:
        self.calls.append(("retry_failed", (campaign_id,)))

    def build_segment(self, segment_id: str) -> None:
        self.calls.append(("build_segment", (segment_id,)))
