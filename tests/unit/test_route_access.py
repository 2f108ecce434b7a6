"""Who may do what (API.md): one role table (``users.ROLE_ACCESS``) decides for API keys as
for console users. Every route declares its area and action (or that it is public); the
walks below go over Flask's URL map, so a route added later is checked without anyone
remembering to."""

from __future__ import annotations

import re
from typing import Any

import pytest
from click.testing import CliRunner

from outreach.platform import apikeys, users
from outreach.platform.users import allowed
from outreach.web.api.auth import PUBLIC, declared_access

PASSWORD = "correct horse battery"
_ARG = re.compile(r"<(?:(?P<conv>[a-z]+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>[^<>]+)>")
CONSOLE_UNCHECKED = {"console.login", "console.logout", "console.static"}


def _path(rule: str) -> str:
    def value(match: re.Match[str]) -> str:
        if match["conv"] == "any":
            return match["args"].split(",")[0].strip().strip("'\"")
        return "x1@example.com" if match["conv"] == "path" else "id1"

    return _ARG.sub(value, rule)


def _api_routes(app: Any) -> list[tuple[str, str, str, Any]]:
    """(endpoint, method, path, declared) of every route outside the console."""
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("console.") or rule.endpoint == "static":
            continue
        declared = declared_access(app.view_functions[rule.endpoint])
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, _path(rule.rule), declared))
    return out


def _key(env: Any, role: str | None = None, user: str | None = None) -> dict[str, str]:
    key = apikeys.create_api_key(env.store, f"k-{role or user}", user=user, role=role)
    return {"Authorization": f"Bearer {key}"}


def test_every_route_declares_its_area_and_action_or_that_it_is_public(env) -> None:
    missing = [(endpoint, method) for endpoint, method, _, declared in _api_routes(env.app)
               if declared is None]
    assert not missing, f"API routes that declare no area/action nor @public: {missing}"
    for endpoint, _, _, declared in _api_routes(env.app):
        if declared != PUBLIC:
            area, action = declared
            assert area in users.AREAS and action in ("read", "write"), endpoint
    for rule in env.app.url_map.iter_rules():
        if rule.endpoint.startswith("console.") and rule.endpoint not in CONSOLE_UNCHECKED:
            view = env.app.view_functions[rule.endpoint]
            assert hasattr(view, "console_access"), f"{rule.endpoint} has no role check"


def test_a_route_without_a_declaration_is_refused(env) -> None:
    """Fail closed: a keyed route that forgot ``@access`` answers 403 even to an admin."""
    from outreach.web.api import lists

    view = env.app.view_functions["lists.get_lists"]
    saved = view.api_access
    try:
        del view.api_access
        assert env.get("/api/v1/lists").status_code == 403
    finally:
        view.api_access = saved
    assert lists.bp.name == "lists"


@pytest.fixture
def world(env) -> Any:
    """A lead, a user of each role (with a key acting for each), a key of each role."""
    assert env.register("ann@example.com", consent=True, company="Acme").status_code == 202
    env.drain()
    for role in users.ROLES:
        users.create_user(env.store, f"{role}@example.com", role, PASSWORD)
    return env


def _sign_in(env: Any, email: str) -> None:
    page = env.client.get("/console/login").data
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    response = env.client.post("/console/login", data={"email": email, "password": PASSWORD,
                                                       "csrf_token": csrf})
    assert response.status_code == 302, response.data[-300:]


@pytest.mark.parametrize("role", users.ROLES)
@pytest.mark.parametrize("how", ["role-key", "user-key"])
def test_each_role_gets_what_the_table_says_on_every_api_route_and_console_view(
        world, role, how) -> None:
    headers = _key(world, role=role) if how == "role-key" else _key(world, user=f"{role}@example.com")
    checked = refused = 0
    for _endpoint, method, path, declared in _api_routes(world.app):
        if declared == PUBLIC:
            continue
        response = world.client.open(path, method=method, headers=headers, json={})
        checked += 1
        if allowed(role, *declared):
            assert response.status_code != 403, (role, method, path, response.get_json())
            assert response.status_code < 500, (role, method, path, response.get_json())
            assert response.status_code != 401, (role, method, path)
        else:
            assert response.status_code == 403, (role, method, path, response.status_code)
            assert response.get_json()["error"]["code"] == "forbidden"
            refused += 1
    assert checked > 60
    assert (refused == 0) == (role == "admin")
    # the console, for a user of the same role, by the same table
    _sign_in(world, f"{role}@example.com")
    page = world.client.get("/console/").data
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    views = 0
    for rule in world.app.url_map.iter_rules():
        if not rule.endpoint.startswith("console.") or rule.endpoint in CONSOLE_UNCHECKED:
            continue
        area, action = world.app.view_functions[rule.endpoint].console_access
        path = _path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if rule.endpoint == "console.change_password" and method == "POST":
                continue  # would count a failed sign-in; tested on its own
            response = (world.client.get(path) if method == "GET"
                        else world.client.post(path, data={"csrf_token": csrf}))
            views += 1
            if allowed(role, area, action):
                assert response.status_code not in (403, 500), (role, method, path)
            else:
                assert response.status_code == 403, (role, method, path, response.status_code)
    assert views > 25


