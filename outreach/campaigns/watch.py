"""The campaign watch: one look after a sending campaign, again and again until it is done.

It starts a scheduled campaign when its time comes, keeps dispatch ahead of the senders,
sends again the batches of a dead worker and gives back (or reports ``unknown``) the
claims it held, and finishes the campaign when nothing is left; ``watch_all`` restarts a
watch that died with its worker.
"""

from __future__ import annotations

import secrets

from outreach.campaigns import lifecycle, local_time, model
from outreach.campaigns.experiments import decision
from outreach.config import Config
from outreach.errors import Conflict
from outreach.platform.jobs import Jobs
from outreach.store import Store


def watch(store: Store, config: Config, jobs: Jobs, campaign_id: str,
          token: str | None = None) -> float | None:
    """One look after a campaign. Returns seconds until the next look, or ``None`` to stop."""
    keys = store.keys
    h = store.r.hgetall(keys.campaign(campaign_id))
    if not h or (token is not None and h.get("watch_token") != token):
        return None
    status = h.get("status")
    now = model.now()
    store.r.hset(keys.campaign(campaign_id), "watched_at", repr(now))
    retry_asked = status in ("sending", "paused") and store.r.zscore(
        keys.campaigns_retry_due, campaign_id) is not None
    if retry_asked:  # retry-failed was asked and its job has not finished: run it (again)
        jobs.retry_failed(campaign_id)
    if status == "scheduled":
        send_at = float(h.get("send_at") or 0)
        if send_at > now:
            return min(send_at - now, 60.0)
        try:
            h = lifecycle.transition(store, campaign_id, ("scheduled",), "sending")
        except Conflict:
            return None
        lifecycle.record_start(store, campaign_id, h)
        jobs.dispatch(campaign_id)
        return config.campaign_watch_seconds
    if status != "sending":
        if status != "paused":
            store.r.srem(keys.active_campaigns, campaign_id)
        return None
    testing = decision.look(store, jobs, campaign_id, h)  # an experiment's test phase
    live = _restart_dead_batches(store, jobs, campaign_id, now)
    released = _expire_stale_claims(store, config, campaign_id, now)
    batches = store.r.hgetall(keys.campaign_batches(campaign_id))
    if released:
        live |= _restart_batches_of(store, jobs, campaign_id, released, batches, live, now)
    for batch_no, since in batches.items():
        if batch_no not in live and now - float(since) > config.send_batch_stale_seconds:
            store.r.hset(keys.campaign_batches(campaign_id), batch_no, str(int(now)))
            jobs.send_batch(campaign_id, int(batch_no))
    waiting = local_time.look(store, config, jobs, campaign_id, h, len(batches), now)
    if not h.get("dispatched"):
        if len(batches) < config.send_window_batches:
            jobs.dispatch(campaign_id)
        return config.campaign_watch_seconds
    if retry_asked or testing:  # not finished while failed ones wait for requeue, nor before
        return config.campaign_watch_seconds  # an experiment's rest phase
    if not batches and not waiting and store.r.zcard(keys.campaign_sending(campaign_id)) == 0:
        try:
            lifecycle.transition(store, campaign_id, ("sending",), "sent",
                                 {"finished_at": str(int(now))})
        except Conflict:
            pass
        else:  # the one watcher that made it "sent" tells the webhooks
            from outreach.platform import webhooks

            webhooks.emit(store, "campaign.finished", {"campaign": model.get_campaign(store, campaign_id)})
        store.r.srem(keys.active_campaigns, campaign_id)
        return None
    return config.campaign_watch_seconds


def finish_keys(store: Store, campaign_id: str) -> list[str]:
    """The keys of ``finish_send.lua``, which records a claimed recipient's outcome."""
    keys = store.keys
    return [keys.campaign(campaign_id), keys.campaign_ledger(campaign_id),
            keys.campaign_sending(campaign_id), keys.suppressed,
            keys.campaign_errors(campaign_id), keys.campaign_soft(campaign_id),
            keys.campaign_streak(campaign_id), keys.suppression_info,
            keys.campaign_batches(campaign_id), keys.campaign_claims(campaign_id),
            keys.campaign_sent_per_10s(campaign_id), keys.campaign_domains(campaign_id),
            keys.campaign_variants(campaign_id), keys.campaign_report(campaign_id),
            keys.segment_dirty]


