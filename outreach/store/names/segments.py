"""Key names: segments: definitions, members (bitmaps by person number, and a field per
membership in the person's hash), the readers index and the due index."""

from __future__ import annotations

from outreach.store.names.base import KeyBase

SINCE_PREFIX = "s:"


def segment_since_field(segment_id: str) -> str:
    """field of a member's own hash (``Keys.person``): ``s:<segment id>`` -> since (epoch
    seconds), written with the bit of the segment's bitmap (``segment_leads``); the person's
    segments are these fields (the reverse index, read with the HGETALL of their facts). Not
    shown to users: views pick fields by name. A person hash stays listpack-encoded (compact)
    up to ``hash-max-listpack-entries`` (128) fields: about 100 memberships beside the
    profile; past it the hash is still right, only larger"""
    return f"{SINCE_PREFIX}{segment_id}"


class SegmentKeys(KeyBase):
    # segments (people/segments/)
    def segment(self, segment_id: str) -> str:
        """hash {name, member_type, rules (JSON), reads, created_at, updated_at, build state}"""
        return self._k("seg", segment_id)

    @property
    def segments(self) -> str:
        """zset of saved segments, scored by creation sequence (ingest.lua reads its ZCARD)"""
        return self._k("segs")

    def segment_leads(self, segment_id: str) -> str:
        """bitmap of a segment's member leads: bit n set = lead ``ld<base36 n>`` is a member
        (``refs.person_number``; people/segments/members.py owns it and the member's
        ``segment_since_field``).
        About n/8 bytes whatever the number of members: 125 KB for a million leads"""
        return self._k("seg", segment_id, "ml")

    def segment_contacts(self, segment_id: str) -> str:
        """bitmap of a segment's member contacts: bit n set = contact ``ct<base36 n>``"""
        return self._k("seg", segment_id, "mc")


    def segment_readers(self, what: str) -> str:
        """set of the segments whose rules read ``what`` (a field, an event kind, a list...)"""
        return self._k("segs", "reads", what)

    def segment_campaigns(self, segment_id: str) -> str:
        """set of the campaigns that include or exclude a segment (written by campaigns when
        one is saved; ``catalog`` refuses to delete the segment while one of them is a
        draft, scheduled or sending)"""
        return self._k("seg", segment_id, "cps")

    @property
    def segment_due(self) -> str:
        """zset '<segment id>|<ref>' -> when that person's value in that segment can next flip
        (a time window's end), drained by the beat (``outreach.segments.tick``)"""
        return self._k("segs", "due")

    @property
    def segment_dirty(self) -> str:
        """set of the people a script changed whose segments are still to be re-evaluated
        (written with the change; removed once done; the beat takes what a dead worker left)"""
        return self._k("segs", "dirty")

    @property
    def segment_builds(self) -> str:
        """zset of the segments whose (re)build is under way, scored by when it was asked for
        (the beat carries on with each, page by page, whether or not the nudge arrived)"""
        return self._k("segs", "builds")

    @property
    def segment_moves(self) -> str:
        """stream of membership moves of built segments that something listens to
        (``segment_move_listeners``): entries {segment_id, ref, move: in|out, at}, written in
        the transaction of the move; each listener reads it with its own consumer group and
        the stream is trimmed below the oldest entry a group still has to read"""
        return self._k("segs", "moves")

    @property
    def segment_move_listeners(self) -> str:
        """hash segment id -> how many listeners (active journeys triggered by it) want its
        moves in ``segment_moves``"""
        return self._k("segs", "move_listeners")

    def segment_history(self, segment_id: str) -> str:
        """list of '<epoch seconds>|<size>' samples of a segment's size, oldest first, one an
        hour, trimmed to the newest ``segments.history.KEEP`` (the console's chart)"""
        return self._k("seg", segment_id, "hist")

    def segment_history_sampled(self, hour: int) -> str:
        """string set (NX, expiring) by the first beat tick of hour ``hour`` that samples the
        sizes: the other ticks of that hour sample nothing"""
        return self._k("segs", "hist", str(hour))
