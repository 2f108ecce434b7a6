"""A campaign's report: rates, links, hours and receiving domains.

Read from counters that the scripts recording the events keep as they happen
(``track_event.lua``: links, hours, domains' opens and clicks; ``finish_send.lua``: the
domains' sends; ``bounce.lua``: their bounces), never by scanning the ledger, so a report
costs the same at 100 or 1M recipients. Opens are human opens (``machine_opens``).
"""

from __future__ import annotations

from typing import Any

from outreach.campaigns import model
from outreach.campaigns.experiments import decision
from outreach.platform.paging import existing_hash
from outreach.store import Store
from outreach.vocabulary import iso

TOP_DOMAINS = 10


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def campaign_report(store: Store, campaign_id: str, *, top_domains: int = TOP_DOMAINS
                    ) -> dict[str, Any]:
    """``{"rates", "links", "timeline", "domains", "variants"}`` as API.md says: rates are
    fractions of ``sent`` (``click_to_open``: clicked / opened); ``links`` with the most
    clicked first (every click, and the people who clicked); ``timeline`` per hour (first human
    opens, human clicks); the ``top_domains`` receiving domains by messages sent, their
    ``opened``/``clicked`` counting people."""
    keys = store.keys
    h = existing_hash(store, keys.campaign(campaign_id), "campaign", campaign_id)
    stats = model.campaign_view(campaign_id, h)["stats"]
    sent = stats["sent"]
    rates = {
        "delivered": _rate(max(0, sent - stats["bounced"]), sent),
        "opened": _rate(stats["opened"], sent),
        "clicked": _rate(stats["clicked"], sent),
        "click_to_open": _rate(stats["clicked"], stats["opened"]),
        "unsubscribed": _rate(stats["unsubscribed"], sent),
        "bounced": _rate(stats["bounced"], sent),
        "complained": _rate(stats["complained"], sent),
    }
    pipe = store.r.pipeline(transaction=False)
    pipe.hgetall(keys.campaign_links(campaign_id))
    pipe.hgetall(keys.campaign_hourly(campaign_id))
    pipe.zrevrange(keys.campaign_domains(campaign_id), 0, top_domains - 1, withscores=True)
    links, hourly, domains = pipe.execute()
    fields = [f"l|{link_id}|{part}" for link_id in links for part in ("c", "u")]
    fields += [f"d|{domain}|{part}" for domain, _ in domains for part in ("b", "o", "c")]
    values = dict(zip(fields, store.r.hmget(keys.campaign_report(campaign_id), fields), strict=True)
                  ) if fields else {}

    def count(field: str) -> int:
        return max(0, int(values.get(field) or 0))

    hours: dict[int, dict[str, int]] = {}
    for field, n in hourly.items():
        hour, _, part = field.partition("|")
        hours.setdefault(int(hour), {"opened": 0, "clicked": 0})[
            "opened" if part == "o" else "clicked"] += int(n)
    return {
        "rates": rates,
        "links": sorted(({"url": url, "clicks": count(f"l|{link_id}|c"),
                          "unique_clicks": count(f"l|{link_id}|u")}
                         for link_id, url in links.items()),
                        key=lambda link: (-link["clicks"], link["url"])),
        "timeline": [{"hour": iso(hour), "opened": max(0, n["opened"]),
                      "clicked": max(0, n["clicked"])} for hour, n in sorted(hours.items())
                     if n["opened"] > 0 or n["clicked"] > 0],
        "domains": [{"domain": domain, "sent": int(score), "bounced": count(f"d|{domain}|b"),
                     "opened": count(f"d|{domain}|o"), "clicked": count(f"d|{domain}|c")}
                    for domain, score in sorted(domains, key=lambda d: (-d[1], d[0]))],
        "variants": decision.variant_rows(store, campaign_id, h),
    }
