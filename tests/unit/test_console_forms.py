"""The console's Forms page: each asset's hosted form link and its copy-paste snippet."""

from __future__ import annotations

import html

from test_console import PASSWORD, sign_in

from outreach.services import users


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
