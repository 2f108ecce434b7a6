"""Opens, clicks and unsubscribes from signed links in campaign messages.

Opens count once per (campaign, person) because mail clients prefetch pixels;
clicks count once per distinct link; both raise a lead's engagement score.
Clicks redirect only to the link stored for the token, never to a URL in it.
"""

from __future__ import annotations

import time
from typing import Any

from outreach.config import Config
from outreach.errors import NotFound
from outreach.people.consent import withdraw_consent_of
from outreach.people.segments import membership
from outreach.people.suppressions import suppress
from outreach.platform import refs
from outreach.store import Store
from outreach.tokens import Tokens


def _record(store: Store, campaign_id: str, ref: str, distinct: str, unique_stat: str,
            stat: str, gain: int, entry: str) -> bool:
    keys = store.keys
    first = store.run("track_event", keys=[
        keys.campaign(campaign_id), keys.campaign_seen(campaign_id), keys.person_events(ref),
        keys.person(ref), keys.lead_scores,
    ], args=[distinct, unique_stat, stat, gain, refs.lead_id_of(ref), entry])
    if first:
        kind = entry.partition("|")[0]
        membership.touch(store, ref, {f"event:{kind}", "field:score"})
    return bool(first)


def _payload(tokens: Tokens, purpose: str, token: str, size: int) -> list[Any]:
    payload = tokens.read(purpose, token)
    if payload is None or len(payload) != size or not all(isinstance(p, str) for p in payload):
        raise NotFound("This link is not valid.")
    return payload


def record_open(store: Store, config: Config, token: str) -> None:
    campaign_id, ref = _payload(Tokens(config.secret_key), "open", token, 2)
    if not store.r.exists(store.keys.campaign(campaign_id)):
        return
    _record(store, campaign_id, ref, f"o|{ref}", "", "opened", config.score_open,
            f"open|{campaign_id}|{int(time.time())}|")


def record_click(store: Store, config: Config, token: str) -> str:
    """The stored URL to redirect to."""
    campaign_id, ref, link_id = _payload(Tokens(config.secret_key), "click", token, 3)
    url = store.r.hget(store.keys.campaign_links(campaign_id), link_id)
    if not url:
        raise NotFound("This link is not valid.")
    _record(store, campaign_id, ref, f"c|{ref}|{link_id}", f"C|{ref}", "clicked",
            config.score_click, f"click|{campaign_id}|{int(time.time())}|{link_id}")
    # a click proves the message was opened, even when images were blocked
    _record(store, campaign_id, ref, f"o|{ref}", "", "opened", config.score_open,
            f"open|{campaign_id}|{int(time.time())}|")
    return url


def unsubscribe_target(store: Store, config: Config, token: str) -> dict[str, Any]:
    """Who a token would unsubscribe (for the confirm page)."""
    campaign_id, ref = _payload(Tokens(config.secret_key), "unsubscribe", token, 2)
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
        membership.touch_many(store, [r for r in (lead_id and refs.lead_ref(lead_id),
                                                  contact_id and refs.contact_ref(contact_id)) if r],
                              {"field:consent"})
        if newly:
            from outreach.platform import webhooks

            webhooks.emit(store, "person.unsubscribed", {
                "email": email, "lead_id": lead_id, "contact_id": contact_id,
                "campaign_id": target["campaign_id"]})
    if store.r.exists(keys.campaign(target["campaign_id"])):
        _record(store, target["campaign_id"], target["ref"], f"u|{target['ref']}", "",
                "unsubscribed", 0, f"unsubscribe|{target['campaign_id']}|{int(time.time())}|")
    return target
