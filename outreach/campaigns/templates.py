"""Email templates: marketer-authored Jinja2 sources, validated by compiling them in the sandbox."""

from __future__ import annotations

import re
import time
from typing import Any

from outreach.config import Config
from outreach.errors import Invalid, NotFound
from outreach.mail.rendering import CompiledTemplate, compile_template
from outreach.paths import EMAIL_TEMPLATES_DIR
from outreach.platform.paging import existing_hash, load_hashes, page, page_of_hashes
from outreach.store import Store
from outreach.vocabulary import iso

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
    checked = compile_template(data["subject"], data["html"], data["text"],
                               max_source=config.template_max_source_bytes,
                               max_output=config.template_max_output_bytes,
                               timeout=config.render_timeout_seconds)
    within_budget(checked, config)
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


def find_templates(store: Store, *, limit: int = 50, cursor: str | None = None,
                   newest_first: bool = False, q: str = "") -> dict[str, Any]:
    """Templates oldest (or newest) first; ``q``: only those whose name contains it (case-
    and accent-insensitive)."""
    from outreach.people.search import fold

    if not q.strip():
        return page_of_hashes(store, store.keys.templates, store.keys.template, template_view,
                              limit, cursor, newest_first)
    needle = fold(q.strip())

    def load(ids: list[str]) -> list[dict[str, Any] | None]:
        rows = load_hashes(store, store.keys.template, ids)
        return [template_view(i, h) if h and needle in fold(h.get("name")) else None
                for i, h in zip(ids, rows, strict=True)]

    return page(store, store.keys.templates, limit, cursor, load, newest_first)


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
                                 max_output=config.template_max_output_bytes,
                                 timeout=config.render_timeout_seconds)
        if len(_COMPILED) > 256:
            _COMPILED.clear()
        _COMPILED[cache_key] = found
    return found


SAMPLE_PERSON = {"email": "alex@example.com", "first_name": "Alex", "last_name": "Sample",
                 "company": "Example Corp", "job_title": "Head of Marketing"}


def _sample_variables(config: Config, person: dict[str, Any]) -> dict[str, Any]:
    variables: dict[str, Any] = dict(person)
    variables.update(person=dict(person), unsubscribe_url="#unsubscribe-preview", asset=None,
                     campaign={"id": "preview", "name": "Preview"})
    variables["postal_address"] = config.postal_address
    return variables


def within_budget(template: CompiledTemplate, config: Config) -> None:
    """422 when rendering for the sample person takes more work, memory or time than one
    message may (the source it happened in, and why). Other render errors (a variable the
    sample person lacks) are the preview's to show, not a reason to refuse the template."""
    from outreach.mail.rendering import BudgetExceeded, RenderError

    try:
        template.render(_sample_variables(config, SAMPLE_PERSON))
    except BudgetExceeded as exc:
        raise Invalid("Validation failed.", {exc.part or "html": [str(exc)]}) from None
    except RenderError:
        pass


def _person(store: Store, email: str | None) -> tuple[dict[str, Any], dict[str, str] | None]:
    """The lead or contact with ``email`` as template variables (a sample person when there
    is none), and ``{"type", "id"}`` of who was found."""
    from outreach.normalize import InvalidEmail, checked_email
    from outreach.people.records import EDITABLE_FIELDS

    keys = store.keys
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
                return ({"email": normal, **{f: h.get(f) for f in EDITABLE_FIELDS}},
                        {"type": kind, "id": person_id})
    return dict(SAMPLE_PERSON), None


def _render_for(store: Store, config: Config, template: CompiledTemplate, email: str | None
                ) -> dict[str, Any]:
    from outreach.mail.rendering import BudgetExceeded, RenderError

    person, found = _person(store, email)
    try:
        subject, html, text = template.render(_sample_variables(config, person))
    except RenderError as exc:
        return {"subject": "", "html": "", "text": "", "person": found, "email": person["email"],
                "error": str(exc),
                "over_budget": exc.part or "html" if isinstance(exc, BudgetExceeded) else None}
    return {"subject": subject, "html": html, "text": text, "person": found,
            "email": person["email"], "error": None, "over_budget": None}


def preview(store: Store, config: Config, template_id: str, email: str | None = None
            ) -> dict[str, Any]:
    """The template rendered in the sending sandbox for the lead or contact with ``email``
    (a sample person when there is none): ``{"subject", "html", "text", "person", "error"}``.
    Links are not tracked and the unsubscribe link goes nowhere: nothing is recorded."""
    return _render_for(store, config, compiled(store, config, template_id), email)


DRAFT_PREVIEW_SECONDS = 600
_CONTEXT_LINES = 2


def _listing(source: str, line: int | None) -> list[dict[str, Any]]:
    """The lines around ``line`` (numbered from 1), the offending one marked."""
    if not line:
        return []
    lines = source.split("\n")
    first = max(1, line - _CONTEXT_LINES)
    last = min(len(lines), line + _CONTEXT_LINES)
    return [{"number": n, "text": lines[n - 1], "bad": n == line} for n in range(first, last + 1)]


def preview_draft(store: Store, config: Config, data: dict[str, str], email: str | None = None
                  ) -> dict[str, Any]:
    """An unsaved template (``subject``, ``html``, ``text``) checked and rendered as sending
    would: ``{"errors": {source: {"message", "line", "listing"}}, "preview": ...}``. With no
    compile error, ``preview`` is what ``preview`` gives plus ``frame``: a token under which
    the rendered HTML is kept for ``DRAFT_PREVIEW_SECONDS`` for the sandboxed preview frame
    (``draft_html``); nothing else is stored."""
    import secrets

    from outreach.mail.rendering import try_compile

    sources = {name: data.get(name) or "" for name in ("subject", "html", "text")}
    template, problems = try_compile(sources["subject"], sources["html"], sources["text"],
                                     max_source=config.template_max_source_bytes,
                                     max_output=config.template_max_output_bytes,
                                     timeout=config.render_timeout_seconds)
    if template is None:
        return {"errors": {name: {"message": p.message, "line": p.line,
                                  "listing": _listing(sources[name], p.line)}
                           for name, p in problems.items()},
                "preview": None}
    shown = _render_for(store, config, template, email)
    if shown["over_budget"]:  # as at save: a template that is a program is refused
        part = shown["over_budget"]
        return {"errors": {part: {"message": shown["error"], "line": None, "listing": []}},
                "preview": None}
    shown["frame"] = None
    if not shown["error"]:
        shown["frame"] = secrets.token_urlsafe(16)
        store.r.set(store.keys.template_draft_preview(shown["frame"]), shown["html"],
                    ex=DRAFT_PREVIEW_SECONDS)
    return {"errors": {}, "preview": shown}


def draft_html(store: Store, token: str) -> str | None:
    """The rendered HTML ``preview_draft`` kept under ``token`` (``None`` once expired)."""
    return store.r.get(store.keys.template_draft_preview(token))
