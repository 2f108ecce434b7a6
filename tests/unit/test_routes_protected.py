"""Every route of the app is either on the explicit public list below or refuses a request
without credentials (API: 401 with the bearer challenge; console: redirect to its sign-in).

The list is walked from Flask's URL map, so a route added later is checked without anyone
remembering to: a new API route that forgets ``require_api_key`` fails here.
"""

from __future__ import annotations

import re

import pytest

# public by design (API.md): intake, tracking, unsubscribe, confirmation, hosted forms and
# the embed script, provider webhooks (signature-checked in their handlers), health, metrics,
# the OpenAPI document, static files, the landing page and the console's sign-in.
PUBLIC = {
    "root",
    "static",
    "intake.post_registration",
    "ops.healthz", "ops.readyz", "ops.metrics", "ops.openapi",
    "tracking.click", "tracking.open_pixel", "tracking.unsubscribe_page", "tracking.unsubscribe",
    "public.confirm_page", "public.confirm", "public.embed_script", "public.hosted_form",
    "public.form_definition", "public.pow_challenge", "public.thanks",
    "provider_webhooks.mailgun", "provider_webhooks.postmark", "provider_webhooks.sendgrid",
    "provider_webhooks.ses",
    "console.login", "console.static",
    "dev.mail",  # `outreach dev` only
}
_ARG = re.compile(r"<(?:(?P<conv>[a-z]+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>[^<>]+)>")


def _path(rule: str) -> str:
    def value(match: re.Match[str]) -> str:
        if match["conv"] == "any":
            return match["args"].split(",")[0].strip().strip("'\"")
        return "x1@example.com" if match["conv"] == "path" else "id1"

    return _ARG.sub(value, rule)


def _routes(app) -> list[tuple[str, str, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, _path(rule.rule)))
    return out


def test_the_public_list_names_only_routes_that_exist(env) -> None:
    endpoints = {endpoint for endpoint, _, _ in _routes(env.app)}
    assert PUBLIC - {"dev.mail"} <= endpoints, PUBLIC - endpoints


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer ok_not-a-key"},
                                     {"Authorization": "Basic dXNlcjpwYXNz"},
                                     {"Authorization": "Bearer "}],
                         ids=["none", "wrong-key", "wrong-scheme", "empty"])
def test_every_non_public_route_refuses_without_valid_credentials(env, headers) -> None:
    checked = 0
    for endpoint, method, path in _routes(env.app):
        if endpoint in PUBLIC:
            continue
        response = env.client.open(path, method=method, headers=headers, json={})
        if endpoint.startswith("console."):
            # session-based: never served, sent to the sign-in page (or refused by CSRF first)
            assert response.status_code in (302, 303, 400, 401, 403), (endpoint, method, response.status_code)
            if response.status_code in (302, 303):
                assert "/console/login" in response.headers["Location"], (endpoint, response.headers)
        else:
            assert response.status_code == 401, (endpoint, method, path, response.status_code)
            assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), endpoint
            assert "error" in (response.get_json() or {}), endpoint  # the one error shape
        checked += 1
    assert checked > 80  # the API and the console, not an empty walk


def test_a_valid_key_passes_the_same_gate(env) -> None:
    """The control: with the key, an authenticated route answers (not 401)."""
    for path in ("/api/v1/leads", "/api/v1/lists", "/api/v1/campaigns", "/api/v1/tasks"):
        assert env.client.get(path, headers=env.auth).status_code == 200, path
