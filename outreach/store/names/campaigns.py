"""Key names: templates, campaigns, their ledgers and counters, bounce and complaint reports."""

from __future__ import annotations

from outreach.store.names.base import KeyBase


class CampaignKeys(KeyBase):
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

    @property
    def campaigns_hidden(self) -> str:
        """campaign id -> when it finished: the hidden campaigns (not in the listing, e.g. a
        journey's send steps) that retention compacts like the listed ones"""
        return self._k("camps", "hidden")

    def campaign_ledger(self, campaign_id: str) -> str:
        return self._k("camp", campaign_id, "ledger")

    @property
    def address_campaigns(self) -> str:
        """address -> the ids of the campaigns whose ledger holds it, comma-joined (one hash:
        83 B an address where a set per address took 243), written by queue_page.lua with the
        ledger entry (_campaign_index.lua), dropped by retention with the ledger: erasure
        reads it instead of every ledger"""
        return self._k("mailed")

    @property
    def address_campaigns_built(self) -> str:
        """set once every ledger written before the index existed is in it (retention
        builds it): until then erasure also looks in every ledger"""
        return self._k("mailed-built")

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

    def campaign_waiting_local(self, campaign_id: str) -> str:
        """zset address -> the UTC moment (epoch seconds) of its local time: the recipients
        of a ``send_at_local`` campaign held until their hour (``campaigns.local_time``)"""
        return self._k("camp", campaign_id, "localwait")

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

    def campaign_variants(self, campaign_id: str) -> str:
        """hash: address -> the experiment variant it was queued with, for the test share
        only (anyone not in it got the variant the rest got: the campaign's ``x_rest``)"""
        return self._k("camp", campaign_id, "variants")

    @property
    def experiments_due(self) -> str:
        """zset of campaigns whose experiment is to be decided, scored by when (launch +
        ``decide_after``); drained by the beat and by each campaign's watch"""
        return self._k("camps", "xdue")

    def campaign_audience_count(self, campaign_id: str) -> str:
        """the cached audience count of a draft campaign (JSON), short-lived"""
        return self._k("camp", campaign_id, "audience_count")

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
