"""The console over HTTP (Flask test client): sign-in, sessions only under /console, CSRF,
the sign-in throttle, security headers, and the role check on every view and action."""

from __future__ import annotations

import re
from typing import Any

import pytest

from outreach.platform import users
from outreach.platform.users import allowed

PASSWORD = "correct horse battery"
IDS = {"list_id": "ls1", "lead_id": "ld1", "contact_id": "ct1", "account_id": "ac1",
       "opp_id": "op1", "template_id": "tp1", "campaign_id": "cp1", "action": "pause",
       "filename": "console.css", "plural": "leads", "record_id": "ld1", "task_id": "av1",
       "webhook_id": "wh1", "delivery_id": "d1", "verb": "disable", "token": "tk1",
       "proposal_id": "pr1", "segment_id": "sg1", "journey_id": "j1"}


def token(page: bytes) -> str:
    found = re.search(rb'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1).decode()


def sign_in(env: Any, email: str, password: str = PASSWORD, client: Any = None) -> Any:
    client = client or env.client
    page = client.get("/console/login")
    return client.post("/console/login", data={"email": email, "password": password,
                                               "csrf_token": token(page.data)})


def csrf_of(env: Any, path: str = "/console/") -> str:
    return token(env.client.get(path).data)


@pytest.fixture
def people(env: Any) -> Any:
    """Two leads on one asset, one qualified (contact, account, opportunity), a template,
    a draft campaign and a user of each role."""
    for email in ("ann@example.com", "bob@example.com"):
        assert env.register(email, consent=True, company="Acme").status_code == 202
    env.drain()
    assert env.post("/api/v1/leads/ld2/qualify", json={}).status_code == 200
    tpl = env.post("/api/v1/templates", json={"name": "t", "subject": "Hi {{ first_name }}",
                                               "html": "<p>Hi</p>", "text": "Hi"})
    assert tpl.status_code == 201
    camp = env.post("/api/v1/campaigns", json={"name": "c", "template_id": tpl.get_json()["id"],
                                               "list_ids": ["ls1"]})
    assert camp.status_code == 201
    for role in users.ROLES:
        users.create_user(env.store, f"{role}@example.com", role, PASSWORD)
    return env


def console_rules(app: Any) -> list[Any]:
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("console.")]


def test_every_console_page_without_a_session_redirects_to_login(people: Any) -> None:
    for rule in console_rules(people.app):
        if rule.endpoint in ("console.login", "console.static", "console.logout"):
            continue
        path = rule.build(IDS, append_unknown=False)[1]
        if "GET" in rule.methods:
            response = people.client.get(path)
            assert response.status_code == 302, path
            assert response.headers["Location"].startswith("/console/login"), path
    assert people.client.get("/").headers["Location"] == "/console/"


def test_the_console_serves_its_vendored_files(people: Any) -> None:
    """What every page links (the layout moved the blueprint; its files must still be found)."""
    for path in ("/console/static/console.css", "/console/static/vendor/pico/pico.min.css",
                 "/console/static/vendor/htmx/htmx.min.js"):
        response = people.client.get(path)
        assert response.status_code == 200 and response.data, path
        response.close()


def test_sign_in_lands_on_the_dashboard_with_a_console_only_cookie(people: Any) -> None:
    response = sign_in(people, "marketer@example.com")
    assert response.status_code == 302 and response.headers["Location"] == "/console/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Path=/console" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # the base URL is http
    page = people.client.get("/console/")
    assert page.status_code == 200
    assert b'id="total-leads">2<' in page.data  # the dashboard shows the number of leads


def test_secure_cookie_when_the_base_url_is_https(make_env: Any) -> None:
    with make_env(base_url="https://outreach.example.com") as env:
        users.create_user(env.store, "a@example.com", "admin", PASSWORD)
        assert "Secure" in sign_in(env, "a@example.com").headers["Set-Cookie"]


def test_intake_and_api_open_no_session_and_need_no_csrf(people: Any) -> None:
    sign_in(people, "admin@example.com")
    response = people.register("new@example.com")
    assert response.status_code == 202 and "Set-Cookie" not in response.headers
    api = people.get("/api/v1/leads")
    assert api.status_code == 200 and "Set-Cookie" not in api.headers
    assert "Content-Security-Policy" not in api.headers


def test_wrong_password_shows_the_form_again(people: Any) -> None:
    response = sign_in(people, "sales@example.com", "not the password")
    assert response.status_code == 200
    assert b"Wrong email or password." in response.data and b'name="password"' in response.data
    assert people.client.get("/console/").status_code == 302


def test_five_failures_answer_429_until_the_window_passes(people: Any) -> None:
    for _ in range(5):
        assert sign_in(people, "sales@example.com", "bad password!").status_code == 200
    limited = sign_in(people, "sales@example.com")  # even the right password
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert people.client.get("/console/").status_code == 302
    assert sign_in(people, "admin@example.com").status_code == 302  # another account is fine
    people.store.r.delete(people.store.keys.login_failures("sales@example.com", "127.0.0.1"))
    people.client.post("/console/logout", data={"csrf_token": csrf_of(people)})
    assert sign_in(people, "sales@example.com").status_code == 302


def test_disabled_user_loses_the_session(people: Any) -> None:
    sign_in(people, "sales@example.com")
    assert people.client.get("/console/leads").status_code == 200
    users.disable_user(people.store, "sales@example.com")
    assert people.client.get("/console/leads").status_code == 302


def test_post_without_a_valid_csrf_token_is_400_and_changes_nothing(people: Any) -> None:
    sign_in(people, "admin@example.com")
    for data in ({}, {"csrf_token": "forged"}):
        response = people.client.post("/console/leads/ld1/disqualify",
                                      data={"reason": "no_budget", **data})
        assert response.status_code == 400
        assert people.store.r.hget(people.store.keys.lead("ld1"), "status") in (None, "new")
        assert people.client.post("/console/campaigns/cp1/launch",
                                  data={"confirm": "yes", **data}).status_code == 400
    assert people.get("/api/v1/campaigns/cp1").get_json()["status"] == "draft"
    # and with the token it works
    ok = people.client.post("/console/leads/ld1/disqualify",
                            data={"reason": "no_budget", "csrf_token": csrf_of(people)})
    assert ok.status_code == 302
    assert people.store.r.hget(people.store.keys.lead("ld1"), "status") == "disqualified"


