"""Assets (white papers, events) as records, and the form rules every registration to one obeys.

An asset is made by ``POST /api/v1/assets`` or, bare (only its kind), by the ingest script on
the first registration for an unknown slug. Its form settings say which optional fields the
hosted form and the embed ask for, which are required (enforced on every registration), the
consent wording (every change is a new version; old versions stay readable), double opt-in,
the thank-you message or ``redirect_to``, and the bot checks (minimum fill time).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from outreach.errors import Conflict, Invalid, NotFound
from outreach.platform.paging import page
from outreach.store import Store
from outreach.vocabulary import FORM_FIELDS, KINDS, iso

# profile fields a form may ask for (in the order a form shows them)
FIELD_LABELS = {
    "email": "Email", "first_name": "First name", "last_name": "Last name", "company": "Company",
    "job_title": "Job title", "phone": "Phone", "mobile_phone": "Mobile phone",
    "street": "Street", "city": "City", "state": "State or region", "postal_code": "Postal code",
    "country": "Country", "consent": "Consent",
}
FIELD_AUTOCOMPLETE = {
    "first_name": "given-name", "last_name": "family-name", "company": "organization",
    "job_title": "organization-title", "phone": "tel", "mobile_phone": "tel",
    "street": "street-address", "city": "address-level2", "state": "address-level1",
    "postal_code": "postal-code", "country": "country-name"}
DEFAULT_CONSENT_TEXT = "Yes, send me news and offers by email. I can unsubscribe at any time."
_RECORD_FIELDS = ("title", "description", "starts_at", "location")
_FORM_DEFAULTS: dict[str, Any] = {
    "fields": ["first_name", "last_name", "company"], "required": [], "double_opt_in": False,
    "thank_you_message": None, "redirect_to": None, "min_fill_seconds": 0,
    "proof_of_work": False,
}


@dataclass(frozen=True)
class FormRules:
    """What intake checks for one asset (cached per process)."""

    required: tuple[str, ...] = ()
    double_opt_in: bool = False
    consent_version: int | None = None
    min_fill_seconds: int = 0
    proof_of_work: bool = False
    kind: str | None = None  # the asset's stored kind; None: no such asset (yet)

    @property
    def trivial(self) -> bool:
        return not (self.required or self.double_opt_in or self.min_fill_seconds
                    or self.proof_of_work)


NO_RULES = FormRules()


def _form_of(h: dict[str, str]) -> dict[str, Any]:
    form = dict(_FORM_DEFAULTS)
    if h.get("form"):
        form.update(json.loads(h["form"]))
    version = int(h["consent_version"]) if h.get("consent_version") else None
    form["consent_version"] = version
    form["consent_text"] = h.get(f"consent:{version}") if version else DEFAULT_CONSENT_TEXT
    return form


def asset_view(store: Store, slug: str, h: dict[str, str], lists: str | None,
               base_url: str = "") -> dict[str, Any]:
    lead_list, _, contact_list = (lists or "").partition(",")
    view: dict[str, Any] = {
        "slug": slug,
        "kind": h.get("kind"),
        "title": h.get("title") or slug,
        "description": h.get("description"),
        "starts_at": h.get("starts_at"),
        "location": h.get("location"),
        "form": _form_of(h),
        "lead_list_id": lead_list or None,
        "contact_list_id": contact_list or None,
        "form_url": f"{base_url.rstrip('/')}/f/{slug}",
        "created_at": iso(h.get("created_at")),
        "updated_at": iso(h.get("updated_at") or h.get("created_at")),
    }
    made = str(h.get("updated_at") or h.get("created_at") or "0")
    view["embed_snippet"] = embed_snippet(view, base_url, int(made) if made.isdigit() else 0)
    return view


_FORM_TEMPLATE: list[Any] = []


def form_html(asset: dict[str, Any], *, action: str, values: dict[str, Any] | None = None,
              errors: dict[str, list[str]] | None = None, started: int | None = None) -> str:
    """The plain HTML form of an asset (``forms/_form.html``): the hosted page's form, the
    embed snippet's no-script fallback, and the form shown again with per-field errors."""
    if not _FORM_TEMPLATE:
        from jinja2 import Environment, FileSystemLoader, select_autoescape

        from outreach.paths import TEMPLATES_DIR

        env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)),
                          autoescape=select_autoescape(["html"]))
        _FORM_TEMPLATE.append(env.get_template("forms/_form.html"))
    return str(_FORM_TEMPLATE[0].render(
        asset=asset, values=values or {}, errors=errors or {}, labels=FIELD_LABELS,
        autocomplete=FIELD_AUTOCOMPLETE, action=action,
        started=int(time.time()) if started is None else started))


