"""What every message of one campaign shares (template, asset, links, tokens, DKIM, the
per-domain pace), and the people a batch sends to."""

from __future__ import annotations

import hashlib
import html as html_lib
import json
import re
import time

from outreach.campaigns import pacing, templates
from outreach.campaigns.experiments.setup import settings_of
from outreach.config import Config
from outreach.mail import dkim
from outreach.mail.rendering import CompiledTemplate
from outreach.normalize import InvalidEmail, ascii_domain
from outreach.people.segments import membership
from outreach.store import Store
from outreach.tokens import Tokens

_HREF = re.compile(r'href="(https?://[^"]+)"', re.I)
PERSON_FIELDS = ("email", "first_name", "last_name", "job_title", "company", "phone",
                  "mobile_phone", "street", "city", "state", "postal_code", "country", "topic",
                  "email_given")


def load_people(store: Store, refs: list[str]) -> dict[str, dict[str, str]]:
    keys = store.keys
    unique = [r for r in dict.fromkeys(refs) if r]
    pipe = store.r.pipeline(transaction=False)
    for ref in unique:
        pipe.hmget(keys.person(ref), PERSON_FIELDS)
    return {ref: dict(zip(PERSON_FIELDS, row, strict=True))
            for ref, row in zip(unique, pipe.execute(), strict=True)}


class CampaignContext:
    """What every message of one campaign shares: template, asset, links, tokens."""

    # per process: link ids already stored, by campaign (bounded: cleared when large)
    _known_links: dict[str, dict[str, str]] = {}

    def __init__(self, store: Store, config: Config, campaign_id: str, h: dict[str, str]) -> None:
        self.store, self.config, self.campaign_id = store, config, campaign_id
        self.from_email = h.get("from_email") or config.from_email
        self.template = templates.compiled(store, config, h["template_id"])
        # an experiment: each variant's template (a subject variant has one of its own); a
        # test-share address's variant is recorded, everyone else gets ``x_rest``
        experiment = settings_of(h)
        self.variants = {v["name"]: templates.compiled(store, config, v["send_template_id"])
                         for v in experiment["variants"]} if experiment else {}
        self.rest_variant = h.get("x_rest") or (experiment["variants"][0]["name"]
                                                if experiment else "")
        self.variant_of: dict[str, str] = {}
        self.tokens = Tokens(config.secret_key, config.secret_key_fallbacks)
        self.base = config.base_url.rstrip("/")
        self.campaign = {"id": campaign_id, "name": h.get("name")}
        self.asset = None
        for list_id in json.loads(h.get("list_ids") or "[]"):
            meta = store.r.hmget(store.keys.list(list_id), "kind", "slug")
            if meta[1]:
                self.asset = {"kind": meta[0], "slug": meta[1]}
                break
        if len(self._known_links) > 64:
            self._known_links.clear()
        self.links = self._known_links.setdefault(f"{id(store)}:{store.keys.tag}:{campaign_id}", {})
        # the segments that read this campaign's sends (read once per batch, not per message)
        self.sent_segments = membership.readers(store, [f"event:sent:{campaign_id}"])
        self.domain = self.from_email.rpartition("@")[2] or "localhost"
        try:
            self.ascii_domain = ascii_domain(self.domain)
        except InvalidEmail:
            self.ascii_domain = self.domain
        self.dkim = dkim.from_config(config)  # deliverability: signing and VERP
        self.bounce_domain = config.bounce_domain
        self.backoffs = pacing.backoffs(store)  # domain -> back-off end (ms), once per batch
        # Postmark keeps neither our return path nor (in its webhooks) our Message-ID: it
        # hands back custom metadata, which its SMTP relay takes from X-PM-Metadata-* headers
        # (the signed token, not the whole Message-ID: short, so the header never folds and
        # stays within the small value size metadata allows)
        self.postmark = any(r.host.lower().rstrip(".").endswith("postmarkapp.com")
                            for r in config.relays)

    def load_variants(self, emails: list[str]) -> None:
        """The recorded variants of a batch's addresses (one read; nothing without an experiment)."""
        if self.variants and emails:
            found = self.store.r.hmget(self.store.keys.campaign_variants(self.campaign_id), emails)
            self.variant_of = {e: v for e, v in zip(emails, found, strict=True) if v}

    def template_for(self, email: str) -> CompiledTemplate:
        """The template ``email`` is sent: its experiment variant's, else the campaign's."""
        if not self.variants:
            return self.template
        name = self.variant_of.get(email) or self.rest_variant
        return self.variants.get(name, self.template)

    def domain_wait(self, email: str, run: str = "", pace: bool = True) -> int:
        """Milliseconds before ``email``'s domain may get a message (0: now). ``pace``: its
        back-off after a deferral, else its token bucket when OUTREACH_DOMAIN_LIMITS is set.
        With ``run``: a slot of the domain's concurrency limit is taken for ``run`` too when
        the answer is 0 (``pacing.release`` gives it back)."""
        if pace:
            until = self.backoffs.get(pacing.domain_of(email))
            if until is not None:
                wait = until - int(time.time() * 1000)
                if wait > 0:
                    return wait
        if self.config.domain_limits:
            return pacing.take(self.store, self.config.domain_limits, email, run, pace)
        return 0

    def has_slots(self, email: str) -> bool:
        """Whether ``email``'s domain has a concurrency limit (OUTREACH_DOMAIN_LIMITS ``Nc``)."""
        return bool(self.config.domain_limits
                    and pacing.concurrency_for(self.config.domain_limits, email))

    def deferred(self, email: str) -> None:
        """``email``'s domain deferred a message: back that domain alone off."""
        seconds = pacing.slow_down(self.store, email)
        self.backoffs[pacing.domain_of(email)] = int((time.time() + seconds) * 1000)

    def delivered(self, email: str) -> None:
        """A delivery succeeded: a domain that had backed off has recovered (level reset)."""
        if self.backoffs:
            domain = pacing.domain_of(email)
            if self.backoffs.pop(domain, None) is not None:
                pacing.recovered(self.store, domain)

    def link_id(self, url: str) -> str:
        """The stored id of ``url`` (HTML-escaped as it appears in the message)."""
        link_id = self.links.get(url)
        if link_id is None:
            real = html_lib.unescape(url)
            link_id = hashlib.sha1(real.encode()).hexdigest()[:12]
            self.store.r.hsetnx(self.store.keys.campaign_links(self.campaign_id), link_id, real)
            self.links[url] = link_id
        return link_id

    def track(self, html: str, ref: str) -> str:
        def rewrite(match: re.Match[str]) -> str:
            url = match.group(1)
            if url.startswith(self.base + "/"):
                return match.group(0)
            token = self.tokens.sign("click", [self.campaign_id, ref, self.link_id(url)])
            return f'href="{self.base}/t/c/{token}"'

        tracked = _HREF.sub(rewrite, html)
        if not self.config.track_opens:  # no pixel: any <img> in short mail is HTML_IMAGE_ONLY_*
            return tracked
        pixel_token = self.tokens.sign("open", [self.campaign_id, ref])
        pixel = f'<img src="{self.base}/t/o/{pixel_token}" width="1" height="1" alt="">'
        lower = tracked.lower()
        at = lower.rfind("</body>")
        return tracked[:at] + pixel + tracked[at:] if at >= 0 else tracked + pixel
