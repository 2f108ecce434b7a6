"""Intake -> Redis -> real Celery workers -> leads and lists, on real Redis."""

from __future__ import annotations

import random
import signal
from collections import defaultdict

from .conftest import wait_for

ASSETS = [("white_paper", "zero-trust-guide"), ("event", "summit-2026"), ("white_paper", "ai-ops")]


def _variant(rng: random.Random, email: str) -> str:
    local, _, domain = email.partition("@")
    shaped = "".join(c.upper() if rng.random() < 0.5 else c for c in f"{local}@{domain}")
    return " " * rng.randint(0, 2) + shaped + "\t" * rng.randint(0, 1)


def _expected(plan: list[tuple[str, str, str]]) -> dict[str, set[tuple[str, str]]]:
    assets: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for email, kind, slug in plan:
        assets[email].add((kind, slug))
    return assets


def _assert_leads_match(service, expected: dict[str, set[tuple[str, str]]],
                        plan_counts: dict[str, int]) -> None:
    leads = service.all_items("/api/v1/leads")
    by_email = {lead["email"]: lead for lead in leads}
    assert len(leads) == len(by_email) == len(expected)
    assert set(by_email) == set(expected)
    lists = service.all_items("/api/v1/lists")
    lead_lists = {(lst["asset"]["kind"], lst["asset"]["slug"]): lst for lst in lists
                  if lst["member_type"] == "lead"}
    contact_lists = {lst["id"]: lst for lst in lists if lst["member_type"] == "contact"}
    for lst in lead_lists.values():
        assert lst["parallel_list_id"] in contact_lists
        assert contact_lists[lst["parallel_list_id"]]["parallel_list_id"] == lst["id"]
    for asset, lst in lead_lists.items():
        members = {m["email"] for m in service.all_items(f"/api/v1/lists/{lst['id']}/members")}
        assert members == {e for e, assets in expected.items() if asset in assets}, asset
    for email, lead in by_email.items():
        # every registration applied exactly once: history length == registrations sent
        assert len(lead["registrations"]) == plan_counts[email], email


def _plan(rng: random.Random, people: int, total: int) -> list[tuple[str, str, str]]:
    emails = [f"person{i}.x+{i % 3}@example{i % 4}.com" for i in range(people)]
    plan = [(email, *ASSETS[i % len(ASSETS)]) for i, email in enumerate(emails)]
    while len(plan) < total:
        plan.append((rng.choice(emails), *rng.choice(ASSETS)))
    rng.shuffle(plan)
    return plan


