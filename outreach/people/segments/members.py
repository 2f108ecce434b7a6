"""How segment memberships are stored; every other module goes through this one.

A segment's members are two bitmaps by person number (``Keys.segment_leads``,
``Keys.segment_contacts``): bit n is lead ``ld<base36 n>`` (contact ``ct<base36 n>``,
``refs.person_number``). Each member's own hash holds ``s:<segment id>`` -> since (epoch
seconds; ``segment_since_field``): the person's segments are read with the HGETALL of their
facts and WATCHed with their hash, so the reverse index costs no key of its own. The bit and
the field are written on the same MULTI (``add``, ``remove``). A ref with no number cannot
be a member.

Sizes are BITCOUNTs; pages walk the bitmaps a chunk at a time (GETRANGE), in person number
order (creation order), leads then contacts, from a position: a lead's bit offset, or
``CONTACTS_AT`` plus a contact's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from redis.client import NEVER_DECODE

from outreach.platform import refs
from outreach.store import Store
from outreach.store.names.segments import SINCE_PREFIX, segment_since_field

CHUNK = 8192  # bytes of a bitmap read at once: 65,536 people
MAX_CHUNKS = 16  # chunks one ``scan`` reads at most (a million people)
CONTACTS_AT = 1 << 40  # a position at or past it is in the contacts' bitmap
KINDS = (refs.LEAD, refs.CONTACT)
_BITS = [tuple(i for i in range(8) if byte & (0x80 >> i)) for byte in range(256)]


def bitmap(store: Store, segment_id: str, kind: str) -> str:
    """The key of the segment's bitmap of ``kind`` (``refs.LEAD`` or ``refs.CONTACT``)."""
    keys = store.keys
    return keys.segment_leads(segment_id) if kind == refs.LEAD else keys.segment_contacts(segment_id)


class Writes:
    """Memberships joined and left, and the due index entries of their evaluation
    (``Keys.segment_due``), gathered for one transaction and queued on it as one script call
    with one argument (``segment_write.lua``: the client packs one string, not two commands
    a move)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.moves: list[list[Any]] = []
        self.due_at: list[list[Any]] = []
        self.not_due: list[str] = []

    def add(self, segment_id: str, ref: str, since: float) -> bool:
        """The person joins the segment since ``since``; False (nothing gathered) for a ref
        with no person number."""
        return self._gather(segment_id, ref, str(int(since)))

    def remove(self, segment_id: str, ref: str) -> None:
        """The person leaves the segment."""
        self._gather(segment_id, ref, "")

    def due(self, segment_id: str, ref: str, when: float | None) -> None:
        """The moment the person's value in the segment can next flip by time alone
        (``None``: never, the entry goes)."""
        entry = f"{segment_id}|{ref}"
        if when is None:
            self.not_due.append(entry)
        else:
            self.due_at.append([entry, when])

    def _gather(self, segment_id: str, ref: str, since: str) -> bool:
        number = refs.person_number(ref)
        if number is None:
            return False
        self.moves.append([ref, number[1], segment_since_field(segment_id), since, segment_id])
        return True

    def queue(self, pipe: Any) -> None:
        """Queue what was gathered on ``pipe`` (a transaction), and start again. As EVAL of
        the source (Redis keeps the compiled script by its digest): an EVALSHA in a MULTI
        would need its own round trip first to be sure the server has the script."""
        if self.moves or self.due_at or self.not_due:
            pipe.execute_command("EVAL", self.store.sources["segment_write"], 0,
                                 self.store.keys.tag, json.dumps(
                                     {"m": self.moves, "a": self.due_at, "r": self.not_due},
                                     ensure_ascii=False, separators=(",", ":")))
        self.moves, self.due_at, self.not_due = [], [], []


def add(store: Store, pipe: Any, segment_id: str, ref: str, since: float) -> bool:
    """Queue on ``pipe`` the person joining the segment since ``since``; False (nothing
    queued) for a ref with no person number."""
    writes = Writes(store)
    added = writes.add(segment_id, ref, since)
    writes.queue(pipe)
    return added


def clear_bits(store: Store, pipe: Any, segment_ids: list[str], ref: str) -> int:
    """Queue on ``pipe`` clearing the person's bit in each of ``segment_ids`` (a person
    whose hash is gone); returns how many replies were queued (each the old bit)."""
    number = refs.person_number(ref)
    if number is None:
        return 0
    kind, n = number
    for segment_id in segment_ids:
        pipe.setbit(bitmap(store, segment_id, kind), n, 0)
    return len(segment_ids)


def segments_of(h: dict[str, str]) -> dict[str, float]:
    """segment id -> since, of a person's hash."""
    return {name[len(SINCE_PREFIX):]: float(value or 0) for name, value in h.items()
            if name.startswith(SINCE_PREFIX)}


