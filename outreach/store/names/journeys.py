"""Key names: journeys (nurture flows), their versions, enrollments, due index and inbox."""

from __future__ import annotations

from outreach.store.names.base import KeyBase


class JourneyKeys(KeyBase):
    def journey(self, journey_id: str) -> str:
        """name, status, version (the newest), trigger, settings, created/updated times"""
        return self._k("jny", journey_id)

    @property
    def journeys(self) -> str:
        """every journey id by creation time (the listing)"""
        return self._k("jnys")

    def journey_version(self, journey_id: str, version: int | str) -> str:
        """one version's definition (JSON: trigger, steps, settings); versions are kept"""
        return self._k("jny", journey_id, "v", str(version))

    @property
    def journeys_running(self) -> str:
        """the ids of active journeys: the beat drains only their due indexes (pause holds)"""
        return self._k("jnys", "running")

    @property
    def journeys_stopping(self) -> str:
        """the ids of stopped journeys whose active enrollments the beat still ends (in pages;
        the journey hash's ``stop_cursor`` is how far it got)"""
        return self._k("jnys", "stopping")

    @property
    def journey_triggers(self) -> str:
        """'registration:<slug>' | 'qualified' | 'segment:<id>' -> space-separated ids of the
        active journeys it starts (ingest.lua and qualify check it to write the inbox)"""
        return self._k("jnys", "triggers")

    @property
    def journey_inbox(self) -> str:
        """entries lower layers leave for journeys in their own transaction: 'reg|<slug>|<ref>',
        'qual|<ref>', 'open|<campaign>|<ref>', 'click|<campaign>|<ref>'; drained by the beat"""
        return self._k("jnys", "inbox")

    def journey_due(self, journey_id: str) -> str:
        """person ref -> when its enrollment's step is due (the time-ordered due index)"""
        return self._k("jny", journey_id, "due")

    def journey_enrollment(self, journey_id: str, ref: str) -> str:
        """one person's enrollment: version, step, seq, status, entered_at, next_at, claim"""
        return self._k("jny", journey_id, "enr", ref)

    def journey_history(self, journey_id: str, ref: str) -> str:
        """the enrollment's steps, newest last (JSON entries, bounded)"""
        return self._k("jny", journey_id, "hist", ref)

    def journey_enrollments(self, journey_id: str) -> str:
        """person ref -> entered_at (the enrollments listing)"""
        return self._k("jny", journey_id, "enrs")

    def journey_stats(self, journey_id: str) -> str:
        """counters kept as steps run: enrolled, active, completed, exited, stopped,
        goal_reached, '<step>|entered', '<step>|done', '<step>|sent', ..."""
        return self._k("jny", journey_id, "stats")

    def journey_campaigns(self, journey_id: str) -> str:
        """'<version>|<step>|<entry no>' -> the hidden campaign that backs that send step
        (its ledger, tracking, bounces and stats are the campaign machinery's)"""
        return self._k("jny", journey_id, "camps")

    def person_journeys(self, ref: str) -> str:
        """journey id -> entered_at: the journeys a person is or was in (the timeline)"""
        return self._k("pjny", ref)

    def journey_lock(self, name: str) -> str:
        return self._k("jnys", "lock", name)

    def journey_steps_per_10s(self, bucket: int | str) -> str:
        """steps done in the 10 s starting at ``bucket`` (the /metrics rate; expires)"""
        return self._k("jnys", "rate", str(bucket))

    @property
    def journey_moves_group(self) -> str:
        """the consumer group journeys read the segment moves stream with"""
        return "journeys"
