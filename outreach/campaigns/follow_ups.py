"""Follow-ups: a draft campaign to a sent campaign's recipients who did not open (or click).

The follow-up has its own audience instead of lists: the people the original's ledger
says were sent (``S``: delivered, not bounced, not complained) and whose 'seen' hash has
no human open (``o|<ref>``; a click is an open too) or no click (``C|<ref>``), stored as
a zset of refs (``Keys.campaign_audience``) that dispatch pages like a list. At send,
dispatch checks each person again as for any campaign (consent, suppression, erasure,
disqualification; ``dispatch.verdicts``) and drops whoever opened or clicked the original
since the follow-up was made (``still_to_follow``); the ledger mails each address once.
"""

from __future__ import annotations

from typing import Any

from outreach.campaigns import model, templates
from outreach.config import Config
from outreach.errors import Conflict, Invalid
from outreach.platform.paging import existing_hash
from outreach.store import Store

TARGETS = {"non_openers": "o", "non_clickers": "C"}
PAGE = 1000


def create_follow_up(store: Store, config: Config, campaign_id: str, data: dict[str, Any]
                     ) -> dict[str, Any]:
    """``data``: ``to`` (``non_openers`` | ``non_clickers``), ``name``, ``template_id``?
    (default: the original's), ``subject``? (a new template: the chosen one's body under
    that subject). 404 for an unknown campaign, 409 when it has not started sending."""
    keys = store.keys
    original = existing_hash(store, keys.campaign(campaign_id), "campaign", campaign_id)
    if original.get("status") in ("draft", "scheduled") or not original.get("started_at"):
        raise Conflict(f"The campaign is {original.get('status')}: nothing was sent yet.")
    template_id = data.get("template_id") or original["template_id"]
    template = store.r.hgetall(keys.template(template_id))
    if not template:
        raise Invalid("Validation failed.", {"template_id": ["No such template."]})
    if data.get("subject"):
        template_id = templates.create_template(store, config, {
            "name": f"{template['name']} ({data['name']})", "subject": data["subject"],
            "html": template["html"], "text": template["text"]})["id"]
    follow_up_id, n = store.next_id("campaign", "cp")
    mark = TARGETS[data["to"]]
    audience = keys.campaign_audience(follow_up_id)
    seen = keys.campaign_seen(campaign_id)
    position = 0
    cursor = 0
    while True:
        cursor, entries = store.r.hscan(keys.campaign_ledger(campaign_id), cursor, count=PAGE)
        sent = sorted({value.split("|", 2)[1] for value in entries.values()
                       if value.startswith("S|")})
        if sent:
            done = store.r.hmget(seen, [f"{mark}|{ref}" for ref in sent])
            members = {}
            for ref, engaged in zip(sent, done, strict=True):
                if not engaged:
                    position += 1
                    members[ref] = position
            if members:
                store.r.zadd(audience, members)
        if not cursor:
            break
    record = model.draft_record(config, {**data, "template_id": template_id,
                                         "from_email": original.get("from_email"),
                                         "rate_per_second": float(original.get("rate") or 0)}, [])
    record.update({"follow_up_of": campaign_id, "follow_up_to": data["to"],
                   "audience_estimate": str(position)})
    model.save_draft(store, follow_up_id, n, record)
    return model.get_campaign(store, follow_up_id)


def still_to_follow(store: Store, h: dict[str, str], triples: list[str]) -> list[str]:
    """``dispatch.verdicts`` triples (email, ref, verdict) of a follow-up's page with the
    people who have opened (or clicked) the original since turned to '-' (skipped)."""
    original, to = h.get("follow_up_of"), h.get("follow_up_to")
    if not original or to not in TARGETS or not triples:
        return triples
    refs_ = triples[1::3]
    engaged = store.r.hmget(store.keys.campaign_seen(original),
                            [f"{TARGETS[to]}|{ref}" for ref in refs_])
    out = list(triples)
    for i, done in enumerate(engaged):
        if done:
            out[3 * i + 2] = "-"
    return out