def embed_snippet(asset: dict[str, Any], base_url: str, started: int) -> str:
    """The copy-paste HTML that renders this asset's form on another site: the script, and
    inside the div the plain form it enhances, so the form still posts when the script is
    blocked. The one source of the snippet (the API's asset view, which the console's forms
    page shows). ``started`` (the form's ``_t``) is when the asset last changed, so the
    snippet is the same on every read; the script resets it when it runs."""
    base = base_url.rstrip("/")
    form = form_html(asset, action=f"{base}/api/v1/registrations", started=started).strip()
    return (f'<div data-outreach-form="{escape(asset["slug"], quote=True)}">\n{form}\n</div>\n'
            f'<script src="{escape(base, quote=True)}/embed/v1/form.js" async></script>')


def _load(store: Store, slugs: list[str], base_url: str) -> list[dict[str, Any] | None]:
    keys = store.keys
    pipe = store.r.pipeline(transaction=False)
    for slug in slugs:
        pipe.hgetall(keys.asset(slug))
    rows = pipe.execute()
    pipe = store.r.pipeline(transaction=False)
    for slug, h in zip(slugs, rows, strict=True):
        pipe.hget(keys.assets, f"{h.get('kind')}:{slug}")
    lists = pipe.execute()
    return [asset_view(store, slug, h, pair, base_url) if h else None
            for slug, h, pair in zip(slugs, rows, lists, strict=True)]


def get_asset(store: Store, slug: str, base_url: str = "") -> dict[str, Any]:
    found = _load(store, [slug], base_url)[0]
    if found is None:
        raise NotFound(f"No asset {slug!r}.")
    return found


def find_assets(store: Store, *, limit: int = 50, cursor: str | None = None,
                base_url: str = "") -> dict[str, Any]:
    return page(store, store.keys.asset_index, limit, cursor,
                lambda slugs: _load(store, slugs, base_url))


