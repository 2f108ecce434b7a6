"""Email templates: marketer-authored Jinja2 sources, validated by compiling them in the sandbox."""

from __future__ import annotations

import re
import time
from typing import Any

from outreach.config import Config
from outreach.errors import NotFound
from outreach.paths import EMAIL_TEMPLATES_DIR
from outreach.rendering import CompiledTemplate, compile_template
from outreach.schemas.common import iso
from outreach.services.paging import existing_hash, page_of_hashes
from outreach.store import Store

_SUBJECT_LINE = re.compile(r"^\{#\s*subject:\s*(.*?)\s*#\}\s*\n", re.S)


def builtin_templates() -> list[dict[str, str]]:
    """The starting points shipped in ``templates/email`` (html + txt pairs)."""
    out = []
    for html_path in sorted(EMAIL_TEMPLATES_DIR.glob("*.html")):
        html = html_path.read_text()
        match = _SUBJECT_LINE.match(html)
        subject = match.group(1) if match else html_path.stem.replace("_", " ").title()
        if match:
            html = html[match.end():]
        text = html_path.with_suffix(".txt").read_text()
        out.append({"name": html_path.stem, "subject": subject, "html": html, "text": text})
    return out


def create_template(store: Store, config: Config, data: dict[str, Any]) -> dict[str, Any]:
    compile_template(data["subject"], data["html"], data["text"],
                     max_source=config.template_max_source_bytes,
                     max_output=config.template_max_output_bytes)
    template_id, n = store.next_id("template", "tp")
    record = {"name": data["name"], "subject": data["subject"], "html": data["html"],
              "text": data["text"], "created_at": str(int(time.time()))}
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(store.keys.template(template_id), mapping=record)
    pipe.zadd(store.keys.templates, {template_id: n})
    pipe.execute()
    return template_view(template_id, record)


def template_view(template_id: str, h: dict[str, str]) -> dict[str, Any]:
    return {"id": template_id, "name": h.get("name"), "subject": h.get("subject"),
            "html": h.get("html"), "text": h.get("text"), "created_at": iso(h.get("created_at"))}


def get_template(store: Store, template_id: str) -> dict[str, Any]:
    h = existing_hash(store, store.keys.template(template_id), "template", template_id)
    return template_view(template_id, h)


def find_templates(store: Store, *, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    return page_of_hashes(store, store.keys.templates, store.keys.template, template_view, limit,
                          cursor)


_COMPILED: dict[tuple[int, str, str], CompiledTemplate] = {}


def compiled(store: Store, config: Config, template_id: str) -> CompiledTemplate:
    """The compiled template (templates are immutable once created, so caching is safe)."""
    # the key prefix too: a new Store may get the id of a collected one (tests, dev)
    cache_key = (id(store), store.keys.tag, template_id)
    found = _COMPILED.get(cache_key)
    if found is None:
        h = store.r.hgetall(store.keys.template(template_id))
        if not h:
            raise NotFound("The campaign's template no longer exists.")
        found = compile_template(h["subject"], h["html"], h["text"],
                                 max_source=config.template_max_source_bytes,
                                 max_output=config.template_max_output_bytes)
        if len(_COMPILED) > 256:
            _COMPILED.clear()
        _COMPILED[cache_key] = found
    return found


SAMPLE_PERSON = {"email": "alex@example.com", "first_name": "Alex", "last_name": "Sample",
                 "company": "Example Corp", "job_title": "Head of Marketing"}


def preview(store: Store, config: Config, template_id: str, email: str | None = None
            ) -> dict[str, Any]:
    """The template rendered in the sending sandbox for the lead or contact with ``email``
    (a sample person when there is none): ``{"subject", "html", "text", "person", "error"}``.
    Links are not tracked and the unsubscribe link goes nowhere: nothing is recorded."""
    from outreach.normalize import InvalidEmail, checked_email
    from outreach.rendering import RenderError
    from outreach.services.people import EDITABLE_FIELDS

    template = compiled(store, config, template_id)
    keys = store.keys
    person: dict[str, Any] = dict(SAMPLE_PERSON)
    found = None
    if email:
        try:
            normal = checked_email(email)
        except InvalidEmail:
            normal = ""
        for index, key_for, kind in ((keys.lead_by_email, keys.lead, "lead"),
                                     (keys.contact_by_email, keys.contact, "contact")):
            person_id = store.r.hget(index, normal) if normal else None
            if person_id:
                h = store.r.hgetall(key_for(person_id))
                person = {"email": normal, **{f: h.get(f) for f in EDITABLE_FIELDS}}
                found = {"type": kind, "id": person_id}
                break
    variables: dict[str, Any] = dict(person)
    variables.update(person=dict(person), unsubscribe_url="#unsubscribe-preview", asset=None,
                     campaign={"id": "preview", "name": "Preview"})
    variables["postal_address"] = config.postal_address
    try:
        subject, html, text = template.render(variables)
    except RenderError as exc:
        return {"subject": "", "html": "", "text": "", "person": found, "email": person["email"],
                "error": str(exc)}
    return {"subject": subject, "html": html, "text": text, "person": found,
            "email": person["email"], "error": None}
