"""A worker killed between a change and the re-evaluation of the person's segments leaves
no segment wrong: every change path marks the person (``Keys.segment_dirty``) with the
change, and the beat's ``membership.tick`` settles the marks left behind.

Each test saves a segment that reads what the path changes, makes the change with the
re-evaluation crashing (``membership.touch``/``touch_many``/``evaluate_changes`` raise, as a
SIGKILL would stop the worker there), sees the segment stale, runs one ``tick`` and checks the segment holds
exactly what a brute-force evaluation says."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from outreach.campaigns import tracking
from outreach.people import consent, ingest, lists, records
from outreach.people.segments import build, catalog, members, membership
from outreach.people.segments.evaluate import evaluate
from outreach.people.segments.facts import load
from outreach.platform import refs, users
from outreach.sales import owners, qualify
from outreach.tokens import Tokens

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


class Killed(Exception):
    """Where a SIGKILL would have stopped the worker."""


def _crash(*_args: Any, **_kwargs: Any) -> int:
    raise Killed


@pytest.fixture
def env(make_env: Any) -> Iterator[Any]:
    with make_env() as env:
        keys = env.store.keys
        env.store.r.hset(keys.campaign("cp1"), mapping={"name": "cp1"})
        env.store.r.hset(keys.campaign_links("cp1"), mapping={"l1": "https://example.com/pricing"})
        ingest.apply_rows(env.store, env.config, [
            {"email": "ann@acme.com", "kind": "white_paper", "asset": "guide", "country": "DE",
             "company": "Acme", "consent": True, "source": "import"},
            {"email": "bob@beta.io", "kind": "white_paper", "asset": "guide", "country": "FR",
             "company": "Beta", "consent": True, "source": "import"}])
        yield env


def _segment(env: Any, rules: dict[str, Any], member_type: str = "lead") -> str:
    segment_id = catalog.create_segment(env.store, "s", member_type, rules)["id"]
    assert not build.build(env.store, segment_id)
    return segment_id


def _brute_force(env: Any, segment_id: str) -> set[str]:
    store = env.store
    h = catalog.require(store, segment_id)
    import json

    tree, member_type = json.loads(h["rules"]), h["member_type"]
    people = ([refs.lead_ref(i) for i in store.r.zrange(store.keys.leads, 0, -1)]
              + [refs.contact_ref(i) for i in store.r.zrange(store.keys.contacts, 0, -1)])
    out = set()
    for ref in people:
        facts = load(store, ref, [tree])
        if facts and membership.eligible(member_type, facts) and evaluate(tree, facts,
                                                                           __import__("time").time()).value:
            out.add(ref)
    return out


def _members(env: Any, segment_id: str) -> set[str]:
    return set().union(*members.pages(env.store, segment_id))


def _killed_then_repaired(env: Any, segment_id: str, change: Callable[[], Any]) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(membership, "touch", _crash)
        patch.setattr(membership, "touch_many", _crash)
        patch.setattr(membership, "evaluate_changes", _crash)  # the batched path (ingest)
        with pytest.raises(Killed):
            change()
    expected = _brute_force(env, segment_id)
    assert _members(env, segment_id) != expected, "the change did not move anyone: no test"
    assert env.store.r.scard(env.store.keys.segment_dirty) > 0
    membership.tick(env.store)
    assert _members(env, segment_id) == expected
    assert env.store.r.scard(env.store.keys.segment_dirty) == 0


def _lead(env: Any, email: str) -> str:
    return env.store.r.hget(env.store.keys.lead_by_email, email)


def test_a_lead_edit(env: Any) -> None:
    segment_id = _segment(env, {"field": "country", "op": "eq", "value": "US"})
    _killed_then_repaired(env, segment_id, lambda: records.update_lead(
        env.store, _lead(env, "ann@acme.com"), {"country": "US"}))


def test_a_consent_edit(env: Any) -> None:
    segment_id = _segment(env, {"field": "consent_status", "op": "eq", "value": "withdrawn"})
    _killed_then_repaired(env, segment_id, lambda: records.update_lead(
        env.store, _lead(env, "ann@acme.com"), {"consent": False}))


def test_a_contact_upsert(env: Any) -> None:
    segment_id = _segment(env, {"field": "country", "op": "eq", "value": "IT"}, "contact")
    _killed_then_repaired(env, segment_id, lambda: records.upsert_contact(
        env.store, {"email": "cy@corp.de", "country": "IT"}))


def test_a_list_addition(env: Any) -> None:
    list_id = lists.create_list_pair(env.store, "L", "lead")["id"]
    segment_id = _segment(env, {"in_list": list_id})
    _killed_then_repaired(env, segment_id,
                          lambda: lists.add_members(env.store, list_id, ["ann@acme.com"]))


def test_an_owner_change(env: Any) -> None:
    users.create_user(env.store, "sam@example.com", "sales", "a long enough password 1")
    segment_id = _segment(env, {"field": "owner", "op": "exists", "value": True})
    _killed_then_repaired(env, segment_id, lambda: owners.set_owner(
        env.store, "lead", _lead(env, "ann@acme.com"), "sam@example.com", "admin"))


def test_a_qualification(env: Any) -> None:
    segment_id = _segment(env, {"field": "status", "op": "eq", "value": "qualified"})
    _killed_then_repaired(env, segment_id, lambda: qualify.qualify(
        env.store, env.config, _lead(env, "ann@acme.com"), on_duplicate="create"))


def test_a_disqualification_and_a_reactivation(env: Any) -> None:
    segment_id = _segment(env, {"field": "status", "op": "eq", "value": "disqualified"})
    lead_id = _lead(env, "ann@acme.com")
    _killed_then_repaired(env, segment_id,
                          lambda: qualify.disqualify(env.store, lead_id, "no_budget", None))
    _killed_then_repaired(env, segment_id, lambda: qualify.reactivate(env.store, lead_id))


@pytest.mark.parametrize("kind", ["open", "click", "unsubscribe"])
def test_an_open_a_click_an_unsubscribe(env: Any, kind: str) -> None:
    rules = ({"field": "consent_status", "op": "eq", "value": "withdrawn"} if kind == "unsubscribe"
             else {"opened": {}} if kind == "open" else {"clicked": {"url_contains": "pricing"}})
    segment_id = _segment(env, rules)
    ref = refs.lead_ref(_lead(env, "ann@acme.com"))
    tokens = Tokens(env.config.secret_key)
    if kind == "open":
        change = lambda: tracking.record_open(env.store, env.config,  # noqa: E731
                                              tokens.sign("open", ["cp1", ref]), BROWSER)
    elif kind == "click":
        change = lambda: tracking.record_click(env.store, env.config,  # noqa: E731
                                               tokens.sign("click", ["cp1", ref, "l1"]), BROWSER)
    else:
        change = lambda: tracking.unsubscribe(env.store, env.config,  # noqa: E731
                                              tokens.sign("unsubscribe", ["cp1", ref]))
    _killed_then_repaired(env, segment_id, change)


def test_a_confirmed_opt_in(env: Any) -> None:
    ingest.apply_rows(env.store, env.config, [
        {"email": "dee@corp.de", "kind": "white_paper", "asset": "guide", "consent": False,
         "source": "import"}])
    segment_id = _segment(env, {"field": "consent_status", "op": "eq", "value": "given"})
    proof = {"asset": "guide", "version": 1, "ip": None, "ua": None, "at": 0}
    _killed_then_repaired(env, segment_id,
                          lambda: consent._apply_confirmation(env.store, "dee@corp.de", proof))


def test_an_erasure(env: Any) -> None:
    from outreach.privacy import erasure

    segment_id = _segment(env, {"field": "country", "op": "eq", "value": "DE"})
    assert _members(env, segment_id) == {refs.lead_ref(_lead(env, "ann@acme.com"))}
    _killed_then_repaired(env, segment_id,
                          lambda: erasure.erase_person(env.store, "ann@acme.com"))
    assert _members(env, segment_id) == set()


def test_the_live_path_clears_its_marks(env: Any) -> None:
    segment_id = _segment(env, {"field": "country", "op": "eq", "value": "US"})
    records.update_lead(env.store, _lead(env, "ann@acme.com"), {"country": "US"})
    assert _members(env, segment_id) == _brute_force(env, segment_id)
    assert env.store.r.scard(env.store.keys.segment_dirty) == 0


class _SigKill(BaseException):
    """Where a SIGKILL would have stopped the sending worker (nothing catches it)."""


def _sigkill(*_args: Any, **_kwargs: Any) -> int:
    raise _SigKill


def test_a_send_read_by_a_segment(cenv: Any) -> None:
    """``finish_send.lua`` marks the person it records as sent when a segment reads the
    campaign's sends: a worker killed before the re-evaluation leaves the mark to the beat."""
    list_id = cenv.leads("ann@example.com")
    campaign_id = cenv.launched([list_id], cenv.template())
    segment = catalog.create_segment(cenv.store, "got it", "lead",
                                     {"sent": {"campaign_id": campaign_id}})
    assert not build.build(cenv.store, segment["id"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(membership, "evaluate_for", _sigkill)
        with pytest.raises(_SigKill):
            cenv.pump()
    lead_id = cenv.store.r.hget(cenv.store.keys.lead_by_email, "ann@example.com")
    assert cenv.ledger(campaign_id) == {"ann@example.com": "sent"}
    assert _members(cenv, segment["id"]) == set()
    assert cenv.store.r.smembers(cenv.store.keys.segment_dirty) == {f"l:{lead_id}"}
    membership.tick(cenv.store)
    assert _members(cenv, segment["id"]) == {f"l:{lead_id}"}
    assert cenv.store.r.scard(cenv.store.keys.segment_dirty) == 0


def test_a_send_clears_its_mark_once_re_evaluated(cenv: Any) -> None:
    list_id = cenv.leads("ann@example.com", "bob@example.com")
    campaign_id = cenv.launched([list_id], cenv.template())
    segment = catalog.create_segment(cenv.store, "got it", "lead",
                                     {"sent": {"campaign_id": campaign_id}})
    assert not build.build(cenv.store, segment["id"])
    assert cenv.run(campaign_id)["stats"]["sent"] == 2
    assert len(_members(cenv, segment["id"])) == 2
    assert cenv.store.r.scard(cenv.store.keys.segment_dirty) == 0