def queue_check(store: Store, pipe: Any, segment_id: str, ref: str) -> bool:
    """Queue on ``pipe`` whether ``ref`` is a member (a GETBIT: 1 or 0); False (nothing
    queued) for a ref that cannot be one."""
    number = refs.person_number(ref)
    if number is None:
        return False
    kind, n = number
    pipe.getbit(bitmap(store, segment_id, kind), n)
    return True


def count(store: Store, segment_id: str, kind: str) -> int:
    """How many members of ``kind`` the segment has."""
    return int(store.r.bitcount(bitmap(store, segment_id, kind)))


def sizes(store: Store, segment_ids: list[str]) -> list[int]:
    """Each segment's number of members (one round trip)."""
    if not segment_ids:
        return []
    pipe = store.r.pipeline(transaction=False)
    for segment_id in segment_ids:
        for kind in KINDS:
            pipe.bitcount(bitmap(store, segment_id, kind))
    replies = pipe.execute()
    return [int(replies[i]) + int(replies[i + 1]) for i in range(0, len(replies), 2)]


def size(store: Store, segment_id: str) -> int:
    return sizes(store, [segment_id])[0]


def scan(store: Store, segment_id: str, position: int, want: int,
         kinds: tuple[str, ...] = KINDS) -> tuple[list[tuple[str, int]], int | None]:
    """Up to ``want`` members from ``position`` on, each with the position right after it,
    and the position to go on from (None: no more). Reads at most ``MAX_CHUNKS`` chunks, so
    a page can be short and still have a following position. ``kinds``: the bitmaps read."""
    found: list[tuple[str, int]] = []
    for _ in range(MAX_CHUNKS):
        kind, base = (refs.CONTACT, CONTACTS_AT) if position >= CONTACTS_AT else (refs.LEAD, 0)
        if kind not in kinds:
            if kind == refs.CONTACT:
                return found, None
            position = CONTACTS_AT
            continue
        offset = position - base
        first = offset // 8
        chunk = store.r.execute_command("GETRANGE", bitmap(store, segment_id, kind), first,
                                        first + CHUNK - 1, **{NEVER_DECODE: True}) or b""
        for index, byte in enumerate(chunk):
            if not byte:
                continue
            for bit in _BITS[byte]:
                n = (first + index) * 8 + bit
                if n < offset:
                    continue
                found.append((refs.ref_of_number(kind, n), base + n + 1))
                if len(found) == want:
                    return found, base + n + 1
        if len(chunk) == CHUNK:
            position = base + (first + CHUNK) * 8
        elif kind == refs.LEAD and refs.CONTACT in kinds:
            position = CONTACTS_AT
        else:
            return found, None
    return found, position


def pages(store: Store, segment_id: str, page: int = 500,
          kinds: tuple[str, ...] = KINDS) -> Iterator[list[str]]:
    """Every member of ``kinds``, a page of refs at a time (a member added meanwhile past
    the walk is included; one removed meanwhile may not be)."""
    position: int | None = 0
    while position is not None:
        found, position = scan(store, segment_id, position, page, kinds)
        if found:
            yield [ref for ref, _ in found]


def delete(store: Store, segment_id: str, page: int = 1000) -> None:
    """Forget every membership of a segment: its members' fields and due entries, a page at
    a time (each page's bits cleared with them, so a run that dies is carried on by another
    from where it was), then the bitmaps."""
    keys = store.keys
    for found in pages(store, segment_id, page):
        pipe = store.r.pipeline(transaction=True)
        writes = Writes(store)
        for ref in found:
            writes.remove(segment_id, ref)
            writes.due(segment_id, ref, None)
        writes.queue(pipe)
        pipe.execute()
    store.r.delete(keys.segment_leads(segment_id), keys.segment_contacts(segment_id))
