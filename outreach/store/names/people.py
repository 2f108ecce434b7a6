"""Key names: intake and ingest, leads and contacts, lists and their indexes."""

from __future__ import annotations

from outreach.store.names.base import KeyBase


class PeopleKeys(KeyBase):
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
    def score_decay(self) -> str:
        """hash ``epoch``, ``half_life`` (seconds; absent or 0: no decay): the epoch lead
        scores are scaled to (``people/scoring.py``; ``_scoring.lua`` builds the same name)"""
        return self._k("leads", "decay")

    def lead_score_items(self, lead_id: str) -> str:
        """list of a lead's scored events, newest first (``at|points|scaled|what``), bounded;
        what falls off is folded into the lead's ``score_rest*`` fields"""
        return self._k("lead", lead_id, "scored")

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
    def account_open_opportunities(self) -> str:
        """hash account id -> how many open opportunities it has (kept by ``qualify.lua`` and
        ``opp_write.lua``; segments' ``account.has_open_opportunity`` reads it)"""
        return self._k("accounts", "open")

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