def _expire_stale_claims(store: Store, config: Config, campaign_id: str, now: float) -> set[str]:
    """Claims of a dead worker. A claim held by a send run whose heartbeat is gone: back to
    the queue when it never reached DATA (provably not delivered), ``unknown`` when it did.
    A claim from before heartbeats (no run recorded): ``unknown`` after the claim timeout.
    Returns the addresses released: put back in the queue, or reported ``unknown``."""
    keys = store.keys
    released: set[str] = set()
    claimed = store.r.zrange(keys.campaign_sending(campaign_id), 0, -1, withscores=True)
    if not claimed:
        return released
    emails = [email for email, _ in claimed]
    owners = store.r.hmget(keys.campaign_claims(campaign_id), emails)
    runs = sorted({o for o in owners if o})
    alive = dict(zip(runs, [bool(n) for n in _exist_each(store, runs)], strict=True))
    states = store.r.hmget(keys.campaign_ledger(campaign_id), emails)
    for (email, since), owner, state in zip(claimed, owners, states, strict=True):
        if owner and alive[owner]:
            continue
        if owner is None and now - since <= config.send_claim_timeout_seconds:
            continue
        if owner and (state or "")[:1] == "s":
            outcome, error = "requeue", ""
        else:
            outcome = "unknown"
            error = ("the worker sending it stopped after the content went out and never "
                     "reported: may or may not be delivered" if owner else
                     f"claimed more than {config.send_claim_timeout_seconds:g} s ago by a "
                     "worker that never reported: may or may not be delivered")
        recorded = store.run("finish_send", keys=finish_keys(store, campaign_id),
                             args=[email, outcome, str(int(now)), "", error, "", 0, 0, "",
                                   keys.campaign_batch(campaign_id, ""), "", "", owner or ""])
        if recorded:
            released.add(email)
    return released


def _restart_batches_of(store: Store, jobs: Jobs, campaign_id: str, emails: set[str],
                        batches: dict[str, str], live: set[str], now: float) -> set[str]:
    """Sends again, at once, the batches holding addresses whose dead worker's claim was
    released (requeued: to send them; ``unknown``: to find the batch done and finish it).
    Its batch may already have run again meanwhile (RabbitMQ redelivers a killed worker's
    task at once) and ended with those claims still held: nothing else would look before
    the stale timer (seen in CI: every address sent or ``unknown``, two batches left open,
    the campaign ``sending`` for 5 minutes). Returns the batches sent again."""
    keys = store.keys
    restarted = set()
    for batch_no in batches:
        if batch_no in live:
            continue
        if emails & set(store.r.lrange(keys.campaign_batch(campaign_id, int(batch_no)), 0, -1)):
            store.r.hset(keys.campaign_batches(campaign_id), batch_no, str(int(now)))
            jobs.send_batch(campaign_id, int(batch_no))
            restarted.add(batch_no)
    return restarted


def _exist_each(store: Store, runs: list[str]) -> list[int]:
    pipe = store.r.pipeline(transaction=False)
    for run in runs:
        pipe.exists(store.keys.send_run(run))
    return pipe.execute()


def _restart_dead_batches(store: Store, jobs: Jobs, campaign_id: str, now: float) -> set[str]:
    """Batches whose send run's heartbeat is gone (its worker was killed) are sent again at
    once, not after ``send_batch_stale_seconds``. Returns the batches with a live run."""
    keys = store.keys
    working = store.r.hgetall(keys.campaign_batch_runs(campaign_id))
    if not working:
        return set()
    items = sorted(working.items())
    live: set[str] = set()
    for (batch_no, run), exists in zip(items, _exist_each(store, [r for _, r in items]),
                                       strict=True):
        if exists:
            live.add(batch_no)
            continue
        store.run("forget_run", keys=[keys.campaign_batch_runs(campaign_id)],
                  args=[batch_no, run])
        if store.r.hexists(keys.campaign_batches(campaign_id), batch_no):
            store.r.hset(keys.campaign_batches(campaign_id), batch_no, str(int(now)))
            jobs.send_batch(campaign_id, int(batch_no))
    return live


def watch_all(store: Store, config: Config, jobs: Jobs, force: bool = False) -> int:
    """The safety net (beat, and every worker start): a campaign whose watch stopped
    (its task died with a worker) gets a new one. Returns how many were restarted.

    ``force`` (a worker starting) restarts every active campaign's watch: the watch's
    next look may be a countdown task held by a worker that just died, which looks
    fresh for a while. The new token stops the old chain if it ever runs again."""
    keys = store.keys
    restarted = 0
    now = model.now()
    for campaign_id in store.r.smembers(keys.active_campaigns):
        watched_at = float(store.r.hget(keys.campaign(campaign_id), "watched_at") or 0)
        if force or now - watched_at > max(10.0, 5 * config.campaign_watch_seconds):
            token = secrets.token_hex(4)
            store.r.hset(keys.campaign(campaign_id), mapping={"watch_token": token,
                                                              "watched_at": repr(now)})
            jobs.watch(campaign_id, token)
            restarted += 1
    return restarted
