"""One writer of suppressions, one precedence: complaint > unsubscribed > manual > bounced.

Every path that suppresses (an unsubscribe link, a provider's bounce or complaint, a DSN
through bounce.lua, a hard refusal at send time through finish_send.lua) goes through the
rule in store/lua/_suppression.lua; a weaker reason never overwrites a stronger one.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from outreach.people.suppressions import get_suppression, reason_of, suppress

RANK = {"complaint": 4, "unsubscribed": 3, "manual": 2, "bounced:cp1": 1, "bounced": 1}


def test_a_stronger_reason_replaces_a_weaker_and_never_the_reverse(env) -> None:
    email = "ann@example.com"
    assert suppress(env.store, email, "bounced:cp1", {"reason": "hard_bounce", "at": 1,
                                                      "campaign_id": "cp1", "reply": "550 gone"})
    assert get_suppression(env.store, email)["reason"] == "hard_bounce"
    # an unsubscribe after a bounce is the person's own word: it replaces the bounce, and the
    # bounce's details (its reply) go with it
    assert suppress(env.store, email, "unsubscribed", {"reason": "unsubscribed", "at": 2})
    found = get_suppression(env.store, email)
    assert found["reason"] == "unsubscribed" and found["reply"] is None
    assert not suppress(env.store, email, "bounced:cp2", {"reason": "hard_bounce", "at": 3})
    assert suppress(env.store, email, "complaint", {"reason": "complaint", "at": 4})
    # an unsubscribe after a complaint used to overwrite it (tracking.py's HSET): no more
    assert not suppress(env.store, email, "unsubscribed", {"reason": "unsubscribed", "at": 5})
    assert get_suppression(env.store, email)["reason"] == "complaint"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(sorted(RANK)), min_size=1, max_size=8))
def test_any_sequence_of_writes_leaves_the_strongest_reason(make_env, values) -> None:
    with make_env() as env:
        written = [suppress(env.store, "bo@example.com", value) for value in values]
        stored = env.store.r.hget(env.store.keys.suppressed, "bo@example.com")
        strongest = max(RANK[v] for v in values)
        assert RANK[stored] == strongest
        # the first value of the strongest rank is the one kept (equal ranks do not replace)
        assert stored == next(v for v in values if RANK[v] == strongest)
        best = 0
        for value, wrote in zip(values, written, strict=True):
            assert wrote == (RANK[value] > best)
            best = max(best, RANK[value])
        assert reason_of(stored) in {"complaint", "unsubscribed", "manual", "hard_bounce"}
