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

    def campaign_test_sends(self, campaign_id: str, hour: int) -> str:
        """test messages of a campaign sent in one hour (epoch hours), a counter"""
        return self._k("testsends", campaign_id, str(hour))

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
    def lead_candidates(self) -> str:
        """Leads that can still be promoted (status new), by score: the conversion pass
        walks these, never the leads it qualified or disqualified."""
        return self._k("leads", "cand")

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

    def erasure(self, job_id: str) -> str:
        """An erasure job: status, the address until it is done, then its result."""
        return self._k("erasure", job_id)

    @property
    def erasures_due(self) -> str:
        """zset of erasure jobs to run, by when (the beat drives it; a publish only nudges)."""
        return self._k("erasures", "due")

    @property
    def early_confirmations(self) -> str:
        """Addresses whose confirmation link was clicked before their registration was
        ingested (a sorted set, by when the link lapses); the confirmation itself is in
        ``early_confirmation``."""
        return self._k("consent", "early")

    def early_confirmation(self, email: str) -> str:
        return self._k("consent", "early", email)

    def consent_resend(self, email: str) -> str:
        """Set while a confirmation email to this address may not be sent again."""
        return self._k("consent", "resend", email)

    def import_job(self, import_id: str) -> str:
        return self._k("import", import_id)

    def import_errors(self, import_id: str) -> str:
        return self._k("import", import_id, "errors")

    def import_file(self, import_id: str) -> str:
        return self._k("import", import_id, "file")

    @property
    def imports_due(self) -> str:
        """zset of import jobs to run, scored by when (a claim leases it; drained by the beat)"""
        return self._k("imports", "due")

    @property
    def import_bytes(self) -> str:
        """hash import id -> bytes of its upload still kept (the global upload quota)"""
        return self._k("imports", "bytes")

    @property
    def confirmations_due(self) -> str:
        """zset of double opt-in mails to send (JSON [email, asset, version]), scored by
        when; written with the registration, drained by the beat"""
        return self._k("consent", "due")

    # auth
    @property
    def api_keys(self) -> str:
        return self._k("apikeys")

    @property
    def api_keys_used(self) -> str:
        """digest -> when the key was last used (unix seconds, written at most once a minute)"""
        return self._k("apikeys", "used")

    def api_key_touched(self, digest: str) -> str:
        """set for a minute after a key's ``last_used_at`` was written (the write guard)"""
        return self._k("apikeys", "touched", digest[:16])

    # console users and sign-in throttle
    def user(self, email: str) -> str:
        return self._k("user", email)

    @property
    def users(self) -> str:
        return self._k("users")

    def login_failures(self, email: str, client: str) -> str:
        return self._k("loginfail", email, client)

    def login_client_failures(self, client: str) -> str:
        """failed sign-ins from one client address (an IPv6 /64), whatever the account"""
        return self._k("loginfail-client", client)

    def login_account_failures(self, email: str) -> str:
        """failed sign-ins of one account, from every client (slows, never locks)"""
        return self._k("loginfail-account", email)

    def login_account_pace(self, email: str) -> str:
        """set while the next attempt for a much-attacked account must wait"""
        return self._k("loginpace", email)

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

    def campaign_report(self, campaign_id: str) -> str:
        """the report's counters, written by the scripts that record the events
        (track_event.lua, finish_send.lua, bounce.lua): 'l|<link>|c'/'|u' clicks and unique
        clicks of a link, 'd|<domain>|s'/'|b'/'|o'/'|c' people sent, bounced, opened, clicked"""
        return self._k("camp", campaign_id, "report")

    def campaign_hourly(self, campaign_id: str) -> str:
        """'<hour start>|o' first human opens and '<hour start>|c' human clicks in that hour"""
        return self._k("camp", campaign_id, "hourly")

    def campaign_domains(self, campaign_id: str) -> str:
        """zset receiving domain -> messages sent to it (the report's top domains)"""
        return self._k("camp", campaign_id, "domains")

    def campaign_audience(self, campaign_id: str) -> str:
        """zset person ref -> position: an explicit audience (a follow-up's), paged by
        dispatch instead of lists"""
        return self._k("camp", campaign_id, "audience")

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

    @property
    def campaigns_retry_due(self) -> str:
        """zset of campaigns whose failed recipients are to be queued again (retry-failed),
        scored by when; written with the request, drained by the campaign tick"""
        return self._k("camps", "retry")

    def campaign_audience_count(self, campaign_id: str) -> str:
        """the cached audience count of a draft campaign (JSON), short-lived"""
        return self._k("camp", campaign_id, "audience")

    def audience_seen(self, token: str) -> str:
        """set of the addresses an audience count has seen so far (expires)"""
        return self._k("audience", token, "seen")

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
