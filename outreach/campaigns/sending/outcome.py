"""What became of one claimed recipient, recorded in the ledger (``finish_send``), and the
notes and pauses a refusal or a failing relay leads to."""

from __future__ import annotations

import json
import logging
import time

from outreach.campaigns import lifecycle, watch
from outreach.config import Config
from outreach.mail.smtp.classify import (
    ConnectionFailure,
    DeliveryError,
    PermanentFailure,
    SessionFailure,
    UnsupportedAddress,
    enhanced_code,
)
from outreach.store import Store

log = logging.getLogger(__name__)


class Outcome:
    """Records what became of one claimed recipient (``finish_send``)."""

    def __init__(self, store: Store, config: Config, campaign_id: str, email: str,
                 run: str = "") -> None:
        self.store, self.config, self.campaign_id, self.email = store, config, campaign_id, email
        self.run = run

    def finish(self, outcome: str, *, error: str = "", suppress: str = "", breaker: str = "",
               info: str = "", pause_reason: str = "", mark_segments: bool = False) -> int:
        """``mark_segments``: a saved segment reads this campaign's sends, so a ``sent``
        marks the person for re-evaluation (``Keys.segment_dirty``) in the same script."""
        keys, cid = self.store.keys, self.campaign_id
        return int(self.store.run("finish_send", keys=watch.finish_keys(self.store, cid), args=[
            self.email, outcome, str(int(time.time())), suppress, error[:500], breaker,
            self.config.send_breaker_refusals, self.config.send_soft_retries, info,
            keys.campaign_batch(cid, ""), f"bounced:{cid}", pause_reason[:500], self.run,
            "1" if mark_segments else ""]))

    def refused(self, exc: PermanentFailure) -> str:
        """A permanent refusal: failed; suppressed only for a hard bounce; counted by the
        circuit breaker when it says something about the relay (not an address we cannot
        carry)."""
        now = int(time.time())
        suppress = f"bounced:{self.campaign_id}" if exc.suppress else ""
        info = json.dumps({"reason": "hard_bounce", "at": now, "campaign_id": self.campaign_id,
                           "reply": exc.reply[:500]}) if suppress else ""
        breaker = "" if isinstance(exc, UnsupportedAddress) else answer_kind(exc)
        reason = (f"the relay refused {self.config.send_breaker_refusals} recipients in a row "
                  f"with the same answer, so it is the relay's answer, not theirs (none was "
                  f"failed or suppressed for it): {exc.reply}")
        done = self.finish("failed", error=exc.reply, suppress=suppress, breaker=breaker,
                           info=info, pause_reason=reason)
        if done == 2:
            log.warning("campaign %s paused by the circuit breaker: %s", self.campaign_id,
                        exc.reply)
            return "tripped"
        return "failed"


def answer_kind(exc: DeliveryError) -> str:
    """What makes two refusals "the same kind of answer": the enhanced status code when
    there is one (``5.7.1``), else the reply code (``554``)."""
    number, _, text = exc.reply.partition(" ")
    code = exc.code or (int(number) if number.isdigit() else 0)
    status = enhanced_code(code, text)
    return ".".join(map(str, status)) if status else str(code)


def session_failure(store: Store, config: Config, campaign_id: str,
                     exc: SessionFailure) -> None:
    """The relay or the sender's settings refused: pause after a few tries when it needs an
    operator (5xx, TLS), after ``send_max_consecutive_failures`` when the relay cannot be
    reached; a relay that answers 4xx is only waited for."""
    if exc.fatal:
        note_error(store, campaign_id, str(exc), count=True, config=config,
                    limit=config.send_session_retries)
    elif isinstance(exc, ConnectionFailure):
        note_error(store, campaign_id, str(exc), count=True, config=config)
    else:
        note_error(store, campaign_id, str(exc))


def note_error(store: Store, campaign_id: str, message: str, *, count: bool = False,
                config: Config | None = None, limit: int | None = None) -> None:
    key = store.keys.campaign(campaign_id)
    store.r.hset(key, "last_error", message[:500])
    if not count or config is None:
        return
    failures = int(store.r.hincrby(key, "consecutive_failures", 1))
    if failures >= (limit or config.send_max_consecutive_failures):
        log.warning("pausing campaign %s after %d delivery failures", campaign_id, failures)
        lifecycle.auto_pause(
            store, campaign_id,
            f"{message[:400]} (paused after {failures} consecutive delivery failures)",
        )
