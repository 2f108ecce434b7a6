"""One person's journeys (the lead and contact pages): every journey the person is or was
in, newest entry first, with the enrollment (version, status, step, history)."""

from __future__ import annotations

from typing import Any

from outreach.journeys import enrollments
from outreach.store import Store

SHOWN = 20


def person_enrollments(store: Store, person_refs: list[str], limit: int = SHOWN) -> list[dict[str, Any]]:
    """``[{journey_id, journey_name, journey_status, ...enrollment}]`` for the refs given (a
    qualified lead's lead and contact refs), newest entry first, at most ``limit``."""
    keys = store.keys
    pipe = store.r.pipeline(transaction=False)
    for ref in person_refs:
        pipe.hgetall(keys.person_journeys(ref))
    entries = sorted(((float(at or 0), ref, journey_id)
                      for ref, found in zip(person_refs, pipe.execute(), strict=True)
                      for journey_id, at in found.items()), reverse=True)[:limit]
    if not entries:
        return []
    pipe = store.r.pipeline(transaction=False)
    for _, ref, journey_id in entries:
        pipe.hmget(keys.journey(journey_id), "name", "status")
        pipe.hgetall(keys.journey_enrollment(journey_id, ref))
        pipe.lrange(keys.journey_history(journey_id, ref), 0, -1)
    replies = pipe.execute()
    out = []
    for n, (_, ref, journey_id) in enumerate(entries):
        (name, status), h, history = replies[3 * n], replies[3 * n + 1], replies[3 * n + 2]
        if not h or status is None:
            continue  # the journey or the enrollment is gone
        view = enrollments.enrollment_view(store, journey_id, ref, h, status, history)
        out.append({"journey_id": journey_id, "journey_name": name or journey_id,
                    "journey_status": status, **view})
    return out
