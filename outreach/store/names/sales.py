"""Key names: activities, tasks, the audit trail, the pipeline, owners and webhooks."""

from __future__ import annotations

from outreach.store.names.base import KeyBase


class SalesKeys(KeyBase):
    # sales: activities, tasks, audit trail, pipeline, owners, webhooks (sales/activities.py,
    # sales/tasks.py, sales/pipeline.py, platform/webhooks.py)
    def activity(self, activity_id: str) -> str:
        return self._k("act", activity_id)

    def record_activities(self, ref: str) -> str:
        """zset of a record's activities (``ref`` e.g. ``lead:ld1``), scored by ``at``"""
        return self._k("acts", ref)

    def record_audit(self, ref: str) -> str:
        """list of a record's system events (JSON), newest first"""
        return self._k("audit", ref)

    def tasks_open(self, owner: str = "") -> str:
        """zset of open tasks scored by due time: everyone's, or one owner's"""
        return self._k("tasks", "open", owner) if owner else self._k("tasks", "open")

    def tasks_done(self, owner: str = "") -> str:
        """zset of done tasks scored by completion time"""
        return self._k("tasks", "done", owner) if owner else self._k("tasks", "done")

    @property
    def task_reminders(self) -> str:
        """zset of tasks whose reminder is still to be sent, scored by due time"""
        return self._k("tasks", "remind")

    @property
    def task_reminded(self) -> str:
        """hash '<task id>|<due>' -> when its reminder was claimed (never sent twice)"""
        return self._k("tasks", "reminded")

    @property
    def task_digests(self) -> str:
        """hash '<YYYY-MM-DD>|<owner>' -> when that day's digest was claimed"""
        return self._k("tasks", "digests")

    def opportunities_by_owner(self, owner: str) -> str:
        return self._k("opps", "owner", owner)

    @property
    def pipeline(self) -> str:
        """hash of pipeline aggregates (stage/month/won/lost counters), kept by opp_write.lua"""
        return self._k("pipeline")

    @property
    def account_names(self) -> str:
        """lex zset '<normalised name>|<account id>' (likely-duplicate search)"""
        return self._k("account", "names")

    def webhook(self, webhook_id: str) -> str:
        return self._k("wh", webhook_id)

    @property
    def webhooks(self) -> str:
        return self._k("whs")

    def webhook_deliveries(self, webhook_id: str) -> str:
        """list of delivery attempts (JSON), newest first"""
        return self._k("wh", webhook_id, "log")

    def webhook_delivery(self, delivery_id: str) -> str:
        return self._k("whd", delivery_id)

    def webhook_outbox(self, event: str) -> str:
        """list of the subjects (ids) of events recorded by a script, not yet turned into
        deliveries (``ingest.lua`` builds the name for ``lead.created``)"""
        return self._k("wh", "outbox", event)

    def webhook_backlog(self, webhook_id: str) -> str:
        """set of a webhook's deliveries still pending (the console's backlog)"""
        return self._k("wh", webhook_id, "backlog")

    @property
    def webhook_due(self) -> str:
        """zset of deliveries to attempt, scored by when (drained by the beat tick)"""
        return self._k("whd", "due")

    def account_contacts(self, account_id: str) -> str:
        """zset of an account's contacts (scored by contact sequence), for account lists"""
        return self._k("account", account_id, "contacts")
