"""The console's Forms page: each asset's hosted form link and its copy-paste snippet."""

from __future__ import annotations

import html

from test_console import PASSWORD, sign_in

from outreach.platform import users


def test_forms_page_shows_link_and_snippet(env) -> None:
    env.post("/api/v1/assets", json={"slug": "summit", "kind": "event", "title": "Summit",
                                     "form": {"fields": ["company"]}})
    env.registered(asset="guide")
    users.create_user(env.store, "m@example.com", "marketer", PASSWORD)
    users.create_user(env.store, "s@example.com", "sales", PASSWORD)
    sign_in(env, "m@example.com")
    page = env.client.get("/console/forms")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "http://localhost:8000/f/summit" in text and "http://localhost:8000/f/guide" in text
    snippet = html.unescape(text)
    assert '<div data-outreach-form="summit">' in snippet
    assert '<script src="http://localhost:8000/embed/v1/form.js" async></script>' in snippet
    assert 'name="company"' in snippet  # the plain form inside, for blocked scripts
    assert 'href="/console/forms"' in env.client.get("/console/").get_data(as_text=True)
    sales = env.app.test_client()
    sign_in(env, "s@example.com", client=sales)
    assert sales.get("/console/forms").status_code == 403


def test_api_snippet_is_the_console_snippet_with_its_no_script_form(env) -> None:
    import re

    created = env.post("/api/v1/assets", json={"slug": "summit", "kind": "event", "title": "S",
                                               "form": {"fields": ["company"],
                                                        "required": ["company"]}})
    snippet = created.get_json()["embed_snippet"]
    # the plain form inside the div posts on its own when the script is blocked
    form = re.search(r'<div data-outreach-form="summit">\n(<form .*?</form>)\n</div>', snippet,
                     re.S)
    assert form, snippet
    assert 'action="http://localhost:8000/api/v1/registrations"' in form.group(1)
    for hidden in ('name="kind" value="event"', 'name="asset" value="summit"', 'name="thanks"',
                   'name="_t"', 'name="website"'):
        assert hidden in form.group(1), hidden
    assert 'name="email"' in form.group(1) and 'name="company"' in form.group(1)
    assert snippet.endswith('<script src="http://localhost:8000/embed/v1/form.js" async></script>')
    # the same on every read, and the same text the console shows (one source)
    assert env.get("/api/v1/assets/summit").get_json()["embed_snippet"] == snippet
    users.create_user(env.store, "m@example.com", "marketer", PASSWORD)
    sign_in(env, "m@example.com")
    page = html.unescape(env.client.get("/console/forms").get_data(as_text=True))
    assert snippet in page
    # posted as a plain form (no script), it registers and lands on the thank-you page
    # (as a browser does: a disabled field, the time zone a script would fill in, is not posted)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', snippet))
    response = env.client.post("/api/v1/registrations", data={
        **fields, "email": "ann@example.com", "company": "Acme"})
    assert response.status_code == 303 and response.headers["Location"] == "/f/summit/thanks"
    env.drain()
    assert env.get("/api/v1/leads").get_json()["items"][0]["company"] == "Acme"
