"""All settings, read once from ``OUTREACH_*`` environment variables.

No other module reads the environment: everything else receives a ``Config``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(ValueError):
    """A setting that cannot be used; its message is one line naming the variable."""


DEV_SECRET_KEY = "dev-secret-change-me"
MIN_SECRET_KEY_BYTES = 32
SMTP_TLS_MODES = ("none", "starttls", "ssl")


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Config:
    # store and broker
    redis_url: str = ""  # empty: embedded fake store (``outreach dev`` only)
    broker_url: str = ""  # empty: same as redis_url
    key_prefix: str = "outreach"
    # Redis Sentinel: "host:port,host:port" of the sentinels and the master's name; the
    # store and (unless OUTREACH_BROKER_URL says otherwise) the broker follow the master.
    # OUTREACH_REDIS_URL then only gives the database number and password.
    redis_sentinels: tuple[str, ...] = ()
    redis_sentinel_master: str = "mymaster"
    redis_socket_timeout: float = 5.0  # a store command that hangs longer fails (503 on the API)
    redis_connect_timeout: float = 2.0
    broker_socket_timeout: float = 5.0  # Redis broker: publish and BRPOP sockets
    broker_health_check_seconds: int = 10
    # durability: intake waits for this many replicas (WAIT) before answering 202
    intake_min_replicas: int = 0
    intake_replica_timeout_ms: int = 1000
    # HTTP
    secret_key: str = DEV_SECRET_KEY  # outside `outreach dev`: >= 32 bytes (outreach/startup.py)
    # older secrets still accepted when verifying (links in inboxes, confirmation links, VERP
    # return paths, console sessions) while everything new is signed with secret_key
    secret_key_fallbacks: tuple[str, ...] = ()
    metrics_token: str = ""  # when set, /metrics and /readyz need "Authorization: Bearer <it>"
    base_url: str = "http://localhost:8000"
    cors_origins: tuple[str, ...] = ()
    redirect_allow_list: tuple[str, ...] = ()  # allowed redirect_to prefixes; CORS origins count
    intake_rate_limit: str = "30/minute"
    trusted_proxies: int = 0  # reverse proxies in front of the API (X-Forwarded-For hops to trust)
    max_content_length: int = 64 * 1024
    idempotency_ttl_seconds: int = 24 * 3600
    registration_status_days: int = 30  # GET /registrations/<id> answers this long after
    asset_rules_cache_seconds: float = 5.0  # intake's per-process cache of assets' form rules
    # "1": a registration without an API key may name an unknown asset slug (it is created);
    # unset: only in `outreach dev` (see ``intake_creates_assets``)
    intake_create_assets: str = ""
    consent_token_days: int = 7  # a double opt-in confirmation link expires after this
    # a finished campaign older than this (from its end) keeps its stats and report and drops
    # its per-recipient detail (ledger, seen, errors, links, rate buckets, claims)
    campaign_detail_days: int = 90
    retention_interval_seconds: float = 24 * 3600.0  # how often beat runs retention
    erasure_tick_seconds: float = 10.0  # how often beat runs the erasure jobs due
    import_max_bytes: int = 50 * 1024 * 1024  # POST /api/v1/imports upload limit (larger: the CLI)
    import_lease_seconds: float = 60.0  # a running import not heard from for this long is rerun
    # every upload kept in Redis until its import ran, together: over this, 503 before storing
    import_upload_quota_bytes: int = 256 * 1024 * 1024
    outbox_tick_seconds: float = 2.0  # the beat's look at due imports and confirmations
    outbox_grace_seconds: float = 10.0  # work nudged at once is due for the beat this much later
    journey_tick_seconds: float = 1.0  # the beat's look at journey entries and due steps
    # mail
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_tls: str = "none"  # none | starttls | ssl
    smtp_timeout: float = 30.0
    # several relays, in order of preference: smtp://[user:pass@]host:port (add ?tls=starttls),
    # smtps://... (TLS from the first byte); when set, the OUTREACH_SMTP_HOST/... are unused
    smtp_urls: tuple[str, ...] = ()
    smtp_relay_cooldown_seconds: float = 30.0  # a relay that failed is not tried for this long
    from_email: str = "marketing@example.com"
    # deliverability (mail/dkim.py, mail/verp.py, campaigns/bounces/)
    dkim_domain: str = ""  # DKIM signing when domain, selector and key file are all set
    dkim_selector: str = ""
    dkim_private_key_file: str = ""  # PEM, PKCS#1 or PKCS#8; RSA 2048+ or Ed25519
    bounce_domain: str = ""  # envelope sender b-<token>@<bounce domain> (VERP)
    bounce_mailbox: str = ""  # imaps://user:pass@host/INBOX polled for bounces
    bounce_mailbox_poll_seconds: float = 60.0
    inbound_max_message_bytes: int = 10 * 1024 * 1024
    inbound_max_connections_per_client: int = 10
    soft_bounce_limit: int = 3  # soft bounces of one address within 30 days that suppress it
    max_bounce_rate: float = 0.05  # hard bounces / delivered that pause a campaign (after 200)
    max_complaint_rate: float = 0.003
    sendgrid_webhook_public_key: str = ""  # base64 DER (ECDSA P-256), as SendGrid shows it
    mailgun_signing_key: str = ""
    postmark_webhook_user: str = ""
    postmark_webhook_password: str = ""
    ses_topic_arns: tuple[str, ...] = ()  # SNS topics whose notifications are believed
    postal_address: str = ""  # the sender's postal address, in the built-in templates' footer
    domain_limits: str = ""  # gmail.com=20/s,5c;yahoo.com=10/s;*=50/s (campaigns/pacing.py)
    # a recipient whose domain keeps deferring it is failed (never suppressed) after this long,
    # as an MTA gives up after its queue lifetime: the campaign can finish
    domain_defer_max_seconds: float = 86_400.0
    track_opens: bool = True  # the open pixel (an <img> in < 3,200 bytes of HTML: HTML_IMAGE_ONLY_*)
    # ingest
    ingest_batch_size: int = 250
    ingest_claim_idle_ms: int = 30_000  # pending entries of a dead consumer are taken over after this
    ingest_kick_ms: int = 2_000
    # sending
    send_batch_size: int = 100
    send_window_batches: int = 8  # batches queued ahead of the senders (memory stays flat)
    campaign_watch_seconds: float = 2.0
    send_claim_timeout_seconds: float = 120.0  # a 'sending' claim older than this is 'unknown'
    send_batch_stale_seconds: float = 300.0  # a batch not finished after this is enqueued again
    send_max_consecutive_failures: int = 10
    send_retry_max_seconds: int = 300
    send_session_retries: int = 3  # relay/sender refusals (535, 553, TLS) before pausing
    send_breaker_refusals: int = 10  # same-kind refusals in a row (no delivery) that pause
    send_soft_retries: int = 8  # temporary refusals of one recipient before it is failed
    send_heartbeat_seconds: float = 10.0  # a send run whose heartbeat is older is dead
    default_rate_per_second: float = 0.0  # 0: unlimited
    template_max_source_bytes: int = 256 * 1024
    template_max_output_bytes: int = 1024 * 1024
    render_timeout_seconds: float = 2.0  # one render (preview or one recipient's message)
    # engagement and conversion
    score_open: int = 5
    score_click: int = 15
    machine_open_seconds: float = 10.0  # an open this soon after delivery is a machine's
    score_repeat_registration: int = 10
    score_event_after_white_paper: int = 10
    promotion_threshold: int = 50
    score_half_life_days: float = 30.0  # every point loses half its weight per half-life; 0: off
    conversion_interval_seconds: float = 300.0
    default_estimated_revenue: float = 10_000.0
    default_close_days: int = 90
    # people: the time zone of a person without a `timezone` (quiet hours, waits, local sends)
    default_timezone: str = "UTC"
    default_probability: int = 20
    # sales (sales/owners.py, sales/tasks.py, platform/webhooks.py)
    opportunity_owner: str = ""  # automatic opportunities' owner; empty: round-robin over sales
    task_digest_hour: int = 7  # UTC hour from which each owner's daily overdue digest goes out
    task_reminder_seconds: float = 5.0  # how often the beat looks for tasks falling due
    webhook_allow_private: bool = False  # allow webhook URLs on loopback/private/link-local
    webhook_timeout_seconds: float = 10.0
    webhook_disable_after_hours: float = 72.0  # failing with no success this long disables
    webhook_max_attempts: int = 30  # attempts of one delivery (5 s, 30 s, 2 min, 10 min, hourly)
    webhook_tick_seconds: float = 1.0
    webhook_lease_seconds: float = 120.0  # a claimed delivery not finished by then is retaken
    # broker safety
    visibility_timeout_seconds: int = 3600
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def effective_broker_url(self) -> str:
        if self.broker_url:
            return self.broker_url
        if self.redis_sentinels:  # kombu's sentinel transport: master_name in transport options
            parts = urlsplit(self.redis_url) if self.redis_url else None
            auth = f":{parts.password}@" if parts and parts.password else ""
            db = (parts.path.strip("/") if parts else "") or "0"
            return ";".join(f"sentinel://{auth}{address}/{db}" for address in self.redis_sentinels)
        return self.redis_url

    @cached_property
    def relays(self) -> tuple[Relay, ...]:
        """The SMTP relays in order of preference: ``smtp_urls``, else the single
        ``smtp_host``/``smtp_port``/... relay."""
        if self.smtp_urls:
            return tuple(parse_smtp_url(url) for url in self.smtp_urls)
        return (Relay(self.smtp_host, self.smtp_port, self.smtp_tls, self.smtp_user,
                      self.smtp_password),)

    @property
    def intake_creates_assets(self) -> bool:
        """Whether a registration without a key may create an asset (an unknown slug)."""
        if self.intake_create_assets.strip():
            return _bool(self.intake_create_assets)
        return bool(self.extra.get("dev_mode"))

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """The secret that signs, then the fallbacks that are still accepted when verifying."""
        return (self.secret_key, *(k for k in self.secret_key_fallbacks if k != self.secret_key))

    @property
    def embedded(self) -> bool:
        return not self.redis_url and not self.redis_sentinels

    @cached_property
    def intake_rate(self) -> tuple[int, int] | None:
        """``intake_rate_limit`` parsed once: (requests, window seconds), or None (off)."""
        return parse_rate(self.intake_rate_limit)

    def with_overrides(self, **overrides: Any) -> Config:
        known = {f.name for f in fields(self)}
        extra = dict(self.extra)
        for key in list(overrides):
            if key not in known:
                extra[key] = overrides.pop(key)
        return replace(self, extra=extra, **overrides)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get("OUTREACH_" + f.name.upper())
            if raw is None:
                continue
            default = f.default
            name = "OUTREACH_" + f.name.upper()
            if isinstance(default, bool):
                values[f.name] = _bool(raw)
            elif isinstance(default, int):
                values[f.name] = _number(int, name, raw, "an integer")
            elif isinstance(default, float):
                values[f.name] = _number(float, name, raw, "a number")
            elif isinstance(default, tuple):
                values[f.name] = _list(raw)
            else:
                values[f.name] = raw
        if "smtp_tls" in values:
            values["smtp_tls"] = values["smtp_tls"].strip().lower()
            if values["smtp_tls"] not in SMTP_TLS_MODES:
                raise ConfigError(f"OUTREACH_SMTP_TLS={env['OUTREACH_SMTP_TLS']!r} is not one of "
                                  + ", ".join(SMTP_TLS_MODES))
        for url in values.get("smtp_urls", ()):
            try:
                parse_smtp_url(url)
            except ValueError as exc:
                raise ConfigError(f"OUTREACH_SMTP_URLS={_redacted(url)!r} {exc}") from None
        if "default_timezone" in values and not _known_zone(values["default_timezone"]):
            raise ConfigError(f"OUTREACH_DEFAULT_TIMEZONE={values['default_timezone']!r} is not an "
                              "IANA time zone (e.g. Europe/Berlin)")
        if values.get("score_half_life_days", 0) < 0:
            raise ConfigError("OUTREACH_SCORE_HALF_LIFE_DAYS must be 0 (off) or more")
        if "intake_rate_limit" in values:
            try:
                parse_rate(values["intake_rate_limit"])
            except ValueError:
                raise ConfigError(f"OUTREACH_INTAKE_RATE_LIMIT={values['intake_rate_limit']!r} is not "
                                  "a rate like 30/minute (second, minute, hour, day) or 0") from None
        return cls(**values)


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return bool(name)


@dataclass(frozen=True)
class Relay:
    """One SMTP relay: where, how (``none|starttls|ssl``) and the optional login."""

    host: str
    port: int
    tls: str = "none"
    user: str = ""
    password: str = field(default="", repr=False)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


_SMTP_SCHEMES = {"smtp": ("none", 25), "smtps": ("ssl", 465)}
_URL_FORM = "is not smtp://[user:pass@]host:port[?tls=starttls] or smtps://[user:pass@]host:port"


def parse_smtp_url(url: str) -> Relay:
    """``smtp://user:pass@host:587?tls=starttls`` -> a Relay; ValueError when malformed."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError(_URL_FORM) from None
    scheme = parts.scheme.lower()
    if scheme not in _SMTP_SCHEMES or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(_URL_FORM)
    tls, default_port = _SMTP_SCHEMES[scheme]
    query = dict(pair.partition("=")[::2] for pair in parts.query.split("&") if pair)
    if set(query) - {"tls"}:
        raise ValueError(_URL_FORM)
    if "tls" in query:
        tls = query["tls"].lower()
        if tls not in SMTP_TLS_MODES or (scheme == "smtps" and tls != "ssl"):
            raise ValueError(f"has tls={query['tls']!r}: " + ", ".join(SMTP_TLS_MODES)
                             + " (smtps:// is always ssl)")
    return Relay(parts.hostname, port or default_port, tls, unquote(parts.username or ""),
                 unquote(parts.password or ""))


def _redacted(url: str) -> str:
    """``url`` without its password (error messages end up in logs)."""
    scheme, sep, rest = url.strip().partition("://")
    auth, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in auth:
        return url.strip()
    return f"{scheme}://{auth.partition(':')[0]}:***@{host}"


def _number(kind: type, name: str, raw: str, what: str) -> Any:
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {what}") from None
    if kind is float and not math.isfinite(value):  # nan, inf
        raise ConfigError(f"{name}={raw!r} is not {what}")
    return value


def parse_rate(spec: str) -> tuple[int, int] | None:
    """``"30/minute"`` -> ``(30, 60)``; ``"0"`` or empty -> ``None`` (no limit)."""
    spec = spec.strip()
    if not spec or spec == "0":
        return None
    count, _, unit = spec.partition("/")
    seconds = {"second": 1, "s": 1, "minute": 60, "m": 60, "hour": 3600, "h": 3600, "day": 86400}
    n = int(count)
    if n <= 0:
        return None
    unit = unit.strip().lower() or "minute"
    if unit not in seconds:
        raise ValueError(f"unknown rate unit {unit!r}")
    return n, seconds[unit]
