"""Erasure uses the person's own indexes and leaves nothing behind: memberships from the
person hash's ``lists`` field (no walk over every list), the account's contact index and
primary contact fixed, the intake stream read in pages."""

from __future__ import annotations

from outreach.privacy.erasure import erase_person


def test_memberships_come_from_the_persons_index(make_cenv, monkeypatch) -> None:
    with make_cenv() as env:
        list_id = env.leads("gone@example.com", "stay@example.com")
        manual = env.manual_list("gone@example.com")
        lead = env.lead_of("gone@example.com")
        keys = env.store.keys
        real = env.store.r.zrange

        def no_walk(key, *args, **kwargs):
            assert key != keys.lists, "erasure walked every list"
            return real(key, *args, **kwargs)

        monkeypatch.setattr(env.store.r, "zrange", no_walk)
        erase_person(env.store, "gone@example.com")
        monkeypatch.undo()
        for lid in (list_id, manual):
            assert env.store.r.zscore(keys.list_members(lid), lead["id"]) is None
        assert env.store.r.zcard(keys.list_members(list_id)) == 1


def test_the_accounts_contact_index_and_primary_contact_are_fixed(env) -> None:
    env.registered("ann@acme.io", consent=True, company="Acme")
    env.registered("bob@acme.io", consent=True, company="Acme")
    ids = {lead["email"]: lead["id"] for lead in env.get("/api/v1/leads").get_json()["items"]}
    first = env.post(f"/api/v1/leads/{ids['ann@acme.io']}/qualify", json={}).get_json()
    second = env.post(f"/api/v1/leads/{ids['bob@acme.io']}/qualify", json={}).get_json()
    account_id = first["account_id"]
    assert second["account_id"] == account_id
    keys = env.store.keys
    assert env.store.r.hget(keys.account(account_id), "primary_contact_id") == first["contact_id"]
    erase_person(env.store, "ann@acme.io")
    assert env.store.r.zrange(keys.account_contacts(account_id), 0, -1) == [second["contact_id"]]
    assert env.store.r.hget(keys.account(account_id), "primary_contact_id") == second["contact_id"]
    erase_person(env.store, "bob@acme.io")
    assert env.store.r.zcard(keys.account_contacts(account_id)) == 0
    assert env.store.r.hget(keys.account(account_id), "primary_contact_id") is None


def test_the_intake_stream_is_read_in_pages(env, monkeypatch) -> None:
    for i in range(5):
        assert env.register(f"q{i}@example.com").status_code == 202
    assert env.register("gone@example.com").status_code == 202
    counts = []
    real = env.store.r.xrange

    def paged(key, *args, **kwargs):
        counts.append(kwargs.get("count"))
        return real(key, *args, **kwargs)

    monkeypatch.setattr(env.store.r, "xrange", paged)
    from outreach.privacy import erasure

    monkeypatch.setattr(erasure, "STREAM_PAGE", 2)
    result = erase_person(env.store, "gone@example.com")
    assert result["queued_registrations_dropped"] == 1
    assert counts and all(c == 2 for c in counts) and len(counts) >= 3


def test_webhook_delivery_bodies_are_scrubbed(env) -> None:
    import json

    env.registered("gone@example.com", consent=True)
    env.registered("stay@example.com", consent=True)
    lead_id = env.get("/api/v1/leads?email=gone@example.com").get_json()["items"][0]["id"]
    keys = env.store.keys
    for delivery_id, email in (("d1", "gone@example.com"), ("d2", "stay@example.com")):
        body = json.dumps({"id": f"evt_{delivery_id}", "type": "lead.created",
                           "created_at": "2026-01-01T00:00:00Z",
                           "data": {"lead": {"id": lead_id if email.startswith("gone") else "x",
                                             "email": email}}})
        env.store.r.hset(keys.webhook_delivery(delivery_id),
                         mapping={"webhook_id": "wh1", "body": body, "status": "delivered"})
    erase_person(env.store, "gone@example.com")
    scrubbed = json.loads(env.store.r.hget(keys.webhook_delivery("d1"), "body"))
    assert scrubbed == {"id": "evt_d1", "type": "lead.created",
                        "created_at": "2026-01-01T00:00:00Z", "data": {"erased": True}}
    kept = env.store.r.hget(keys.webhook_delivery("d2"), "body")
    assert "stay@example.com" in kept


def test_erasure_is_a_job_with_a_status_url(env) -> None:
    env.registered("gone@example.com", consent=True)
    env.app.extensions["outreach.erasure_kick"] = lambda: None  # the broker is down
    answer = env.client.delete("/api/v1/people/Gone@Example.com", headers=env.auth)
    assert answer.status_code == 202
    job = answer.get_json()
    assert job["status"] == "queued"
    assert job["status_url"] == f"{env.config.base_url}/api/v1/erasures/{job['id']}"
    assert answer.headers["Location"] == job["status_url"]
    # from this moment nothing mails the address, though the job has not run yet
    from outreach.normalize import email_hash

    assert env.store.r.sismember(env.store.keys.erased, email_hash("gone@example.com"))
    assert env.get(f"/api/v1/erasures/{job['id']}").get_json()["status"] == "queued"
    # the beat's pass runs it
    assert env.run_erasures() == 1
    done = env.get(f"/api/v1/erasures/{job['id']}").get_json()
    assert done["status"] == "done" and done["erased"] is True and done["lead_id"]
    assert "email" not in env.store.r.hgetall(env.store.keys.erasure(job["id"]))
    assert env.get("/api/v1/leads?email=gone@example.com").get_json()["items"] == []
    assert env.get("/api/v1/erasures/nope").status_code == 404
    schedule = env.app.extensions["celery"].conf.beat_schedule
    assert any(e["task"] == "outreach.erasure.run_due" for e in schedule.values())


