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
    def registrations_before_days(self) -> str:
        """The one results hash of installations before per-day results (read only)."""
        return self._k("regs")

    @property
    def registrations_pattern(self) -> str:
        """Every day's results hash (for SCAN)."""
        return self._k("regs", "*")

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

    def campaign_errors(self, campaign_id: str) -> str:
        """address -> the last reply or reason for a recipient that was not delivered"""
        return self._k("camp", campaign_id, "errors")

    def campaign_soft(self, campaign_id: str) -> str:
        """address -> how many temporary refusals it got in this campaign"""
        return self._k("camp", campaign_id, "soft")

    def campaign_streak(self, campaign_id: str) -> str:
        """addresses refused in a row with the same kind of answer (the circuit breaker)"""
        return self._k("camp", campaign_id, "streak")

    def campaign_errors(self, campaign_id: str) -> str:
        """address -> the last reply or reason for a recipient that was not delivered"""
        return self._k("camp", campaign_id, "errors")

    def campaign_soft(self, campaign_id: str) -> str:
        """address -> how many temporary refusals it got in this campaign"""
        return self._k("camp", campaign_id, "soft")

    def campaign_streak(self, campaign_id: str) -> str:
        """addresses refused in a row with the same kind of answer (the circuit breaker)"""
        return self._k("camp", campaign_id, "streak")

    def campaign_lock(self, campaign_id: str, purpose: str) -> str:
        return self._k("camp", campaign_id, "lock", purpose)

    @property
    def active_campaigns(self) -> str:
        return self._k("camps", "active")

    def person_events(self, person_id: str) -> str:
        return self._k("events", person_id)

    @property
    def conversion_lock(self) -> str:
        return self._k("conversion", "lock")

    @property
    def metrics(self) -> str:
        return self._k("metrics")
