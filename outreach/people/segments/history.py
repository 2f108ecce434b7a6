"""Each segment's size over time, cheaply: the beat's tick samples every segment's member
count once an hour (the first tick of the hour claims it with one ``SET NX``) into a bounded
list per segment (``Keys.segment_history``), which the console draws."""

from __future__ import annotations

import time
from typing import Any

from outreach.people.segments import members
from outreach.store import Store

SAMPLE_SECONDS = 3600
KEEP = 24 * 60  # sixty days of hourly samples (about 20 bytes each)


def sample(store: Store, now: float | None = None) -> bool:
    """Record every segment's size unless this hour's sample is taken; True when taken now."""
    now = time.time() if now is None else now
    hour = int(now) // SAMPLE_SECONDS
    if not store.r.set(store.keys.segment_history_sampled(hour), 1, nx=True,
                       ex=2 * SAMPLE_SECONDS):
        return False
    keys = store.keys
    segment_ids = store.r.zrange(keys.segments, 0, -1)
    for start in range(0, len(segment_ids), 500):
        part = segment_ids[start:start + 500]
        sizes = members.sizes(store, part)
        pipe = store.r.pipeline(transaction=False)
        for segment_id, size in zip(part, sizes, strict=True):
            pipe.rpush(keys.segment_history(segment_id), f"{int(now)}|{size}")
            pipe.ltrim(keys.segment_history(segment_id), -KEEP, -1)
        pipe.execute()
    return True


def series(store: Store, segment_id: str, now: float | None = None) -> list[dict[str, Any]]:
    """``[{"at", "size"}]`` oldest first, ending with the size now."""
    out = []
    for entry in store.r.lrange(store.keys.segment_history(segment_id), 0, -1):
        at, _, size = entry.partition("|")
        if at.isdigit() and size.isdigit():
            out.append({"at": int(at), "size": int(size)})
    out.append({"at": int(time.time() if now is None else now),
                "size": members.size(store, segment_id)})
    return out
