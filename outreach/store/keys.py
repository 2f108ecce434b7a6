"""Every Redis key name outreach uses is built here, and nowhere else.

All keys carry the same hash tag (``{prefix}``) so that Lua scripts and MULTI
blocks touching several of them stay valid on Redis Cluster (one slot per
installation; shard by installation prefix).
"""

from __future__ import annotations


class Keys:
    def __init__(self, prefix: str = "outreach") -> None:
        self.tag = "{" + prefix + "}"

    def _k(self, *parts: str) -> str:
        return ":".join((self.tag, *parts))

    # intake and ingest
    @property
    def intake_stream(self) -> str:
        return self._k("intake")

    ingest_group = "ingest"

    def idempotency(self, key_hash: str) -> str:
        return self._k("idem", key_hash)

    def rate_limit(self, client: str) -> str:
        return self._k("rl", client)

    def registrations(self, registration_id: str) -> str:
        """Where a registration's processing result is: one hash per UTC day of acceptance
        (read from the stream id's milliseconds), expired after ``registration_status_days``.
        ``ingest.lua`` builds the same name."""
        day = int(registration_id.split("-", 1)[0]) // 86_400_000
        return self._k("regs", str(day))

    def registrations_of_day(self, day: int) -> str:
        """The results hash of the UTC day ``day`` (days since the epoch), as above."""
        return self._k("regs", str(day))

    @property
    def sequences(self) -> str:
        return self._k("seq")

    # people
    def lead(self, lead_id: str) -> str:
        return self._k("lead", lead_id)

    @property
    def leads(self) -> str:
        return self._k("leads")

    def leads_by_status(self, status: str) -> str:
        return self._k("leads", "st", status)

    @property
    def lead_scores(self) -> str:
        return self._k("leads", "score")

    @property
    def lead_by_email(self) -> str:
        return self._k("email", "lead")

    def contact(self, contact_id: str) -> str:
        return self._k("contact", contact_id)

    @property
    def contacts(self) -> str:
        return self._k("contacts")

    @property
    def contact_by_email(self) -> str:
        return self._k("email", "contact")

    def account(self, account_id: str) -> str:
        return self._k("account", account_id)

    @property
    def accounts(self) -> str:
        return self._k("accounts")

    @property
    def account_by_name(self) -> str:
        return self._k("account", "by-name")

    @property
    def account_by_domain(self) -> str:
        return self._k("account", "by-domain")

    def opportunity(self, opp_id: str) -> str:
        return self._k("opp", opp_id)

    @property
    def opportunities(self) -> str:
        return self._k("opps")

    def opportunities_by_status(self, status: str) -> str:
        return self._k("opps", "st", status)

    def open_opportunities_by_stage(self, stage: str) -> str:
        """Open opportunities in ``stage``, scored like ``opportunities`` (kept with the
        pipeline aggregates: ``pipeline_apply`` in _prelude.lua)."""
        return self._k("opps", "stage", stage)

    @property
    def opportunity_by_lead(self) -> str:
        return self._k("opp", "by-lead")

    @property
    def suppressed(self) -> str:
        return self._k("suppressed")

    @property
    def suppression_info(self) -> str:
        """address -> JSON {at, campaign_id, reply} of why it is suppressed"""
        return self._k("suppressed", "info")

    @property
    def erased(self) -> str:
        return self._k("erased")

    # lists
    def list(self, list_id: str) -> str:
        return self._k("list", list_id)

    def list_members(self, list_id: str) -> str:
        return self._k("list", list_id, "m")

    @property
    def lists(self) -> str:
        return self._k("lists")

    @property
    def assets(self) -> str:
        return self._k("assets")

    def asset(self, slug: str) -> str:
        """An asset's record (title, form settings, consent texts by version); ingest.lua
        creates a bare one on an unknown slug's first registration."""
        return self._k("asset", slug)

    @property
    def asset_index(self) -> str:
        """Every asset's slug (score: creation time)."""
        return self._k("assets", "idx")

    @property
    def leads_by_source(self) -> str:
        """first source -> number of leads (ingest.lua counts new leads)"""
        return self._k("leads", "by-source")

    def consent_events(self, person_ref: str) -> str:
        """A person's consent evidence, newest last (JSON entries)."""
        return self._k("consent", person_ref)

    @property
    def consent_user_agents(self) -> str:
        """user agent id -> user agent, shared by every person's consent evidence
        (ingest.lua builds the same name)"""
        return self._k("consent", "ua")

    def pow_used(self, signature: str) -> str:
        """Set while a solved proof-of-work challenge may not be used again."""
        return self._k("pow", signature)

    def consent_resend(self, email: str) -> str:
        """Set while a confirmation email to this address may not be sent again."""
        return self._k("consent", "resend", email)

    def import_job(self, import_id: str) -> str:
        return self._k("import", import_id)

    def import_errors(self, import_id: str) -> str:
        return self._k("import", import_id, "errors")

    def import_file(self, import_id: str) -> str:
        return self._k("import", import_id, "file")

    # auth
    @property
    def api_keys(self) -> str:
        return self._k("apikeys")

    # console users and sign-in throttle
    def user(self, email: str) -> str:
        return self._k("user", email)

    @property
    def users(self) -> str:
        return self._k("users")

    def login_failures(self, email: str, client: str) -> str:
        return self._k("loginfail", email, client)

    # templates and campaigns
    def template(self, template_id: str) -> str:
        return self._k("tpl", template_id)

    @property
    def templates(self) -> str:
        return self._k("tpls")

    def template_draft_preview(self, token: str) -> str:
        """an unsaved template's rendered HTML for the editor's preview frame (short TTL)"""
        return self._k("tpldraft", token)

    def campaign(self, campaign_id: str) -> str:
        return self._k("camp", campaign_id)

    @property
    def campaigns(self) -> str:
        return self._k("camps")

    def campaign_ledger(self, campaign_id: str) -> str:
        return self._k("camp", campaign_id, "ledger")

    def campaign_batches(self, campaign_id: str) -> str:
        return self._k("camp", campaign_id, "batches")

    def campaign_batch(self, campaign_id: str, batch_no: int | str) -> str:
        return self._k("camp", campaign_id, "batch", str(batch_no))

    def campaign_sending(self, campaign_id: str) -> str:
        return self._k("camp", campaign_id, "sending")

    def campaign_links(self, campaign_id: str) -> str:
        return self._k("camp", campaign_id, "links")

    def campaign_seen(self, campaign_id: str) -> str:
        return self._k("camp", campaign_id, "seen")

    def campaign_bucket(self, campaign_id: str) -> str:
        return self._k("camp", campaign_id, "bucket")

    def campaign_sent_per_10s(self, campaign_id: str) -> str:
        """bucket start (unix seconds, a multiple of 10) -> messages sent in those 10 s (the
        live page's send-rate chart); kept as long as the campaign, like its other keys"""
        return self._k("camp", campaign_id, "sent10s")

    def campaign_errors(self, campaign_id: str) -> str:
        """address -> the last reply or reason for a recipient that was not delivered"""
        return self._k("camp", campaign_id, "errors")

    def campaign_soft(self, campaign_id: str) -> str:
        """address -> how many temporary refusals it got in this campaign"""
        return self._k("camp", campaign_id, "soft")

    def campaign_deferred(self, campaign_id: str) -> str:
        """address -> when its domain first deferred it in this campaign (epoch seconds)"""
        return self._k("camp", campaign_id, "deferred")

    def campaign_streak(self, campaign_id: str) -> str:
        """addresses refused in a row with the same kind of answer (the circuit breaker)"""
        return self._k("camp", campaign_id, "streak")

    def campaign_claims(self, campaign_id: str) -> str:
        """address -> the send run holding its claim (see ``send_run``)"""
        return self._k("camp", campaign_id, "claims")

    def campaign_batch_runs(self, campaign_id: str) -> str:
        """batch number -> the send run working on it"""
        return self._k("camp", campaign_id, "runs")

    def send_run(self, run: str) -> str:
        """A send run's heartbeat: exists (with a short TTL) while the run is alive."""
        return self._k("run", run)

    def campaign_lock(self, campaign_id: str, purpose: str) -> str:
        return self._k("camp", campaign_id, "lock", purpose)

    @property
    def active_campaigns(self) -> str:
        return self._k("camps", "active")

    def person(self, ref: str) -> str:
        """The hash of the person ``ref`` names: ``l:<id>`` a lead, ``c:<id>`` a contact
        (``outreach.platform.refs``)."""
        kind, _, person_id = ref.partition(":")
        return self.lead(person_id) if kind == "l" else self.contact(person_id)

    def person_events(self, person_id: str) -> str:
        return self._k("events", person_id)

    # deliverability: bounce and complaint reports (campaigns/bounces/)
    def bounce_seen(self, report_id: str) -> str:
        """set while a processed report is remembered (the same report twice counts once)"""
        return self._k("bounce", "seen", report_id)

    def soft_bounces(self, email_hash: str) -> str:
        """zset report id -> at: an address's soft bounces within the window"""
        return self._k("bounce", "soft", email_hash)

    def domain_bucket(self, domain: str) -> str:
        """hash {tokens, ts, level}: a receiving domain's global token bucket"""
        return self._k("domain", domain, "bucket")

    def domain_backoff(self, domain: str) -> str:
        """set (with a TTL) while a receiving domain is backed off after a deferral"""
        return self._k("domain", domain, "backoff")

    def domain_slots(self, domain: str) -> str:
        """hash send run -> since (epoch ms): the runs in an SMTP transaction with a receiving
        domain now (its concurrency limit; a run whose ``send_run`` heartbeat is gone holds
        nothing)"""
        return self._k("domain", domain, "slots")

    @property
    def domain_backoffs(self) -> str:
        """hash domain -> back-off end (epoch ms): every domain backed off and not yet
        recovered (read once per send batch; with or without OUTREACH_DOMAIN_LIMITS)"""
        return self._k("domain", "backoffs")

    @property
    def metrics(self) -> str:
        return self._k("metrics")

    @property
    def beat_heartbeat(self) -> str:
        """Unix time of the beat scheduler's last tick (``outreach beat-ping``)."""
        return self._k("beat", "heartbeat")

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

    @property
    def webhook_due(self) -> str:
        """zset of deliveries to attempt, scored by when (drained by the beat tick)"""
        return self._k("whd", "due")

    def account_contacts(self, account_id: str) -> str:
        """zset of an account's contacts (scored by contact sequence), for account lists"""
        return self._k("account", account_id, "contacts")

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