# what API.md spells out, independently of the table (a table edit that broke it fails here)
SALES_403 = [("POST", "/api/v1/templates"), ("POST", "/api/v1/lists"), ("POST", "/api/v1/campaigns"),
             ("POST", "/api/v1/campaigns/cp1/launch"), ("POST", "/api/v1/assets"),
             ("POST", "/api/v1/imports"), ("DELETE", "/api/v1/suppressions/a@example.com"),
             ("POST", "/api/v1/webhooks"), ("DELETE", "/api/v1/people/ann@example.com"),
             ("GET", "/api/v1/webhooks"), ("GET", "/api/v1/api-keys")]
MARKETER_403 = [("PATCH", "/api/v1/opportunities/op1"), ("PATCH", "/api/v1/accounts/ac1"),
                ("POST", "/api/v1/leads/ld1/activities"), ("POST", "/api/v1/leads/ld1/qualify"),
                ("POST", "/api/v1/leads/ld1/disqualify"), ("POST", "/api/v1/webhooks"),
                ("GET", "/api/v1/webhooks"), ("GET", "/api/v1/api-keys"),
                ("DELETE", "/api/v1/api-keys/x")]


def test_the_contract_spelled_out(world) -> None:
    sales, marketer = _key(world, role="sales"), _key(world, role="marketer")
    for method, path in SALES_403:
        assert world.client.open(path, method=method, headers=sales, json={}).status_code == 403, path
    for method, path in MARKETER_403:
        assert world.client.open(path, method=method, headers=marketer, json={}).status_code == 403, path
    # reads: sales may read campaigns, marketers people
    assert world.client.get("/api/v1/campaigns", headers=sales).status_code == 200
    assert world.client.get("/api/v1/leads", headers=marketer).status_code == 200
    assert world.client.get("/api/v1/lists", headers=marketer).status_code == 200
    # the sales key did not erase anybody
    assert world.get("/api/v1/leads", query_string={"email": "ann@example.com"}).get_json()["items"]
    # a key with neither flag is admin
    assert world.get("/api/v1/api-keys").status_code == 200


def test_keys_of_disabled_or_deleted_users_answer_401_on_every_route(world) -> None:
    headers = _key(world, user="sales@example.com")
    assert world.client.get("/api/v1/leads", headers=headers).status_code == 200
    users.disable_user(world.store, "sales@example.com")
    for _endpoint, method, path, declared in _api_routes(world.app):
        if declared == PUBLIC:
            continue
        response = world.client.open(path, method=method, headers=headers, json={})
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    users.enable_user(world.store, "sales@example.com")
    assert world.client.get("/api/v1/leads", headers=headers).status_code == 200
    world.store.r.delete(world.store.keys.user("sales@example.com"))  # gone altogether
    assert world.client.get("/api/v1/leads", headers=headers).status_code == 401


def test_a_users_key_follows_the_users_role(world) -> None:
    headers = _key(world, user="sales@example.com")
    assert world.client.get("/api/v1/lists", headers=headers).status_code == 403
    users.set_role(world.store, "sales@example.com", "marketer")
    assert world.client.get("/api/v1/lists", headers=headers).status_code == 200
    listed = {k["name"]: k for k in world.get("/api/v1/api-keys").get_json()["items"]}
    assert listed["k-sales@example.com"]["role"] == "marketer"


def test_list_and_revoke_keys_by_name(world) -> None:
    headers = _key(world, role="marketer")
    assert world.client.get("/api/v1/leads", headers=headers).status_code == 200
    body = world.get("/api/v1/api-keys").get_json()
    assert set(body) == {"items"}
    by_name = {k["name"]: k for k in body["items"]}
    assert set(by_name["k-marketer"]) == {"name", "role", "user", "created_at", "last_used_at"}
    assert by_name["k-marketer"]["role"] == "marketer" and by_name["k-marketer"]["user"] is None
    assert by_name["k-marketer"]["last_used_at"]
    assert by_name["test"]["role"] == "admin"
    response = world.client.delete("/api/v1/api-keys/k-marketer", headers=world.auth)
    assert response.status_code == 204
    assert world.client.get("/api/v1/leads", headers=headers).status_code == 401
    assert world.client.delete("/api/v1/api-keys/k-marketer", headers=world.auth).status_code == 404


