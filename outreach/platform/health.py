"""Readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from outreach.config import Config
from outreach.store import Store


def readiness(store: Store, config: Config, celery_app: Any | None) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    try:
        store.r.ping()
        checks["store"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["store"] = f"unreachable: {exc}"
    else:
        try:
            policy = store.r.config_get("maxmemory-policy").get("maxmemory-policy", "noeviction")
        except Exception:  # noqa: BLE001 - managed Redis may forbid CONFIG
            policy = "unknown"
        checks["maxmemory_policy"] = policy
        if policy not in ("noeviction", "unknown"):
            checks["store"] = f"evicting ({policy}): set maxmemory-policy noeviction"
    if config.embedded or celery_app is None:
        checks["broker"] = "ok" if not config.embedded else "ok (in-memory)"
    else:
        try:
            with celery_app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"unreachable: {exc}"
    ready = checks["store"] == "ok" and checks["broker"].startswith("ok")
    return {"ready": ready, "checks": checks}


def prometheus_text(store: Store) -> str:
    keys = store.keys
    pipe = store.r.pipeline(transaction=False)
    pipe.zcard(keys.leads)
    pipe.zcard(keys.contacts)
    pipe.zcard(keys.accounts)
    pipe.zcard(keys.opportunities)
    pipe.zcard(keys.lists)
    pipe.xlen(keys.intake_stream)
    pipe.hlen(keys.suppressed)
    pipe.hgetall(keys.metrics)
    leads, contacts, accounts, opps, lists, queued, suppressed, counters = pipe.execute()
    lines = [
        ("outreach_leads", "gauge", "Leads held", leads),
        ("outreach_contacts", "gauge", "Contacts held", contacts),
        ("outreach_accounts", "gauge", "Accounts held", accounts),
        ("outreach_opportunities", "gauge", "Opportunities held", opps),
        ("outreach_lists", "gauge", "Marketing lists", lists),
        ("outreach_intake_queued", "gauge", "Registrations accepted, not yet ingested", queued),
        ("outreach_suppressed_addresses", "gauge", "Addresses never mailed", suppressed),
    ]
    out: list[str] = []
    for name, kind, help_text, value in lines:
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
    for name, value in sorted((counters or {}).items()):
        metric = f"outreach_{name}_total"
        out += [f"# TYPE {metric} counter", f"{metric} {value}"]
    return "\n".join(out) + "\n"