def _indexed(env, email: str) -> set[str]:
    """The campaigns the per-address index names for ``email``."""
    ids = env.store.r.hget(env.store.keys.address_campaigns, email)
    return set(filter(None, (ids or "").split(",")))


def _no_ledger_walk(env, monkeypatch, allowed: set[str]) -> list[str]:
    """Fails when erasure reads a ledger other than ``allowed`` or walks every campaign."""
    keys = env.store.keys
    read: list[str] = []
    real_hget, real_zrange = env.store.r.hget, env.store.r.zrange

    def hget(key, *args, **kwargs):
        if key.endswith(":ledger"):
            read.append(key)
            assert key in allowed, f"erasure read a ledger it had no reason to: {key}"
        return real_hget(key, *args, **kwargs)

    def zrange(key, *args, **kwargs):
        assert key != keys.campaigns, "erasure walked every campaign"
        return real_zrange(key, *args, **kwargs)

    monkeypatch.setattr(env.store.r, "hget", hget)
    monkeypatch.setattr(env.store.r, "zrange", zrange)
    return read


def test_campaigns_come_from_the_addresss_index(make_cenv, monkeypatch) -> None:
    from outreach.campaigns.retention import build_address_index

    with make_cenv() as env:
        keys = env.store.keys
        build_address_index(env.store)  # nothing before the index: built at once
        theirs = env.launched([env.leads("gone@example.com", "stay@example.com")])
        env.run(theirs)
        others = [env.launched([env.leads("other@example.com", asset=f"a{n}")])
                  for n in range(3)]
        for campaign_id in others:
            env.run(campaign_id)
        assert _indexed(env, "gone@example.com") == {theirs}
        read = _no_ledger_walk(env, monkeypatch, {keys.campaign_ledger(theirs)})
        result = erase_person(env.store, "gone@example.com")
        monkeypatch.undo()
        assert result["campaigns_scrubbed"] == 1 and read == [keys.campaign_ledger(theirs)]
        assert env.store.r.hget(keys.campaign_ledger(theirs), "gone@example.com") is None
        assert _indexed(env, "gone@example.com") == set()
        assert env.store.r.hget(keys.campaign_ledger(theirs), "stay@example.com")


def test_ledgers_from_before_the_index_are_found_until_it_is_built(make_cenv) -> None:
    from outreach.campaigns.retention import build_address_index

    with make_cenv() as env:
        keys = env.store.keys
        campaign_id = env.launched([env.leads("gone@example.com", "old@example.com")])
        env.run(campaign_id)
        # a ledger written before the index existed
        env.store.r.delete(keys.address_campaigns)
        assert erase_person(env.store, "gone@example.com")["campaigns_scrubbed"] == 1
        assert build_address_index(env.store) >= 1
        assert _indexed(env, "old@example.com") == {campaign_id}
        assert build_address_index(env.store) == 0  # once


def test_retention_drops_a_compacted_campaign_from_the_index(make_cenv) -> None:
    import time

    from outreach.campaigns.retention import run_retention

    with make_cenv(campaign_detail_days=90) as env:
        old = env.launched([env.leads("a@example.com", "b@example.com")])
        env.run(old)
        assert _indexed(env, "a@example.com") == {old}
        assert run_retention(env.store, env.config, now=time.time() + 91 * 86_400)
        assert _indexed(env, "a@example.com") == _indexed(env, "b@example.com") == set()
        # an erasure after compaction finds nothing to scrub and reads no ledger
        assert erase_person(env.store, "a@example.com")["campaigns_scrubbed"] == 0


def test_the_index_keeps_each_campaign_once_and_drops_only_the_one_compacted(env) -> None:
    from outreach.campaigns.retention import _index

    for campaign_id in ("cp1", "cp2", "cp1", "cp10"):
        _index(env.store, campaign_id, "add", ["a@example.com", "b@example.com"])
    assert env.store.r.hget(env.store.keys.address_campaigns, "a@example.com") == "cp1,cp2,cp10"
    _index(env.store, "cp1", "remove", ["a@example.com"])
    assert _indexed(env, "a@example.com") == {"cp2", "cp10"}
    assert _indexed(env, "b@example.com") == {"cp1", "cp2", "cp10"}
    for campaign_id in ("cp2", "cp10"):
        _index(env.store, campaign_id, "remove", ["a@example.com"])
    assert not env.store.r.hexists(env.store.keys.address_campaigns, "a@example.com")