def test_last_used_at_is_written_at_most_once_a_minute(world, monkeypatch) -> None:
    headers = _key(world, role="sales")
    writes: list[Any] = []
    real = world.store.r.hset

    def counting(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == world.store.keys.api_keys_used:
            writes.append(args)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(world.store.r, "hset", counting)
    for _ in range(5):
        assert world.client.get("/api/v1/leads", headers=headers).status_code == 200
    assert len(writes) == 1
    # once the minute's guard is gone (it expires), the next use writes again
    for guard in world.store.r.scan_iter(match=world.store.keys.api_key_touched("") + "*"):
        world.store.r.delete(guard)
    world.client.get("/api/v1/leads", headers=headers)
    assert len(writes) == 2


def test_the_intake_checks_no_key(env) -> None:
    """The intake stays as fast as before: no key lookup, no role check, no extra command."""
    view = env.app.view_functions["intake.post_registration"]
    assert declared_access(view) == PUBLIC
    assert not env.app.before_request_funcs.get("intake")
    assert [f.__name__ for f in env.app.before_request_funcs.get(None, [])] == ["_preflight"]


# --- the CLI ---------------------------------------------------------------------


def test_cli_api_key_create_roles(world, monkeypatch) -> None:
    from outreach.cli import main as cli

    monkeypatch.setattr(cli, "_store", lambda what: world.store)
    runner = CliRunner()
    plain = runner.invoke(cli.main, ["api-key", "create", "ops"])
    assert plain.exit_code == 0, plain.output
    lines = plain.output.strip().splitlines()
    assert "admin" in lines[0] and len(lines) >= 2
    key = lines[-1]
    assert apikeys.api_key_identity(world.store, key)["role"] == "admin"
    marketer = runner.invoke(cli.main, ["api-key", "create", "m", "--role", "marketer"])
    assert apikeys.api_key_identity(world.store, marketer.output.strip().splitlines()[-1])["role"] \
        == "marketer"
    for_user = runner.invoke(cli.main, ["api-key", "create", "s", "--user", "Sales@Example.com"])
    assert for_user.exit_code == 0, for_user.output
    identity = apikeys.api_key_identity(world.store, for_user.output.strip().splitlines()[-1])
    assert identity == {"name": "s", "user": "sales@example.com", "role": "sales"}
    both = runner.invoke(cli.main, ["api-key", "create", "x", "--user", "sales@example.com",
                                    "--role", "admin"])
    assert both.exit_code == 1
    nobody = runner.invoke(cli.main, ["api-key", "create", "x", "--user", "ghost@example.com"])
    assert nobody.exit_code == 1
    bad = runner.invoke(cli.main, ["api-key", "create", "x", "--role", "owner"])
    assert bad.exit_code == 2


def test_cli_disable_lists_the_users_keys(world, monkeypatch) -> None:
    from outreach.cli import users as cli

    monkeypatch.setattr(cli, "_store", lambda: world.store)
    apikeys.create_api_key(world.store, "crm-sync", user="sales@example.com")
    result = CliRunner().invoke(cli.user, ["disable", "sales@example.com"])
    assert result.exit_code == 0, result.output
    assert "crm-sync" in result.output
    result = CliRunner().invoke(cli.user, ["disable", "marketer@example.com"])
    assert "no API keys" in result.output


def test_the_openapi_document_names_the_roles_of_each_operation(env) -> None:
    spec = env.client.get("/api/openapi.json").get_json()
    erase = spec["paths"]["/api/v1/people/{email}"]["delete"]
    assert erase["x-access"] == {"area": "privacy", "action": "write", "roles": ["admin", "marketer"]}
    assert "403" in erase["responses"]
    assert spec["paths"]["/api/v1/api-keys"]["get"]["x-access"]["roles"] == ["admin"]
    assert "x-access" not in spec["paths"]["/api/v1/registrations"]["post"]


def test_the_console_lists_a_disabled_users_keys_and_shows_key_roles(world) -> None:
    apikeys.create_api_key(world.store, "crm-sync", user="sales@example.com")
    _sign_in(world, "admin@example.com")
    page = world.client.get("/console/settings")
    assert b">crm-sync<" in page.data and b'name="role"' in page.data
    csrf = re.search(rb'name="csrf_token" value="([^"]+)"', page.data).group(1).decode()
    made = world.client.post("/console/settings/api-keys",
                             data={"csrf_token": csrf, "name": "reporting", "role": "sales"})
    assert made.status_code == 200 and b"reporting (sales)" in made.data
    done = world.client.post("/console/settings/users/disable", follow_redirects=True,
                             data={"csrf_token": csrf, "email": "sales@example.com"})
    assert b"crm-sync" in done.data and b"401" in done.data