def test_login_itself_needs_the_csrf_token(people: Any) -> None:
    response = people.client.post("/console/login", data={"email": "admin@example.com",
                                                          "password": PASSWORD})
    assert response.status_code == 400


def test_security_headers_on_console_pages(people: Any) -> None:
    for path in ("/console/login",):
        response = people.client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"]
    sign_in(people, "admin@example.com")
    page = people.client.get("/console/").data.decode()
    assert "<script>" not in page and not re.search(r"\son[a-z]+=", page)
    assert not re.search(r'\sstyle="', page)


@pytest.mark.parametrize("role", users.ROLES)
def test_every_view_and_action_checks_the_role(people: Any, role: str) -> None:
    sign_in(people, f"{role}@example.com")
    csrf = csrf_of(people)
    checked = 0
    for rule in console_rules(people.app):
        if rule.endpoint in ("console.login", "console.logout", "console.static"):
            continue
        view = people.app.view_functions[rule.endpoint]
        assert hasattr(view, "console_access"), f"{rule.endpoint} has no role check"
        area, action = view.console_access
        may = allowed(role, area, action)
        path = rule.build(IDS, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if method == "GET":
                response = people.client.get(path)
            else:  # a harmless form: without confirm, a campaign action only asks
                response = people.client.post(path, data={"csrf_token": csrf})
            checked += 1
            if may:
                assert response.status_code != 403, (role, method, path)
                assert response.status_code < 500, (role, method, path, response.data[-300:])
            else:
                assert response.status_code == 403, (role, method, path, response.status_code)
    assert checked >= 25
    assert people.get("/api/v1/campaigns/cp1").get_json()["status"] == "draft"


def test_sales_cannot_launch_a_campaign_even_with_the_form(people: Any) -> None:
    sign_in(people, "sales@example.com")
    page = people.client.get("/console/campaigns/cp1")
    assert page.status_code == 200 and b">Launch<" not in page.data  # no button for sales
    response = people.client.post("/console/campaigns/cp1/launch",
                                  data={"confirm": "yes", "csrf_token": csrf_of(people)})
    assert response.status_code == 403
    assert people.get("/api/v1/campaigns/cp1").get_json()["status"] == "draft"


def test_buttons_follow_the_role(people: Any) -> None:
    sign_in(people, "marketer@example.com")
    lead = people.client.get("/console/leads/ld1").data
    assert b"Qualify lead" not in lead and b"Save profile" not in lead  # read only
    assert b">Launch<" in people.client.get("/console/campaigns/cp1").data
    nav = people.client.get("/console/").data
    assert b"/console/settings" not in nav and b"/console/opportunities" not in nav
    people.client.post("/console/logout", data={"csrf_token": csrf_of(people)})
    sign_in(people, "sales@example.com")
    assert b"Qualify lead" in people.client.get("/console/leads/ld1").data
    nav = people.client.get("/console/").data
    assert b"/console/templates" not in nav and b"/console/lists" not in nav


def test_marketer_creates_a_template_and_a_campaign_and_launches_it(people: Any) -> None:
    sign_in(people, "marketer@example.com")
    csrf = csrf_of(people)
    bad = people.client.post("/console/templates", data={
        "csrf_token": csrf, "name": "broken", "subject": "x", "html": "{% if %}", "text": "t"})
    assert bad.status_code == 422 and b"html-error" in bad.data
    made = people.client.post("/console/templates", data={
        "csrf_token": csrf, "name": "Welcome", "subject": "Hi", "html": "<p>Hi {{ first_name }}</p>",
        "text": "Hi"})
    assert made.status_code == 302
    template_id = made.headers["Location"].rsplit("/", 1)[1]
    no_lists = people.client.post("/console/campaigns", data={
        "csrf_token": csrf, "name": "Spring", "template_id": template_id})
    assert no_lists.status_code == 422 and b"list_ids-error" in no_lists.data
    camp = people.client.post("/console/campaigns", data={
        "csrf_token": csrf, "name": "Spring", "template_id": template_id, "list_ids": ["ls1"]})
    assert camp.status_code == 302
    campaign_id = camp.headers["Location"].rsplit("/", 1)[1]
    ask = people.client.post(f"/console/campaigns/{campaign_id}/launch", data={"csrf_token": csrf})
    assert ask.status_code == 200 and b"Yes, launch" in ask.data
    assert people.get(f"/api/v1/campaigns/{campaign_id}").get_json()["status"] == "draft"
    done = people.client.post(f"/console/campaigns/{campaign_id}/launch",
                              data={"csrf_token": csrf, "confirm": "yes"})
    assert done.status_code == 302
    assert people.get(f"/api/v1/campaigns/{campaign_id}").get_json()["status"] == "sending"


def test_sales_qualifies_and_closes_as_won(people: Any) -> None:
    sign_in(people, "sales@example.com")
    csrf = csrf_of(people)
    bad = people.client.post("/console/leads/ld1/qualify", data={"csrf_token": csrf,
                                                                 "probability": "140"})
    assert bad.status_code == 422
    done = people.client.post("/console/leads/ld1/qualify", data={
        "csrf_token": csrf, "estimated_revenue": "12000", "probability": "40",
        "estimated_close_date": "2027-03-01"})
    assert done.status_code == 302
    opp_path = done.headers["Location"]
    opp_id = opp_path.rsplit("/", 1)[1]
    opp = people.get(f"/api/v1/opportunities/{opp_id}").get_json()
    assert opp["estimated_revenue"] == 12000 and opp["probability"] == 40
    assert people.client.post(opp_path, data={"csrf_token": csrf, "status": "won"}).status_code == 302
    assert people.get(f"/api/v1/opportunities/{opp_id}").get_json()["status"] == "won"
    board = people.client.get("/console/opportunities").data.decode()
    assert opp_path in board


def test_lists_page_shows_the_asset_slug_and_sizes(people: Any) -> None:
    sign_in(people, "marketer@example.com")
    page = people.client.get("/console/lists").data.decode()
    assert "guide" in page
    assert re.search(r'class="size">1<', page)  # one lead left, one moved to contacts


def test_admin_creates_a_user_and_an_api_key_shown_once(people: Any) -> None:
    sign_in(people, "admin@example.com")
    csrf = csrf_of(people)
    page = people.client.post("/console/settings/users", data={
        "csrf_token": csrf, "email": "new@example.com", "role": "sales"}).data.decode()
    password = re.search(r'id="new-password">([^<]+)<', page).group(1)
    assert users.authenticate(people.store, "new@example.com", password, "x")["role"] == "sales"
    page = people.client.post("/console/settings/api-keys", data={"csrf_token": csrf,
                                                                  "name": "zapier"}).data.decode()
    key = re.search(r'id="new-key">([^<]+)<', page).group(1)
    assert people.client.get("/api/v1/leads", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    page = people.client.get("/console/settings").data.decode()
    assert key not in page and "<title>Settings" in page
    # the row of the key named zapier (the test's own key may be listed first)
    key_id = re.search(r'<td>zapier</td>.*?name="id" value="([0-9a-f]{12})"', page, re.S).group(1)
    people.client.post("/console/settings/api-keys/revoke", data={"csrf_token": csrf, "id": key_id})
    assert people.client.get("/api/v1/leads", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    page = people.client.get("/console/settings").data.decode()
    assert "is revoked" in page and key_id not in page


def test_template_preview_for_a_person_in_the_sandbox(people: Any) -> None:
    from outreach.campaigns.templates import preview

    tpl = people.post("/api/v1/templates", json={
        "name": "p", "subject": "For {{ first_name or 'you' }} at {{ company }}",
        "html": "<p style='color:red'>Hi {{ first_name }}</p>", "text": "Hi {{ first_name }}"}
    ).get_json()["id"]
    people.patch("/api/v1/leads/ld1", json={"first_name": "Ann"})
    shown = preview(people.store, people.config, tpl, "ANN@example.com")
    assert shown["subject"] == "For Ann at Acme" and shown["person"] == {"type": "lead", "id": "ld1"}
    assert preview(people.store, people.config, tpl)["subject"] == "For Alex at Example Corp"
    bad = people.post("/api/v1/templates", json={
        "name": "b", "subject": "x", "html": "{{ ''.__class__.__mro__ }}", "text": "t"}).get_json()["id"]
    assert preview(people.store, people.config, bad)["error"]
    sign_in(people, "marketer@example.com")
    page = people.client.get(f"/console/templates/{tpl}?email=ann@example.com").data.decode()
    assert 'id="preview-subject">For Ann at Acme<' in page and "<iframe" in page
    frame = people.client.get(f"/console/templates/{tpl}/preview.html?email=ann@example.com")
    assert b"Hi Ann" in frame.data
    assert "sandbox" in frame.headers["Content-Security-Policy"]
    assert "script-src" not in frame.headers["Content-Security-Policy"]  # default-src 'none'
    assert frame.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert people.client.get(f"/console/templates/{bad}").status_code == 200


def test_settings_show_the_configuration_without_secrets(make_env: Any) -> None:
    with make_env(secret_key="s3cr3t-value-that-is-long-enough-0123456789",
                  smtp_password="smtp-pw-42", redis_url="") as env:
        users.create_user(env.store, "a@example.com", "admin", PASSWORD)
        sign_in(env, "a@example.com")
        page = env.client.get("/console/settings").data.decode()
        assert "OUTREACH_SMTP_HOST" in page and "OUTREACH_SECRET_KEY" in page
        assert "s3cr3t-value" not in page and "smtp-pw-42" not in page


@pytest.mark.parametrize("junk", [
    {"email": "not an address", "role": "owner", "name": "x" * 300, "member_type": "robot",
     "emails": "a@b,,not-one", "estimated_revenue": "-5", "probability": "abc",
     "estimated_close_date": "yesterday", "status": "maybe", "reason": "bored", "note": "n" * 3000,
     "template_id": "tp404", "list_ids": "ls404", "from_email": "nope", "rate_per_second": "fast",
     "send_at": "soon", "subject": "", "html": "{{", "text": "{%", "consent": "on", "confirm": "yes",
     "first_name": "\x00 😀"},
    {},
])
def test_bad_input_on_every_action_is_never_a_500(people: Any, junk: dict[str, str]) -> None:
    sign_in(people, "admin@example.com")
    csrf = csrf_of(people)
    for rule in console_rules(people.app):
        if "POST" not in rule.methods or rule.endpoint in ("console.login", "console.logout"):
            continue
        for ids in (IDS, {**IDS, "lead_id": "ld404", "opp_id": "op404", "campaign_id": "cp404",
                          "list_id": "ls404"}):
            path = rule.build(ids, append_unknown=False)[1]
            response = people.client.post(path, data={**junk, "csrf_token": csrf})
            assert response.status_code < 500, (path, response.status_code, response.data[-400:])


def test_account_lists_show_alone_with_their_accounts(people: Any) -> None:
    made = people.post("/api/v1/lists", json={"name": "Key accounts", "member_type": "account"})
    assert made.status_code == 201, made.get_json()
    list_id = made.get_json()["id"]
    sign_in(people, "marketer@example.com")
    csrf = csrf_of(people)
    added = people.client.post(f"/console/lists/{list_id}/members",
                               data={"csrf_token": csrf, "emails": "bob@example.com"})
    assert added.status_code == 302
    assert "Added 1" in people.client.get(added.headers["Location"]).data.decode()
    page = people.client.get(f"/console/lists/{list_id}").data.decode()
    assert "/console/accounts/ac1" in page and "Acme" in page
    assert people.client.get(f"/console/lists/{list_id}?q=bob@example.com").status_code == 200
    lists_page = people.client.get("/console/lists").data.decode()
    assert re.search(r'colspan="2"><a href="/console/lists/' + list_id, lists_page)


def test_lead_search_by_prefix_of_email_name_or_company_ignoring_case_and_accents(env: Any) -> None:
    from outreach.people.search import search_leads

    for email, first, last, company in (("zoe@acme.com", "Zoë", "Ångström", "Åcme Corp"),
                                        ("bo@initech.com", "Bo", "Lee", "Initech"),
                                        ("al@acme.com", "Al", "Acker", "Globex")):
        assert env.register(email, first_name=first, last_name=last, company=company).status_code == 202
    env.drain()

    def emails(q: str, **kw: Any) -> list[str]:
        return [lead["email"] for lead in search_leads(env.store, q, **kw)["items"]]

    assert emails("ACME") == ["zoe@acme.com"]           # company Åcme, accent-insensitive
    assert emails("ac") == ["zoe@acme.com", "al@acme.com"]  # company or last name
    assert emails("zoe") == ["zoe@acme.com"]            # first name Zoë, and the email
    assert emails("zoe angs") == ["zoe@acme.com"]       # full name
    assert emails("bo@initech.com") == ["bo@initech.com"]
    assert emails("nobody") == []
    assert emails("a", status="qualified") == []
    # filters, with or without a search term
    env.store.r.hset(env.store.keys.lead("ld2"), mapping={"score": "30", "source": "trade_show"})
    assert emails("", min_score=10) == ["bo@initech.com"]
    assert emails("", max_score=0) == ["zoe@acme.com", "al@acme.com"]
    assert emails("", source="trade_show") == ["bo@initech.com"]
    assert emails("", source="web_form") == ["zoe@acme.com", "al@acme.com"]
    assert emails("ac", list_id="ls1") == ["zoe@acme.com", "al@acme.com"]
    assert emails("", list_id="ls2") == []  # the contact list of that asset
    # bounded: one lead per chunk and no time budget still finds them all, page by page
    seen, cursor = [], None
    while True:
        page = search_leads(env.store, "a", limit=1, chunk=1, budget_seconds=0, cursor=cursor)
        seen += [lead["email"] for lead in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ["zoe@acme.com", "al@acme.com"]
    users.create_user(env.store, "s@example.com", "sales", PASSWORD)
    sign_in(env, "s@example.com")
    page = env.client.get("/console/leads?q=%C3%A5cme").data.decode()
    assert "zoe@acme.com" in page and "bo@initech.com" not in page
    page = env.client.get("/console/leads?source=trade_show&min_score=5").data.decode()
    assert "bo@initech.com" in page and "zoe@acme.com" not in page
    env.store.r.zadd(env.store.keys.lead_scores, {"ld2": 30, "ld3": 45})
    page = env.client.get("/console/leads?sort=score").data.decode()
    assert page.index("al@acme.com") < page.index("bo@initech.com") and "zoe@acme.com" not in page
    assert env.client.get("/console/leads?min_score=abc&max_score=9999999999&sort=x").status_code == 200
    assert env.client.get("/console/leads?list=nope").status_code == 404  # an unknown list


def test_qualify_with_a_likely_duplicate_account_lets_sales_link_or_create(env: Any) -> None:
    for email, company in (("a@one.example", "Contoso"), ("b@two.example", "Contoso Pharmaceuticals")):
        assert env.register(email, company=company, consent=True).status_code == 202
    env.drain()
    users.create_user(env.store, "s@example.com", "sales", PASSWORD)
    sign_in(env, "s@example.com")
    csrf = csrf_of(env)
    first = env.client.post("/console/leads/ld1/qualify", data={"csrf_token": csrf})
    assert first.status_code == 302
    account = env.get("/api/v1/leads/ld1").get_json()
    asked = env.client.post("/console/leads/ld2/qualify", data={"csrf_token": csrf,
                                                               "estimated_revenue": "700"})
    assert asked.status_code == 409
    page = asked.data.decode()
    assert "Accounts with a similar name exist" in page and "Create a new account" in page
    account_id = re.search(r'name="account_id" value="([^"]+)"', page).group(1)
    linked = env.client.post("/console/leads/ld2/qualify", data={
        "csrf_token": csrf, "estimated_revenue": "700", "account_id": account_id})
    assert linked.status_code == 302
    opp_id = linked.headers["Location"].rsplit("/", 1)[1]
    opp = env.get(f"/api/v1/opportunities/{opp_id}").get_json()
    assert opp["account_id"] == account_id and opp["estimated_revenue"] == 700
    assert account["status"] == "qualified"


def test_editing_a_template_saves_a_changed_copy(people: Any) -> None:
    sign_in(people, "marketer@example.com")
    form = people.client.get("/console/templates/new?from=tp1").data.decode()
    assert 'value="t (edited)"' in form and "Hi {{ first_name }}" in form
    assert people.client.get("/console/templates/new?from=tp404").status_code == 404


def _suppress(env: Any, email: str, value: str, reply: str | None = None) -> None:
    keys = env.store.keys
    env.store.r.hset(keys.suppressed, email, value)
    if reply:
        env.store.r.hset(keys.suppression_info, email,
                         f'{{"at": 1796000000, "campaign_id": "cp1", "reply": "{reply}"}}')


def test_the_person_page_says_why_mail_is_suppressed_and_a_marketer_can_lift_a_bounce(
        people: Any) -> None:
    _suppress(people, "ann@example.com", "bounced:cp1", "550 5.1.1 <ann@example.com>: no such user")
    sign_in(people, "sales@example.com")
    page = people.client.get("/console/leads/ld1")
    assert b"Not mailed: hard bounce" in page.data and b"550 5.1.1" in page.data
    assert b"Lift suppression" not in page.data  # sales does not manage deliverability
    forbidden = people.client.post("/console/suppressions/lift", data={
        "email": "ann@example.com", "person": "l:ld1", "csrf_token": token(page.data)})
    assert forbidden.status_code == 403
    assert people.store.r.hget(people.store.keys.suppressed, "ann@example.com")

    marketer = people.app.test_client()
    sign_in(people, "marketer@example.com", client=marketer)
    page = marketer.get("/console/leads/ld1")
    assert b"Lift suppression" in page.data
    lifted = marketer.post("/console/suppressions/lift", data={
        "email": "ann@example.com", "person": "l:ld1", "csrf_token": token(page.data)},
        follow_redirects=True)
    assert lifted.status_code == 200 and b"Suppression lifted" in lifted.data
    assert b"Not mailed" not in lifted.data
    assert people.store.r.hget(people.store.keys.suppressed, "ann@example.com") is None


def test_an_unsubscribe_is_shown_on_the_contact_page_and_cannot_be_lifted(people: Any) -> None:
    contact_email = people.get("/api/v1/contacts/ct1").get_json()["email"]
    _suppress(people, contact_email, "unsubscribed")
    marketer = people.app.test_client()
    sign_in(people, "marketer@example.com", client=marketer)
    page = marketer.get("/console/contacts/ct1")
    assert b"Not mailed: unsubscribed" in page.data and b"Lift suppression" not in page.data
    refused = marketer.post("/console/suppressions/lift", data={
        "email": contact_email, "person": "c:ct1", "csrf_token": token(page.data)},
        follow_redirects=True)
    assert b"Not lifted" in refused.data
    assert people.store.r.hget(people.store.keys.suppressed, contact_email) == "unsubscribed"


# ------------------------------------------------------------ the audit's gaps (console)

def test_the_live_campaign_page_charts_the_send_rate(cenv: Any) -> None:
    from outreach.campaigns import model

    users.create_user(cenv.store, "marketer@example.com", "marketer", PASSWORD)
    list_id = cenv.leads("a@example.com", "b@example.com", "c@example.com")
    campaign_id = cenv.launched([list_id])
    sign_in(cenv, "marketer@example.com")
    before = cenv.client.get(f"/console/campaigns/{campaign_id}").data.decode()
    assert "Nothing sent yet" in before
    assert cenv.run(campaign_id)["stats"]["sent"] == 3
    buckets = cenv.store.r.hgetall(cenv.store.keys.campaign_sent_per_10s(campaign_id))
    assert sum(map(int, buckets.values())) == 3 and all(int(at) % 10 == 0 for at in buckets)
    live = cenv.client.get(f"/console/campaigns/{campaign_id}", headers={"HX-Request": "true"})
    page = live.data.decode()
    assert live.status_code == 200 and "<svg" in page and "Messages sent per minute" in page
    assert "3 sent" in page  # the column's title

    # many buckets are merged into at most 60 equal steps; gaps count as zero
    key = cenv.store.keys.campaign_sent_per_10s(campaign_id)
    cenv.store.r.delete(key)
    cenv.store.r.hset(key, mapping={"1000": 6, "1010": 3, "2190": 1})  # 120 buckets of 10 s
    rate = model.send_rate(cenv.store, campaign_id)
    assert rate["step_seconds"] == 20 and len(rate["points"]) == 60
    assert rate["points"][0]["count"] == 9 and rate["points"][0]["per_minute"] == 27.0
    assert rate["points"][-1]["count"] == 1 and sum(p["count"] for p in rate["points"]) == 10
    assert rate["peak_per_minute"] == 27.0 and rate["average_per_minute"] == 0.5


def test_the_opportunity_board_totals_every_opportunity_newest_first_with_a_pager(env: Any) -> None:
    users.create_user(env.store, "sales@example.com", "sales", PASSWORD)
    emails = [f"p{i:02d}@example.com" for i in range(30)]
    for email in emails:
        assert env.register(email, consent=True, company=f"Co {email[:3]}").status_code == 202
    env.drain()
    opp_ids = []
    for i in range(30):
        lead_id = env.get("/api/v1/leads", query_string={"email": emails[i]}).get_json()["items"][0]["id"]
        made = env.post(f"/api/v1/leads/{lead_id}/qualify",
                        json={"estimated_revenue": 1000, "probability": 50})
        assert made.status_code == 200, made.get_json()
        opp_ids.append(made.get_json()["opportunity_id"])
    sign_in(env, "sales@example.com")
    board = env.client.get("/console/opportunities").data.decode()
    assert re.search(r'id="count-open">30<', board)  # all of them, not the 25 shown
    assert "30,000 estimated · 15,000 weighted" in board
    assert board.index(f"/console/opportunities/{opp_ids[-1]}") < board.index(
        f"/console/opportunities/{opp_ids[-2]}")  # newest first
    assert f"/console/opportunities/{opp_ids[0]}\"" not in board
    older = re.search(r'href="(/console/opportunities\?open=[^"]+)">Older open', board)
    assert older
    second = env.client.get(older.group(1).replace("&amp;", "&")).data.decode()
    assert f"/console/opportunities/{opp_ids[0]}\"" in second
    assert f"/console/opportunities/{opp_ids[-1]}\"" not in second
    assert ">Newest</a>" in second
    # an old opportunity won shows in the won column at once, with the won totals
    assert env.patch(f"/api/v1/opportunities/{opp_ids[0]}", json={"status": "won"}).status_code == 200
    board = env.client.get("/console/opportunities").data.decode()
    won = board[board.index('id="col-won"'):board.index('id="col-lost"')]
    assert f"/console/opportunities/{opp_ids[0]}\"" in won and 'id="count-won">1<' in won
    assert "1,000 won revenue" in won and re.search(r'id="count-open">29<', board)


def test_the_new_campaign_form_counts_the_deduplicated_audience_before_saving(people: Any) -> None:
    from outreach.campaigns.audience import audience_of_lists

    sign_in(people, "marketer@example.com")
    form = people.client.get("/console/campaigns/new").data.decode()
    assert 'hx-get="/console/campaigns/audience"' in form and "Count audience" in form
    pair = [i for i in people.get("/api/v1/lists").get_json()["items"] if i["id"] == "ls1"][0]
    both = ["ls1", pair["parallel_list_id"]]
    people.post("/api/v1/lists/ls1/members", json={"emails": ["ann@example.com"]})
    expected = audience_of_lists(people.store, both)
    assert expected["sendable"] >= 1
    # htmx: the lists ticked so far
    part = people.client.get("/console/campaigns/audience?list_ids=ls1&list_ids=" + both[1],
                             headers={"HX-Request": "true"}).data.decode()
    assert f'id="audience-size">{expected["sendable"]}<' in part and "<html" not in part
    assert "Tick lists" in people.client.get("/console/campaigns/audience").data.decode()
    # without JavaScript: the "Count audience" button re-renders the form, saving nothing
    campaigns_before = people.get("/api/v1/campaigns").get_json()["items"]
    counted = people.client.post("/console/campaigns", data={
        "csrf_token": csrf_of(people), "name": "Spring", "template_id": "tp1",
        "list_ids": both, "action": "count"})
    page = counted.data.decode()
    assert counted.status_code == 200 and f'id="audience-size">{expected["sendable"]}<' in page
    assert 'value="Spring"' in page and len(re.findall(r'type="checkbox"[^>]*checked', page)) == 2
    assert people.get("/api/v1/campaigns").get_json()["items"] == campaigns_before


def test_the_template_editor_previews_unsaved_sources_and_marks_the_failing_line(people: Any) -> None:
    sign_in(people, "marketer@example.com")
    csrf = csrf_of(people, "/console/templates/new")
    form = people.client.get("/console/templates/new").data.decode()
    assert 'hx-post="/console/templates/preview"' in form and "Preview for" in form
    fields = {"csrf_token": csrf, "name": "Draft", "subject": "Hello {{ email }}",
              "html": "<p style=\"color: red\">Hi {{ email }} of {{ company }}</p>",
              "text": "Hi {{ email }}", "preview_email": "ann@example.com"}
    templates_before = people.get("/api/v1/templates").get_json()["items"]
    # htmx: the unsaved sources rendered for Ann in the sandbox, nothing saved
    part = people.client.post("/console/templates/preview", data=fields,
                              headers={"HX-Request": "true"}).data.decode()
    assert 'id="preview-subject">Hello ann@example.com<' in part and "<html" not in part
    frame = re.search(r'src="(/console/templates/drafts/[^"]+/preview.html)"', part).group(1)
    shown = people.client.get(frame)
    assert shown.data.decode() == '<p style="color: red">Hi ann@example.com of Acme</p>'
    assert "sandbox" in shown.headers["Content-Security-Policy"]
    assert people.get("/api/v1/templates").get_json()["items"] == templates_before
    assert people.client.get("/console/templates/drafts/nope/preview.html").status_code == 404
    # a compile error: the message and the lines around it, the failing one marked
    broken = {**fields, "html": "<p>one</p>\n<p>two</p>\n<p>{% if %}</p>\n<p>four</p>"}
    part = people.client.post("/console/templates/preview", data=broken).data.decode()
    assert 'id="preview-html-error"' in part and "line 3" in part
    assert re.search(r'<li class="bad"><code>&lt;p&gt;{% if %}&lt;/p&gt;</code>', part)
    assert '<ol class="listing" start="1"' in part
    saved = people.client.post("/console/templates", data=broken)
    page = saved.data.decode()
    assert saved.status_code == 422 and 'id="html-error"' in page and "← line 3" in page
    # without JavaScript: the Preview button re-renders the form with the preview
    plain = people.client.post("/console/templates", data={**fields, "action": "preview"})
    assert plain.status_code == 200 and 'id="preview-subject">Hello ann@' in plain.data.decode()
    assert people.get("/api/v1/templates").get_json()["items"] == templates_before


def test_listings_are_newest_first_and_the_campaign_form_finds_beyond_the_newest_200(
        people: Any) -> None:
    from outreach.people import lists

    older_tpl = people.post("/api/v1/templates", json={
        "name": "Older welcome", "subject": "s", "html": "<p>h</p>", "text": "t"}).get_json()["id"]
    newer_tpl = people.post("/api/v1/templates", json={
        "name": "Newer welcome", "subject": "s", "html": "<p>h</p>", "text": "t"}).get_json()["id"]
    first = lists.create_list_pair(people.store, "Önce Customers", "lead")["id"]
    for i in range(201):
        lists.create_list_pair(people.store, f"Bulk {i:03d}", "lead")
    newer_camp = people.post("/api/v1/campaigns", json={
        "name": "Newest campaign", "template_id": newer_tpl, "list_ids": ["ls1"]}).get_json()["id"]
    sign_in(people, "marketer@example.com")
    page = people.client.get("/console/templates").data.decode()
    assert page.index(f"/console/templates/{newer_tpl}\"") < page.index(
        f"/console/templates/{older_tpl}\"")
    page = people.client.get("/console/campaigns").data.decode()
    assert page.index(f"/console/campaigns/{newer_camp}\"") < page.index("/console/campaigns/cp1\"")
    page = people.client.get("/console/lists").data.decode()
    assert "Bulk 200" in page and "Bulk 000" not in page  # the newest 25 pairs
    # the form shows the newest 200 lists and says so; older ones are found by name
    form = people.client.get("/console/campaigns/new").data.decode()
    assert "Bulk 200" in form and "Önce Customers" not in form and "Only the newest 200" in form
    assert form.index(f'value="{newer_tpl}"') < form.index(f'value="{older_tpl}"')
    found = people.client.post("/console/campaigns", data={
        "csrf_token": csrf_of(people), "name": "Old list", "template_id": older_tpl,
        "list_ids": ["ls1"], "q": "once", "action": "find"}).data.decode()
    assert f'value="{first}"' in found and "Bulk 200" not in found  # accents and case ignored
    # the ticked list stays
    assert 'id="l-ls1"' in found and len(re.findall(r'type="checkbox"[^>]*checked', found)) == 1
    assert f'value="{older_tpl}" selected' in found and f'value="{newer_tpl}"' not in found
    made = people.client.post("/console/campaigns", data={
        "csrf_token": csrf_of(people), "name": "Old list", "template_id": older_tpl,
        "list_ids": ["ls1", first]})
    assert made.status_code == 302
    assert people.client.get("/console/campaigns/new?q=bulk%20199").data.decode().count(
        'name="list_ids"') == 2  # the pair: its lead list and its contact list


def test_leads_sort_by_score_or_date_either_way_together_with_search_and_filters(env: Any) -> None:
    from outreach.people.search import search_leads

    people_ = [("ann@acme.com", "Acme", 20), ("ben@acme.com", "Acme", 50),
               ("cy@initech.com", "Initech", 40), ("di@acme.com", "Acme", 0),
               ("ed@acme.com", "Acme", 35)]
    for email, company, _ in people_:
        assert env.register(email, company=company).status_code == 202
    env.drain()
    ids = {lead["email"]: lead["id"] for lead in env.get("/api/v1/leads").get_json()["items"]}
    for email, _, score in people_:
        if score:
            env.store.r.hset(env.store.keys.lead(ids[email]), "score", str(score))
            env.store.r.zadd(env.store.keys.lead_scores, {ids[email]: score})
    env.store.r.hset(env.store.keys.lead(ids["ed@acme.com"]), "status", "disqualified")
    env.store.r.zadd(env.store.keys.leads_by_status("disqualified"), {ids["ed@acme.com"]: 5})

    def emails(**kw: Any) -> list[str]:
        return [lead["email"] for lead in search_leads(env.store, **kw)["items"]]

    assert emails(q="acme", sort="newest") == ["ed@acme.com", "di@acme.com", "ben@acme.com",
                                               "ann@acme.com"]
    assert emails(q="acme", sort="score") == ["ben@acme.com", "ed@acme.com", "ann@acme.com"]
    assert emails(q="acme", sort="score", status="new") == ["ben@acme.com", "ann@acme.com"]
    assert emails(sort="score", min_score=25, max_score=45) == ["cy@initech.com", "ed@acme.com"]
    assert emails(q="a", sort="score", list_id="ls1") == ["ben@acme.com", "ed@acme.com",
                                                          "ann@acme.com"]
    for sort, expected in (("score", ["ben@acme.com", "cy@initech.com", "ed@acme.com",
                                      "ann@acme.com"]),
                           ("newest", ["ed@acme.com", "di@acme.com", "cy@initech.com",
                                       "ben@acme.com", "ann@acme.com"])):
        seen, cursor = [], None  # one lead per chunk and no time budget: page by page
        while True:
            page = search_leads(env.store, "", sort=sort, limit=1, chunk=1, budget_seconds=0,
                                cursor=cursor, min_score=0)
            seen += [lead["email"] for lead in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == [e for e in expected if sort == "newest" or e != "di@acme.com"], sort
    users.create_user(env.store, "s@example.com", "sales", PASSWORD)
    sign_in(env, "s@example.com")

    def shown(query: str) -> list[str]:
        page = env.client.get(f"/console/leads?{query}").data.decode()
        return re.findall(r'<a href="/console/leads/ld\d+">([^<]+)</a>', page)

    assert shown("sort=newest")[:2] == ["ed@acme.com", "di@acme.com"]
    assert shown("sort=oldest")[:2] == ["ann@acme.com", "ben@acme.com"]
    assert shown("sort=date") == shown("sort=newest")
    assert shown("sort=score&status=new") == ["ben@acme.com", "cy@initech.com", "ann@acme.com"]
    assert shown("sort=newest&status=disqualified") == ["ed@acme.com"]
    assert shown("q=acme&sort=score&min_score=30") == ["ben@acme.com", "ed@acme.com"]
    page = env.client.get("/console/leads?q=acme&sort=score").data.decode()
    assert "only leads with a score" in page and 'value="score" selected' in page
    assert '<input type="hidden" name="sort" value="score">' in page  # kept by a new search


def test_the_lead_page_shows_what_made_the_score(cenv: Any) -> None:
    from outreach.people import scoring

    env = cenv
    users.create_user(env.store, "sales@example.com", "sales", PASSWORD)
    list_id = env.leads("bob@example.com", asset="guide")  # a white paper: no points yet
    env.leads("bob@example.com", asset="guide")  # the same asset again: none either
    env.leads("bob@example.com", asset="summit", kind="event")  # another asset, an event
    campaign_id = env.launched([list_id])
    assert env.run(campaign_id)["stats"]["sent"] == 1
    html = env.messenger.to("bob@example.com").get_body(preferencelist=("html",)).get_content()
    click = re.search(r'href="https?://[^"/]+(/t/c/[^"]+)"', html)
    assert click and env.client.get(click.group(1)).status_code == 302
    assert env.client.get(click.group(1)).status_code == 302  # the same link again: no points
    lead = env.lead_of("bob@example.com")
    w = env.config
    assert lead["score"] == (w.score_repeat_registration + w.score_event_after_white_paper
                             + w.score_click + w.score_open)

    found = scoring.score_items(env.store, env.config, lead["id"])
    assert sorted((i["what"].split(" ")[0], i["points"]) for i in found["items"]) == sorted([
        ("opened", w.score_open), ("clicked", w.score_click),
        ("registered", w.score_repeat_registration),
        ("event", w.score_event_after_white_paper)])
    # just now: each item is still worth (almost) all of its points, and they add up
    assert all(abs(i["now"] - i["points"]) < 0.01 for i in found["items"])
    assert found["score"] == lead["score"] == round(sum(i["now"] for i in found["items"]))
    assert found["half_life_days"] == w.score_half_life_days
    assert found["threshold"] == w.promotion_threshold

    sign_in(env, "sales@example.com")
    page = env.client.get(f"/console/leads/{lead['id']}").data.decode()
    assert f"Score {lead['score']}" in page
    table = re.search(r'<table id="score-items".*?</table>', page, re.S).group(0)
    assert table.count('class="score-item"') == 4
    assert "clicked link" in table and f">{w.score_click}<" in table

    # a lead with no engagement says so
    fresh = env.lead_of(env.leads("cy@example.com", asset="guide") and "cy@example.com")
    page = env.client.get(f"/console/leads/{fresh['id']}").data.decode()
    assert "Score 0" in page and "No opens, clicks or repeat registrations yet." in page


def test_list_members_found_by_the_start_of_their_address_ignoring_case_paged(cenv: Any) -> None:
    from outreach.people import lists

    env = cenv
    users.create_user(env.store, "marketer@example.com", "marketer", PASSWORD)
    list_id = env.leads("ann@example.com", "bob@example.com", "Anna.K@example.org",
                        "annie@example.net", "carl@ann.example", asset="guide")

    def emails(found: dict[str, Any]) -> list[str]:
        return [p["email"] for p in found["items"]]

    found = lists.search_list_members(env.store, list_id, "ANN")
    assert emails(found) == ["ann@example.com", "anna.k@example.org", "annie@example.net"]
    assert found["next_cursor"] is None and found["scanned"] == found["total"] == 5
    # paged: a page holds at most ``limit``, the cursor continues after it
    first = lists.search_list_members(env.store, list_id, "ann", limit=2)
    assert emails(first) == ["ann@example.com", "anna.k@example.org"] and first["next_cursor"]
    rest = lists.search_list_members(env.store, list_id, "ann", limit=2, cursor=first["next_cursor"])
    assert emails(rest) == ["annie@example.net"] and rest["next_cursor"] is None
    # bounded: one request reads at most max_scan members, and says how far it got
    part = lists.search_list_members(env.store, list_id, "annie", max_scan=2, chunk=1)
    assert emails(part) == [] and part["scanned"] == 2 and part["next_cursor"]
    on = lists.search_list_members(env.store, list_id, "annie", max_scan=2, chunk=1,
                                   cursor=part["next_cursor"])
    assert emails(on) == ["annie@example.net"] and on["scanned"] == 4
    # a full address is one index lookup; a prefix that is not an address walks
    exact = lists.search_list_members(env.store, list_id, "Bob@Example.com")
    assert emails(exact) == ["bob@example.com"] and exact["scanned"] == 0
    assert emails(lists.search_list_members(env.store, list_id, "bob@exa")) == ["bob@example.com"]
    assert emails(lists.search_list_members(env.store, list_id, "zed")) == []

    sign_in(env, "marketer@example.com")
    page = env.client.get(f"/console/lists/{list_id}?q=An").data.decode()
    assert "anna.k@example.org" in page and "annie@example.net" in page
    assert "bob@example.com" not in page and "carl@ann.example" not in page
    assert "Searched all 5 members." in page
    none = env.client.get(f"/console/lists/{list_id}?q=zed").data.decode()
    assert "No member starts with “zed”." in none


def test_campaign_recipients_filtered_by_opened_clicked_or_unsubscribed(cenv: Any) -> None:
    from outreach.campaigns import recipients

    env = cenv
    users.create_user(env.store, "marketer@example.com", "marketer", PASSWORD)
    list_id = env.leads("ann@example.com", "bob@example.com", "cara@example.com",
                        "dan@example.com")
    campaign_id = env.launched([list_id])
    assert env.run(campaign_id)["stats"]["sent"] == 4

    def visit(email: str, pattern: str) -> None:
        message = env.messenger.to(email)
        html = message.get_body(preferencelist=("html",)).get_content()
        found = re.search(pattern, html + str(message["List-Unsubscribe"]))
        assert found, html[:500]
        path = found.group(1)
        response = env.client.post(path) if path.startswith("/u/") else env.client.get(path)
        assert response.status_code in (200, 302), path

    visit("bob@example.com", r'href="https?://[^"/]+(/t/c/[^"]+)"')  # a click is an open too
    visit("cara@example.com", r'src="https?://[^"/]+(/t/o/[^"]+)"')
    visit("dan@example.com", r"<https?://[^/>]+(/u/[^>]+)>")

    def shown(**args: Any) -> list[str]:
        found = recipients.recipients(env.store, campaign_id, **args)
        return sorted(r["email"] for r in found["items"])

    assert shown(engagement="opened") == ["bob@example.com", "cara@example.com"]
    assert shown(engagement="clicked") == ["bob@example.com"]
    assert shown(engagement="unsubscribed") == ["dan@example.com"]
    assert shown(engagement="opened", status="sent") == ["bob@example.com", "cara@example.com"]
    assert shown(engagement="opened", status="failed") == []
    (bob,) = recipients.recipients(env.store, campaign_id, engagement="clicked")["items"]
    assert bob["status"] == "sent" and bob["person"]["type"] == "lead" and bob["at"]
    # paged like the outcome filter: never more than ``limit`` a page, nobody twice
    first = recipients.recipients(env.store, campaign_id, engagement="opened", limit=1)
    rest = recipients.recipients(env.store, campaign_id, engagement="opened", limit=1,
                                 cursor=first["next_cursor"])
    assert len(first["items"]) == 1 and first["next_cursor"]
    assert sorted(r["email"] for r in first["items"] + rest["items"]) == [
        "bob@example.com", "cara@example.com"]

    sign_in(env, "marketer@example.com")
    page = env.client.get(f"/console/campaigns/{campaign_id}/recipients?engagement=clicked"
                          ).data.decode()
    assert "bob@example.com" in page and "cara@example.com" not in page
    assert '<option value="clicked" selected>' in page
    none = env.client.get(f"/console/campaigns/{campaign_id}/recipients?engagement=clicked"
                          "&status=failed").data.decode()
    assert "No recipient with that outcome who clicked yet." in none
    odd = env.client.get(f"/console/campaigns/{campaign_id}/recipients?engagement=bogus")
    assert odd.status_code == 200 and "dan@example.com" in odd.data.decode()


def test_the_campaign_form_schedules_a_local_time_send(people: Any) -> None:
    sign_in(people, "marketer@example.com")
    csrf = csrf_of(people)
    template_id = people.get("/api/v1/campaigns/cp1").get_json()["template_id"]
    form = people.client.get("/console/campaigns/new").data.decode()
    assert 'name="send_mode" value="local"' in form and 'name="send_at_local" type="time"' in form
    base = {"csrf_token": csrf, "name": "Local nine", "template_id": template_id,
            "list_ids": ["ls1"], "send_mode": "local"}
    # the other choice's field is ignored
    made = people.client.post("/console/campaigns", data={
        **base, "send_date": "2031-05-04", "send_at_local": "09:00", "send_at": "2030-01-01T10:00"})
    assert made.status_code == 302
    campaign_id = made.headers["Location"].rsplit("/", 1)[1]
    stored = people.get(f"/api/v1/campaigns/{campaign_id}").get_json()
    assert (stored["send_at_local"], stored["send_at"][:10]) == ("09:00", "2031-05-04")
    page = people.client.get(f"/console/campaigns/{campaign_id}").data.decode()
    assert "sends at 09:00 on" in page and "2031-05-04" in page
    # one moment: the local fields are ignored
    moment = people.client.post("/console/campaigns", data={
        **base, "send_mode": "moment", "send_at": "2031-05-04T10:30", "send_date": "bad",
        "send_at_local": "99:99"})
    assert moment.status_code == 302
    stored = people.get(f"/api/v1/campaigns/{moment.headers['Location'].rsplit('/', 1)[1]}"
                        ).get_json()
    assert stored["send_at"].startswith("2031-05-04T10:30") and not stored.get("send_at_local")


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"send_date": "2031-05-04", "send_at_local": "24:10"}, "send_at_local", "HH:MM"),
    ({"send_date": "2031-05-04"}, "send_at_local", "HH:MM"),
    ({"send_at_local": "09:00"}, "send_date", "YYYY-MM-DD"),
    ({"send_date": "2031-13-40", "send_at_local": "09:00"}, "send_date", "Not a valid"),
])
def test_the_campaign_form_refuses_a_bad_local_time_send(
        people: Any, fields: dict[str, str], field: str, message: str) -> None:
    sign_in(people, "marketer@example.com")
    template_id = people.get("/api/v1/campaigns/cp1").get_json()["template_id"]
    before = people.get("/api/v1/campaigns").get_json()["items"]
    bad = people.client.post("/console/campaigns", data={
        "csrf_token": csrf_of(people), "name": "Local nine", "template_id": template_id,
        "list_ids": ["ls1"], "send_mode": "local", **fields})
    assert bad.status_code == 422
    page = bad.data.decode()
    error = re.search(rf'id="{field}-error">([^<]*)<', page)
    assert error and message in error.group(1), page
    assert 'value="local" checked' in page and 'value="Local nine"' in page
    for name, value in fields.items():
        assert f'name="{name}" type="{"time" if name == "send_at_local" else "date"}" ' \
               f'value="{value}"' in page
    assert people.get("/api/v1/campaigns").get_json()["items"] == before
