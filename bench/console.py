"""Console pages at 100k leads: server time per request (median and p95).

Seeds, through the product's own code paths, 100,000 leads over 20 white papers
(registrations spread over the last 30 days, fed to the ingest service in batches as the
worker does), 1,000 opportunities (qualify), 200 campaigns (the first 10 of them sending
with stats), then signs in once and times each page in process (Flask test client over
real Redis: the app's whole request handling, without the network and HTTP parsing).

    .venv-dev/bin/python bench/console.py [--leads 100000] [--requests 60]

Runs its own redis-server (``redis-server`` on a free port, no persistence, a temporary
directory), so no other benchmark's FLUSHDB can reach its data; stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_note  # noqa: E402
from _redis import private_server  # noqa: E402

PASSWORD = "bench console password"


def seed(store, config, leads: int, opportunities: int, campaigns: int) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from outreach.campaigns.model import create_campaign
    from outreach.campaigns.templates import create_template
    from outreach.people.ingest import apply_batch
    from outreach.platform.users import create_user
    from outreach.sales.qualify import qualify

    now_ms = int(time.time() * 1000)
    batch: list[tuple[str, dict[str, str]]] = []
    started = time.perf_counter()
    for i in range(leads):
        at_ms = now_ms - (i % 30) * 86_400_000
        body = {"kind": "white_paper", "asset": f"paper-{i % 20}", "email": f"lead{i}@company{i % 5000}.com",
                "first_name": f"First{i}", "last_name": f"Last{i}", "company": f"Company {i % 5000}",
                "consent": 1, "at": at_ms // 1000}
        batch.append((f"{at_ms}-{i}", {"d": json.dumps(body)}))
        if len(batch) == 500:
            apply_batch(store, config, batch)
            batch = []
    if batch:
        apply_batch(store, config, batch)
    seeded = time.perf_counter() - started
    for n in range(1, opportunities + 1):
        qualify(store, config, _lead_id((n * 37) % leads + 1), on_duplicate="link")
    tpl = create_template(store, config, {"name": "bench", "subject": "Hi {{ first_name }}",
                                          "html": "<p>Hi</p>", "text": "Hi"})
    lists = store.r.zrange(store.keys.lists, 0, 1)
    first_campaign = ""
    for n in range(campaigns):
        made = create_campaign(store, config, {
            "name": f"Campaign {n}", "template_id": tpl["id"], "list_ids": [lists[0]]})
        first_campaign = first_campaign or made["id"]
        if n < 10:  # in flight: status and counters as a sending campaign has them
            store.r.hset(store.keys.campaign(made["id"]), mapping={
                "status": "sending", "targeted": 5000, "sent": 1200 + n, "opened": 300,
                "clicked": 40, "audience_estimate": 5000, "started_at": int(time.time())})
            store.r.sadd(store.keys.active_campaigns, made["id"])
    create_user(store, "bench@example.com", "admin", PASSWORD)
    print(f"seeded {leads:,} leads in {seeded:.1f} s ({leads / seeded:,.0f}/s), "
          f"{opportunities:,} opportunities, {campaigns} campaigns")
    return {"list": lists[0], "campaign": first_campaign, "lead": _lead_id(leads // 2),
            "email": f"lead{leads // 3}@company{(leads // 3) % 5000}.com"}


def _lead_id(n: int) -> str:
    from outreach.store import to_base36

    return "ld" + to_base36(n)


def time_pages(app, ids: dict[str, str], requests: int) -> list[tuple[str, float, float]]:  # type: ignore[no-untyped-def]
    client = app.test_client()
    page = client.get("/console/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    signed_in = client.post("/console/login", data={"email": "bench@example.com",
                                                    "password": PASSWORD, "csrf_token": token})
    assert signed_in.status_code == 302, signed_in.get_data(as_text=True)[:300]
    pages = [
        ("dashboard", "/console/", {}),
        ("leads (first page)", "/console/leads", {}),
        ("lead search, full address", f"/console/leads?q={ids['email']}", {}),
        ("lead search, name prefix", "/console/leads?q=first12", {}),
        ("lead search, rare company", "/console/leads?q=company%204999", {}),
        ("leads, status filter", "/console/leads?status=qualified", {}),
        ("leads, source+score filter", "/console/leads?source=web_form&min_score=0", {}),
        ("leads by score", "/console/leads?sort=score", {}),
        ("lead page", f"/console/leads/{ids['lead']}", {}),
        ("lists", "/console/lists", {}),
        ("list members", f"/console/lists/{ids['list']}", {}),
        ("opportunities board", "/console/opportunities", {}),
        ("campaigns", "/console/campaigns", {}),
        ("campaign live refresh", f"/console/campaigns/{ids['campaign']}", {"HX-Request": "true"}),
    ]
    out = []
    for name, path, headers in pages:
        for _ in range(5):  # warm up (template compilation, connections)
            assert client.get(path, headers=headers).status_code == 200, path
        times = []
        for _ in range(requests):
            t0 = time.perf_counter()
            response = client.get(path, headers=headers)
            times.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (path, response.status_code, response.headers.get("Location"))
        times.sort()
        out.append((name, statistics.median(times), times[int(len(times) * 0.95) - 1]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--opportunities", type=int, default=1_000)
    parser.add_argument("--campaigns", type=int, default=200)
    parser.add_argument("--requests", type=int, default=60)
    args = parser.parse_args()

    import outreach

    with private_server("bench-console-") as server:
        client = server.client()
        try:
            app = outreach.create_app({"redis_url": server.url, "key_prefix": "bench",
                                       "intake_rate_limit": "0", "secret_key": secrets.token_urlsafe(32)})
            store, config = app.extensions["outreach.store"], app.extensions["outreach.config"]
            ids = seed(store, config, args.leads, args.opportunities, args.campaigns)
            memory = int(client.info("memory")["used_memory"])
            results = time_pages(app, ids, args.requests)
        finally:
            client.close()
    print(load_note())
    print(f"Redis used_memory {memory / 2**20:.1f} MiB = {memory / args.leads:,.0f} B per lead "
          "(everything: leads, lists, opportunities, campaigns, results)")
    print(f"{'page':<26} {'median ms':>10} {'p95 ms':>8}   ({args.requests} requests each)")
    for name, med, p95 in results:
        flag = "" if med <= 50 else "  over the 50 ms target"
        print(f"{name:<26} {med:>10.1f} {p95:>8.1f}{flag}")


if __name__ == "__main__":
    main()