def _counts(plan: list[tuple[str, str, str]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for email, _, _ in plan:
        counts[email] += 1
    return counts


def test_registrations_with_duplicate_variants_become_exact_leads_and_lists(make_service):
    service = make_service()
    service.start_worker()
    rng = random.Random(7)
    plan = _plan(rng, people=120, total=360)
    ids = [service.register(kind=kind, asset=slug, email=_variant(rng, email),
                            first_name=f"N{i}", consent=rng.random() < 0.7)
           for i, (email, kind, slug) in enumerate(plan)]
    wait_for(lambda: service.processed_count() == len(ids), message="all registrations processed")
    _assert_leads_match(service, _expected(plan), _counts(plan))
    status = service.get(f"/api/v1/registrations/{ids[0]}")
    assert status["status"] == "processed" and status["person"]["type"] == "lead"


def test_known_contact_gets_registration_on_contact_list(make_service):
    service = make_service()
    service.start_worker()
    service.post("/api/v1/contacts", {"email": "Cara@Example.com", "first_name": "Cara"}, status=201)
    reg = service.register(kind="event", asset="summit-2026", email=" cara@example.COM ")
    wait_for(lambda: service.processed_count() == 1, message="processed")
    status = service.get(f"/api/v1/registrations/{reg}")
    assert status["person"]["type"] == "contact"
    members = service.get(f"/api/v1/lists/{status['lists'][0]}/members")["items"]
    assert [m["email"] for m in members] == ["cara@example.com"]
    assert service.get("/api/v1/leads")["items"] == []


def test_two_workers_ingesting_overlapping_duplicates_make_one_lead_each(make_service):
    service = make_service(ingest_batch_size=7)
    service.app.extensions["outreach.kick_ingest"] = lambda: None  # queue first, then race
    rng = random.Random(11)
    plan = _plan(rng, people=40, total=600)
    for email, kind, slug in plan:
        service.register(kind=kind, asset=slug, email=_variant(rng, email))
    service.start_worker(concurrency=2)
    service.start_worker(concurrency=2)
    celery = service.app.extensions["celery"]
    for _ in range(8):
        celery.send_task("outreach.ingest.drain", queue="ingest")
    wait_for(lambda: service.processed_count() == len(plan), message="all registrations processed")
    _assert_leads_match(service, _expected(plan), _counts(plan))
    index = service.store.r.hgetall(service.store.keys.lead_by_email)
    assert len(index) == len(set(index.values())) == 40


def test_worker_killed_mid_ingest_loses_nothing_and_applies_nothing_twice(make_service):
    service = make_service(ingest_batch_size=5)
    service.app.extensions["outreach.kick_ingest"] = lambda: None
    rng = random.Random(3)
    plan = _plan(rng, people=300, total=4000)
    pipe_ids = [service.register(kind=kind, asset=slug, email=email) for email, kind, slug in plan]
    assert len(pipe_ids) == len(plan)
    worker = service.start_worker(concurrency=2)
    service.app.extensions["celery"].send_task("outreach.ingest.drain", queue="ingest")
    wait_for(lambda: service.processed_count() >= 300, message="ingest under way", interval=0.01)
    worker.kill(signal.SIGKILL)
    done_at_kill = service.processed_count()
    assert done_at_kill < len(plan), "the worker finished before it could be killed"
    service.start_worker(concurrency=2)  # its start takes over the dead worker's pending entries
    wait_for(lambda: service.processed_count() == len(plan), timeout=90,
             message="all registrations processed after restart")
    assert service.store.r.xlen(service.store.keys.intake_stream) == 0
    _assert_leads_match(service, _expected(plan), _counts(plan))


def test_worker_killed_mid_ingest_with_segments_saved_leaves_no_segment_wrong(make_service):
    """Three segments saved (a field, a registration, both), then a burst of registrations;
    the worker is SIGKILLed while its drain holds the people it changed (settling waits for
    the stream to empty): they stay marked dirty. A new worker takes the registrations over
    and the beat's tick settles what the dead one held; every segment then equals what the
    registrations say."""
    service = make_service(ingest_batch_size=5)
    service.app.extensions["outreach.kick_ingest"] = lambda: None
    rules = {
        "de": {"field": "country", "op": "eq", "value": "DE"},
        "summit": {"registered": {"asset": "summit-2026"}},
    }
    rules["both"] = {"all": [rules["de"], rules["summit"]]}
    saved = {name: service.post("/api/v1/segments", {"name": name, "member_type": "lead",
                                                     "rules": tree}, status=201)["id"]
             for name, tree in rules.items()}
    rng = random.Random(5)
    plan = _plan(rng, people=2000, total=2200)  # most registered once: no later repair
    people = sorted({email for email, _, _ in plan})
    german = {email for i, email in enumerate(people) if i % 3 == 0}
    for email, kind, slug in plan:
        service.register(kind=kind, asset=slug, email=email,
                         country="DE" if email in german else "FR")
    worker = service.start_worker(concurrency=2)
    celery = service.app.extensions["celery"]
    celery.send_task("outreach.ingest.drain", queue="ingest")
    wait_for(lambda: service.processed_count() >= 300, message="ingest under way", interval=0.01)
    worker.kill(signal.SIGKILL)
    assert service.processed_count() < len(plan), "the worker finished before it could be killed"
    assert service.store.r.scard(service.store.keys.segment_dirty) > 0  # held, not yet settled

    service.start_worker(concurrency=2)  # takes over the dead worker's pending entries

    def settled() -> bool:
        celery.send_task("outreach.segments.tick", queue="default")  # as the beat does
        return (service.processed_count() == len(plan)
                and service.store.r.scard(service.store.keys.segment_dirty) == 0
                and all(service.get(f"/api/v1/segments/{segment_id}")["build"]["state"]
                        == "ready" for segment_id in saved.values()))

    wait_for(settled, timeout=120, interval=1.0, message="ingested and settled after restart")
    summit = {email for email, _, slug in plan if slug == "summit-2026"}
    expected = {"de": german, "summit": summit, "both": german & summit}
    for name, segment_id in saved.items():
        members = {m["email"] for m in service.all_items(f"/api/v1/segments/{segment_id}/members")}
        assert members == expected[name], name
    _assert_leads_match(service, _expected(plan), _counts(plan))