def _checked_form(form: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    merged = {**current, **{k: v for k, v in form.items() if k != "consent_text"}}
    fields = [f for f in merged.get("fields") or [] if f in FORM_FIELDS]
    required = list(dict.fromkeys(merged.get("required") or []))
    for name in required:
        if name in FORM_FIELDS and name not in fields:
            fields.append(name)  # a required field is always asked for
    merged["fields"] = [f for f in FORM_FIELDS if f in fields]
    merged["required"] = required
    return {k: merged.get(k) for k in _FORM_DEFAULTS}


def create_asset(store: Store, data: dict[str, Any], base_url: str = "") -> dict[str, Any]:
    """A new asset record (409 when the slug has one, made by a registration or by a marketer)."""
    keys = store.keys
    slug = data["slug"]
    key = keys.asset(slug)
    if not store.r.hsetnx(key, "kind", data["kind"]):
        raise Conflict(f"The asset {slug!r} exists; change it with PATCH.")
    now = str(int(time.time()))
    mapping = {"slug": slug, "created_at": now, "updated_at": now}
    mapping.update({name: str(data[name]) for name in _RECORD_FIELDS if data.get(name)})
    form = data.get("form") or {}
    mapping["form"] = json.dumps(_checked_form(form, dict(_FORM_DEFAULTS)))
    mapping["consent_version"] = "1"
    mapping["consent:1"] = form.get("consent_text") or DEFAULT_CONSENT_TEXT
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(key, mapping=mapping)
    pipe.zadd(keys.asset_index, {slug: store.r.hincrby(keys.sequences, "asset", 1)}, nx=True)
    pipe.execute()
    return get_asset(store, slug, base_url)


def update_asset(store: Store, slug: str, changes: dict[str, Any],
                 base_url: str = "") -> dict[str, Any]:
    """Edit an asset; new consent wording becomes the next version (earlier ones are kept)."""
    keys = store.keys
    key = keys.asset(slug)
    h = store.r.hgetall(key)
    if not h:
        raise NotFound(f"No asset {slug!r}.")
    if "kind" in changes and changes["kind"] != h.get("kind"):
        raise Invalid("Validation failed.", {"kind": ["An asset's kind cannot change."]})
    if h.get("kind") != "event":  # the schema checks this only when the body names the kind
        wrong = {name: ["Only events have this."] for name in ("starts_at", "location")
                 if changes.get(name)}
        if wrong:
            raise Invalid("Validation failed.", wrong)
    mapping: dict[str, str] = {"updated_at": str(int(time.time()))}
    to_clear = []
    for name in _RECORD_FIELDS:
        if name in changes:
            if changes[name] in (None, ""):
                to_clear.append(name)
            else:
                mapping[name] = str(changes[name])
    if "form" in changes:
        form = changes["form"] or {}
        current = _form_of(h)
        mapping["form"] = json.dumps(_checked_form(form, current))
        text = form.get("consent_text")
        if text and text != current["consent_text"]:
            version = int(h.get("consent_version") or 0) + 1
            mapping["consent_version"] = str(version)
            mapping[f"consent:{version}"] = text
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(key, mapping=mapping)
    if to_clear:
        pipe.hdel(key, *to_clear)
    pipe.execute()
    return get_asset(store, slug, base_url)


def consent_text(store: Store, slug: str, version: int) -> str | None:
    """The consent wording a person saw (by version)."""
    return store.r.hget(store.keys.asset(slug), f"consent:{version}")


_KNOWN_KIND = {kind: FormRules(kind=kind) for kind in KINDS}


def load_rules(store: Store, slug: str) -> FormRules:
    h = store.r.hmget(store.keys.asset(slug), "form", "consent_version", "kind")
    if not h[0]:
        return _KNOWN_KIND.get(h[2] or "", NO_RULES)
    form = json.loads(h[0])
    return FormRules(
        required=tuple(form.get("required") or ()),
        double_opt_in=bool(form.get("double_opt_in")),
        consent_version=int(h[1]) if h[1] else None,
        min_fill_seconds=int(form.get("min_fill_seconds") or 0),
        proof_of_work=bool(form.get("proof_of_work")),
        kind=h[2],
    )


class RulesCache:
    """Form rules per slug, kept ``ttl`` seconds in this process: intake reads them for every
    registration, Redis at most once per slug and interval (a changed rule applies within it)."""

    def __init__(self, store: Store, ttl: float,
                 clock: Callable[[], float] = time.monotonic, max_size: int = 10_000) -> None:
        self._store, self._ttl, self._clock, self._max = store, ttl, clock, max_size
        self._cache: dict[str, tuple[float, FormRules]] = {}
        self._lock = threading.Lock()

    def __call__(self, slug: str) -> FormRules:
        now = self._clock()
        hit = self._cache.get(slug)
        if hit is not None and hit[0] > now:
            return hit[1]
        rules = load_rules(self._store, slug)
        if rules.kind is None:  # not (yet) an asset: asked again next time, never cached (a
            return rules        # bot inventing slugs cannot fill the cache)
        with self._lock:
            if len(self._cache) >= self._max:
                self._cache.clear()
            self._cache[slug] = (now + self._ttl, rules)
        return rules


def check_form_rules(rules: FormRules, registration: dict[str, Any], raw: dict[str, Any]) -> None:
    """422 on every required field the registration leaves empty."""
    missing = {}
    for name in rules.required:
        value = registration.get(name)
        if name == "consent":
            if not value:
                missing[name] = ["Consent is required."]
        elif not (isinstance(value, str) and value.strip()):
            missing[name] = ["Missing data for required field."]
    if missing:
        raise Invalid("Validation failed.", missing)


def looks_like_a_bot(rules: FormRules, raw: dict[str, Any], now: float, from_form: bool) -> bool:
    """A minimum fill time: the form's render time (``_t``, epoch seconds, put there by the
    hosted form and the embed) must be at least ``min_fill_seconds`` ago. A form post without
    ``_t`` is a bot; a JSON post without it (an API client) is not judged by it."""
    if not rules.min_fill_seconds:
        return False
    started = raw.get("_t")
    if started in (None, ""):
        return from_form
    try:
        return now - float(started) < rules.min_fill_seconds
    except (TypeError, ValueError):
        return True


# ---------------------------------------------------------------- proof of work (ALTCHA)

POW_MAX_NUMBER = 50_000  # about a second of SHA-256 in a browser at worst, ~0.3 s on average
POW_SECONDS = 600


def _pow_key(secret_key: str) -> str:
    return hashlib.sha256(f"outreach.altcha:{secret_key}".encode()).hexdigest()


def pow_challenge(secret_key: str) -> dict[str, Any]:
    """A signed ALTCHA (v1) challenge that expires: what the widget's ``challengeurl`` gives."""
    from altcha import ChallengeOptionsV1, create_challenge_v1

    expires = datetime.now(UTC) + timedelta(seconds=POW_SECONDS)
    challenge = create_challenge_v1(ChallengeOptionsV1(
        hmac_key=_pow_key(secret_key), max_number=POW_MAX_NUMBER, expires=expires))
    return {"algorithm": challenge.algorithm, "challenge": challenge.challenge,
            "maxnumber": challenge.max_number, "salt": challenge.salt,
            "signature": challenge.signature}


def pow_solved(store: Store, secret_key: str, payload: Any) -> bool:
    """Whether ``payload`` (the form's ``altcha`` field) solves a challenge of ours that has not
    expired and was not used before (each solution counts once)."""
    from altcha import verify_solution_v1

    if not isinstance(payload, str) or not payload or len(payload) > 2000:
        return False
    try:
        ok, _ = verify_solution_v1(payload, _pow_key(secret_key), check_expires=True)
        if not ok:
            return False
        decoded = json.loads(base64.b64decode(payload))
    except (ValueError, TypeError, KeyError):
        return False
    return bool(store.r.set(store.keys.pow_used(str(decoded.get("signature"))), "1", nx=True,
                            ex=POW_SECONDS))
