"""Key names: segments: definitions, members, the readers index and the due index."""

from __future__ import annotations

from outreach.store.names.base import KeyBase


class SegmentKeys(KeyBase):
    # segments (people/segments/)
    def segment(self, segment_id: str) -> str:
        """hash {name, member_type, rules (JSON), reads, created_at, updated_at, build state}"""
        return self._k("seg", segment_id)

    @property
    def segments(self) -> str:
        """zset of saved segments, scored by creation sequence (ingest.lua reads its ZCARD)"""
        return self._k("segs")

    def segment_members(self, segment_id: str) -> str:
        """zset person ref -> since (epoch seconds): a segment's current members"""
        return self._k("seg", segment_id, "m")

    def segment_readers(self, what: str) -> str:
        """set of the segments whose rules read ``what`` (a field, an event kind, a list...)"""
        return self._k("segs", "reads", what)

    def person_segments(self, ref: str) -> str:
        """set of the segments a person is a member of (the reverse of ``segment_members``)"""
        return self._k("pseg", ref)

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
