"""Opens, clicks and unsubscribes from signed links in campaign messages.

Opens count once per (campaign, person) because mail clients prefetch pixels;
clicks count once per distinct link; both raise a lead's engagement score. Opens and
clicks no person made count as ``opened_machine`` (the rules: ``machine_opens``).
Clicks redirect only to the link stored for the token, never to a URL in it.
"""

from __future__ import annotations

import time
from typing import Any

from outreach.campaigns import machine_opens, model
from outreach.config import Config
from outreach.errors import NotFound
from outreach.people import scoring
from outreach.people.consent import withdraw_consent_of
from outreach.people.segments import dirty
from outreach.people.suppressions import suppress
from outreach.platform import refs
from outreach.store import Store
from outreach.tokens import Tokens


def _record(store: Store, config: Config, campaign_id: str, ref: str, kind: str, *,
            link_id: str = "", user_agent: str | None = None) -> int:
    """Count one event (``track_event.lua``; the machine-open rules are ``machine_opens``)."""
    keys = store.keys
    scoring.ensure_decay(store, config)  # the script scales points to the stored epoch
    now = model.now()
    at = int(now)
    entry = f"{kind}|{campaign_id}|{at}|{link_id}"
    machine = kind != "unsubscribe" and machine_opens.is_machine_agent(user_agent)
    result = int(store.run("track_event", keys=[
        keys.campaign(campaign_id), keys.campaign_seen(campaign_id), keys.person_events(ref),
        keys.person(ref), keys.lead_scores, keys.campaign_ledger(campaign_id),
        keys.campaign_report(campaign_id), keys.campaign_hourly(campaign_id),
        keys.campaign_links(campaign_id), keys.lead_candidates, keys.campaign_variants(campaign_id),
        keys.score_decay, keys.lead_score_items(refs.lead_id_of(ref) or "-"),
        keys.segments, keys.segment_dirty,
        keys.journey_inbox,
    ], args=[kind, ref, link_id, f"{now:.3f}", "1" if machine else "0",
             config.machine_open_seconds, config.score_open, config.score_click,
             refs.lead_id_of(ref), entry, f"open|{campaign_id}|{at}|",
             machine_opens.SCANNER_BURST_SECONDS, machine_opens.SCANNER_MIN_LINKS, campaign_id]))
    if result or kind == "unsubscribe":  # a human open, a new click, a scanner's taken back
        # a click also proves an open (and a scanner's burst takes opens back)
        changed = {"event:click", "event:open"} if kind == "click" else {f"event:{kind}"}
        dirty.touch(store, ref, changed | {"field:score"})
    return result


def _payload(config: Config, purpose: str, token: str, size: int) -> list[Any]:
    payload = Tokens(config.secret_key, config.secret_key_fallbacks).read(purpose, token)
    if payload is None or len(payload) != size or not all(isinstance(p, str) for p in payload):
        raise NotFound("This link is not valid.")
    return payload


def record_open(store: Store, config: Config, token: str, user_agent: str | None = None) -> None:
    campaign_id, ref = _payload(config, "open", token, 2)
    if not store.r.exists(store.keys.campaign(campaign_id)):
        return
    _record(store, config, campaign_id, ref, "open", user_agent=user_agent)


def record_click(store: Store, config: Config, token: str, user_agent: str | None = None) -> str:
    """The stored URL to redirect to."""
    campaign_id, ref, link_id = _payload(config, "click", token, 3)
    url = store.r.hget(store.keys.campaign_links(campaign_id), link_id)
    if not url:
        raise NotFound("This link is not valid.")
    _record(store, config, campaign_id, ref, "click", link_id=link_id, user_agent=user_agent)
    return url


def unsubscribe_target(store: Store, config: Config, token: str) -> dict[str, Any]:
    """Who a token would unsubscribe (for the confirm page)."""
    campaign_id, ref = _payload(config, "unsubscribe", token, 2)
    return {"campaign_id": campaign_id, "ref": ref, "email": store.r.hget(store.keys.person(ref), "email")}


def unsubscribe(store: Store, config: Config, token: str) -> dict[str, Any]:
    """Suppress the address for all future campaigns and withdraw consent. Idempotent."""
    target = unsubscribe_target(store, config, token)
    keys = store.keys
    email = target["email"]
    if email:
        # an unsubscribe outranks a bounce, never a complaint (the one precedence rule)
        newly = suppress(store, email, "unsubscribed",
                         {"reason": "unsubscribed", "at": int(time.time()),
                          "campaign_id": target["campaign_id"]})
        # consent withdrawn, with its evidence, once
        lead_id, contact_id = withdraw_consent_of(store, email, how="unsubscribe")
        dirty.touch_many(store, [r for r in (lead_id and refs.lead_ref(lead_id),
                                                  contact_id and refs.contact_ref(contact_id)) if r],
                              {"field:consent"})
        if newly:
            from outreach.platform import webhooks

            webhooks.emit(store, "person.unsubscribed", {
                "email": email, "lead_id": lead_id, "contact_id": contact_id,
                "campaign_id": target["campaign_id"]})
    if store.r.exists(keys.campaign(target["campaign_id"])):
        _record(store, config, target["campaign_id"], target["ref"], "unsubscribe")
    return target
