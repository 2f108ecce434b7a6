"""The console in a real headless Chromium, driven the way a person uses it.

A marketer signs in, finds the lists that registrations made, creates a template from a
built-in (a compile error is shown first), creates a campaign, launches it after the
confirmation step and watches the progress bar reach 100 % (htmx refresh under the CSP);
a recipient clicks a link; a sales user finds that lead, sees the click on its history,
qualifies it, closes the opportunity as won and sees the dashboard change; an admin
creates a user. axe-core runs on every page at 1280x800 and 390x844 (no serious or
critical violation), and every page is screenshotted at both sizes into
``build/screenshots/console`` (or ``$OUTREACH_SCREENSHOTS``).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from outreach.platform import users

from .person import PASSWORD, VIEWPORTS, Person, axe_violations, full_page_shot, shots_dir


@pytest.fixture
def console(cenv: Any, serve: Any, browser: Any) -> Any:
    for role in users.ROLES:
        users.create_user(cenv.store, f"{role}@example.com", role, PASSWORD)
    cenv.leads("ann@example.com", "bob@example.com", asset="spring-guide", first_name="Ann",
               last_name="Lee", company="Acme Corp")
    cenv.leads("cara@example.com", asset="launch-event", kind="event", first_name="Cara",
               company="Initech")
    cenv.app.extensions["outreach.messenger"] = cenv.messenger  # test sends too
    browser.set_window_size(*VIEWPORTS["desktop"])
    return Person(browser, serve(cenv.app)), cenv


def test_marketer_launches_a_campaign_and_sales_closes_the_deal(console: Any) -> None:
    person, env = console
    By = person.by()

    # without a session every page sends you to sign in
    person.open("/console/leads")
    person.heading("Sign in")
    assert urlsplit(person.d.current_url).path == "/console/login"
    person.check("login")
    person.fill("Email", "marketer@example.com")
    person.fill("Password", "wrong password!")
    person.press("Sign in")
    person.sees("Wrong email or password.")

    # the marketer
    person.sign_in("marketer@example.com")
    assert person.d.find_element(By.ID, "total-leads").text == "3"
    person.check("dashboard")
    person.press("Lists")
    person.heading("Marketing lists")
    body = person.text()
    assert "spring-guide" in body and "launch-event" in body
    person.check("lists")
    row = [tr for tr in person.d.find_elements(By.CSS_SELECTOR, "tbody tr")
           if "spring-guide" in tr.text][0]
    row.find_elements(By.TAG_NAME, "a")[0].click()
    person.wait(lambda d: "/console/lists/" in d.current_url)
    person.sees("ann@example.com")
    person.sees("bob@example.com")
    person.check("list")

    person.press("Templates")
    person.heading("Email templates")
    person.check("templates")
    person.press("Start from a built-in template")
    person.press("white paper followup")
    person.heading("New template")
    assert person.field("Subject").get_attribute("value").startswith("Your copy of")
    person.fill("Name", "Spring follow-up")
    good_html = person.field("HTML body").get_attribute("value")
    person.fill("HTML body", good_html + "{% if %}")
    person.press("Save template")
    person.heading("New template")
    assert "not saved" in person.text()
    assert person.d.find_element(By.ID, "html-error").text
    person.check("template-form-error", revisit=False)
    person.fill("HTML body", good_html)
    person.press("Save template")
    person.heading("Spring follow-up")
    person.fill("Preview for", "ann@example.com")
    person.press("Preview")
    person.wait(lambda d: "email=ann" in d.current_url)
    assert person.d.find_element(By.ID, "preview-subject").text.startswith("Your copy of")
    person.d.switch_to.frame(person.d.find_element(By.CSS_SELECTOR, "iframe.preview"))
    person.sees("Hi Ann")
    person.d.switch_to.default_content()
    person.check("template")

    person.press("New campaign with this template")
    person.heading("New campaign")
    person.fill("Name", "Spring guide follow-up")
    lead_list = [el for el in person.d.find_elements(By.CSS_SELECTOR, "fieldset label")
                 if "spring-guide (leads)" in el.text]
    assert lead_list, person.text()
    lead_list[0].click()
    person.check("campaign-new")
    person.press("Create draft")
    person.heading("Spring guide follow-up")
    assert person.d.find_element(By.ID, "campaign-status").text == "draft"
    person.press("Count the audience")  # counted when asked (issue 18: not on every page load)
    person.wait(lambda d: d.find_element(By.ID, "audience-size").text == "2")
    person.press("Send a test")
    person.fill("Test addresses", "ann@example.com, boss@agency.example")
    person.press("Send test")
    person.sees("Test sent to ann@example.com, boss@agency.example")
    assert env.messenger.to("boss@agency.example")["X-Outreach-Test"] == "yes"
    env.messenger.messages.clear()
    person.check("campaign-draft")
    person.press("Launch")
    person.heading("Launch")
    person.check("campaign-confirm", revisit=False)
    person.press("Yes, launch")
    person.heading("Spring guide follow-up")
    assert person.d.find_element(By.ID, "campaign-status").text == "sending"
    campaign_id = urlsplit(person.d.current_url).path.rsplit("/", 1)[1]

    # the workers send (run by hand here); the page refreshes itself to 100 %
    env.run(campaign_id)
    person.wait(lambda d: d.find_element(By.ID, "campaign-percent").text.startswith("100"))
    person.wait(lambda d: d.find_element(By.ID, "campaign-status").text == "sent")
    assert person.d.find_element(By.ID, "stat-sent").text == "2"
    person.check("campaign-sent")
    person.press("Recipients")
    person.heading("Recipients")
    person.sees("bob@example.com")
    person.check("recipients")
    person.d.back()
    person.press("Campaigns")
    person.heading("Campaigns")
    assert "Spring guide follow-up" in person.text()
    person.check("campaigns")
    # a marketer reads people but cannot change them
    person.open("/console/leads")
    person.heading("Leads")
    assert "Qualify" not in person.text()
    person.sign_out()

    # bob clicks a link in the message
    html = env.messenger.to("bob@example.com").get_body(preferencelist=("html",)).get_content()
    click = re.search(r'href="(https://[^"]+/t/c/[^"]+)"', html).group(1)
    assert env.client.get(urlsplit(click).path).status_code == 302

    # sales
    person.sign_in("sales@example.com")
    person.press("Leads")
    person.heading("Leads")
    person.check("leads")
    person.fill("Search", "bob@example.com")
    person.press("Search")
    person.wait(lambda d: "q=bob" in d.current_url)
    person.press("bob@example.com")
    person.heading("Ann Lee")
    history = person.text()
    assert "Clicked a link in" in history and "Registered for white paper" in history
    assert person.d.find_element(By.ID, "lead-status").text == "new"
    person.check("lead")
    person.fill("Estimated revenue", "25000")
    person.fill("Probability (%)", "60")
    person.press("Qualify lead")
    person.wait(lambda d: "/console/opportunities/" in d.current_url)
    assert person.d.find_element(By.ID, "opp-status").text == "open"
    person.check("opportunity")
    person.press("Opportunities")
    person.heading("Opportunities")
    assert "25,000 estimated" in person.text()
    person.check("opportunities")
    person.d.back()
    person.press("Close as won")
    person.wait(lambda d: d.find_element(By.ID, "opp-status").text == "won")
    person.press("account")
    person.wait(lambda d: "/console/accounts/" in d.current_url)
    person.sees("Acme Corp")
    person.check("account")
    person.press("bob@example.com")
    person.wait(lambda d: "/console/contacts/" in d.current_url)
    person.check("contact")
    person.press("Dashboard")
    person.heading("Dashboard")
    assert "Opportunities won\n1" in person.text()
    person.check("dashboard-after-won")
    # sales may read campaigns but not launch: no buttons
    person.open(f"/console/campaigns/{campaign_id}")
    assert not person.d.find_elements(By.XPATH, "//button[normalize-space()='Cancel']")
    person.sign_out()

    # admin
    person.sign_in("admin@example.com")
    person.press("Settings")
    person.heading("Settings")
    person.fill("Email", "newcomer@example.com")
    from selenium.webdriver.support.ui import Select

    Select(person.field("Role")).select_by_visible_text("marketer")
    person.press("Create user")
    person.wait(lambda d: d.find_elements(By.ID, "new-password"))
    assert "newcomer@example.com" in person.text()
    person.check("settings-user-created", revisit=False)
    person.open("/console/settings")
    person.heading("Settings")
    person.check("settings")
    person.open("/console/lists/ls1?q=nobody@example.com")
    person.check("list-search-empty")

    # every page again at phone size: axe and a full-page screenshot
    phone_pass(person, login=True)
    assert len(person.axe_checked) >= 18


def phone_pass(person: Person, login: bool = False) -> None:
    """Every page checked so far again at phone size: axe, no sideways scrolling, and a
    full-page screenshot; ``login``: the sign-in page too (signed out)."""
    pages = [(n, u) for n, u in person.pages.items() if n != "login"]
    for name, url in [*pages, *([("login", person.base + "/console/login")] if login else [])]:
        person.d.set_window_size(*VIEWPORTS["phone"])
        if name == "login":
            person.d.delete_all_cookies()
        person.d.get(url)
        violations = axe_violations(person.d)
        assert not violations, (name, violations)
        overflow = sideways(person)
        assert not overflow, f"{name} scrolls sideways at phone width: {overflow}"
        full_page_shot(person.d, shots_dir() / f"{name}-phone.png", VIEWPORTS["phone"][0])


def sideways(person: Person) -> list[str]:
    """What sticks out to the right when the page scrolls sideways (a table in its
    scrolling box does not count). The page's width is its layout width (clientWidth:
    the window without its scroll bar), which is what a wider element overflows."""
    return person.d.execute_script(
        "const width = document.documentElement.clientWidth;"
        "if (document.documentElement.scrollWidth <= width + 1) return [];"
        "const out = [...document.querySelectorAll('body *')].filter(e => {"
        "  const r = e.getBoundingClientRect();"
        "  return r.right > width + 1 && !e.closest('.table-wrap, pre') && !e.querySelector('*');"
        "}).slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + "
        "  Math.round(e.getBoundingClientRect().right) + ' > ' + width);"
        "return out.length ? out : ['the page is ' + document.documentElement.scrollWidth +"
        "  ' px wide in ' + width];")


def test_live_preview_audience_send_rate_board_and_sorting(console: Any) -> None:
    """The parts a marketer and a sales person watch change: the template editor's live
    preview and its marked compile error, the audience counted while lists are ticked, the
    form's search, newest-first listings, the send-rate chart, the board's totals, and the
    leads sorted by score or date with the filters."""
    from selenium.webdriver.support.ui import Select

    person, env = console
    By = person.by()
    older_template = env.template(name="Older template")
    env.campaign([env.asset_list("spring-guide", "lead")], older_template, name="Older campaign")
    env.leads("bob@example.com", asset="launch-event", kind="event")  # a repeat: bob scores
    for email, revenue in (("ann@example.com", 10000), ("cara@example.com", 5000)):
        lead_id = env.lead_of(email)["id"]
        made = env.post(f"/api/v1/leads/{lead_id}/qualify",
                        json={"estimated_revenue": revenue, "probability": 50})
        assert made.status_code == 200, made.get_json()

    def frame_text(d: Any) -> str:
        d.switch_to.frame(d.find_element(By.CSS_SELECTOR, "#live-preview iframe"))
        try:
            return d.find_element(By.TAG_NAME, "body").text
        finally:
            d.switch_to.default_content()

    person.sign_in("marketer@example.com")
    person.press("Lists")
    person.heading("Marketing lists")
    rows = [tr.text for tr in person.d.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert "launch-event" in rows[0], rows  # newest first

    # the editor previews what is typed, for a person chosen by email, before saving
    person.press("Templates")
    person.heading("Email templates")
    person.press("Start from a built-in template")
    person.press("white paper followup")
    person.heading("New template")
    person.wait(lambda d: d.find_element(By.ID, "preview-subject").text.startswith("Your copy of"))
    person.wait(lambda d: "Hi Alex" in frame_text(d))  # a sample person
    person.fill("Preview for", "cara@example.com")
    person.wait(lambda d: "Hi Cara" in frame_text(d))
    person.fill("Name", "Audit follow-up")
    good_html = person.field("HTML body").get_attribute("value")
    person.fill("HTML body", good_html.rstrip("\n") + "\n<p>{% if %}</p>")
    person.wait(lambda d: d.find_element(By.ID, "preview-html-error").is_displayed())
    bad_line = len(good_html.rstrip("\n").split("\n")) + 1
    error = person.d.find_element(By.ID, "preview-html-error").text
    assert f"line {bad_line}" in error, error
    marked = person.d.find_element(By.CSS_SELECTOR, "#preview-html-error li.bad")
    assert "{% if %}" in marked.text and f"line {bad_line}" in marked.text
    person.check("template-editor-error", revisit=False)
    person.fill("HTML body", good_html)
    person.wait(lambda d: "Hi Cara" in frame_text(d))
    person.check("template-editor")
    person.press("Save template")
    person.heading("Audit follow-up")
    person.press("Templates")
    person.heading("Email templates")
    names = [tr.text for tr in person.d.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert names[0].startswith("Audit follow-up") and "Older template" in names[-1], names

    # the audience is counted as lists are ticked; the form's search keeps what is ticked
    person.press("Campaigns")
    person.heading("Campaigns")
    person.press("New campaign")
    person.heading("New campaign")
    person.fill("Name", "Audit campaign")
    Select(person.field("Template")).select_by_visible_text("Audit follow-up")

    def tick(name: str) -> None:  # the lists to include (those to leave out are folded away)
        (label,) = [el for el in person.d.find_elements(By.CSS_SELECTOR, "fieldset label")
                    if name in el.text and el.is_displayed()]
        label.click()

    tick("spring-guide (leads)")
    person.wait(lambda d: d.find_element(By.ID, "audience-size").text == "1")  # ann qualified
    tick("spring-guide (contacts)")
    person.wait(lambda d: d.find_element(By.ID, "audience-size").text == "2")
    assert "campaigns/new" in person.d.current_url  # nothing saved meanwhile
    person.d.execute_script("document.getElementById('audience').scrollIntoView({block: 'center'})")
    person.check("campaign-new-audience", revisit=False)
    person.fill("Find templates and lists", "launch")
    person.press("Find")
    person.wait(lambda d: "contains “launch”" in d.find_element(By.TAG_NAME, "body").text)
    labels = [el.text for el in person.d.find_elements(By.CSS_SELECTOR, "fieldset label")]
    assert any("spring-guide (leads)" in t for t in labels)  # ticked, so kept
    assert any("launch-event (leads)" in t for t in labels), labels
    assert person.field("Name").get_attribute("value") == "Audit campaign"
    assert Select(person.field("Template")).first_selected_option.text == "Audit follow-up"
    person.check("campaign-new-search", revisit=False)
    person.press("Create draft")
    person.heading("Audit campaign")
    campaign_id = urlsplit(person.d.current_url).path.rsplit("/", 1)[1]
    person.press("Launch")
    person.press("Yes, launch")
    person.heading("Audit campaign")
    env.run(campaign_id)
    person.wait(lambda d: d.find_element(By.ID, "campaign-status").text == "sent")
    person.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#send-rate svg rect.bar"))
    assert "per minute" in person.d.find_element(By.ID, "send-rate").text
    person.d.execute_script("document.getElementById('send-rate').scrollIntoView()")
    person.check("campaign-send-rate")
    person.press("Campaigns")
    person.heading("Campaigns")
    rows = [tr.text for tr in person.d.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert rows[0].startswith("Audit campaign") and rows[-1].startswith("Older campaign"), rows
    person.sign_out()

    # sales: the board's totals count everything, newest first; leads sorted with filters
    person.sign_in("sales@example.com")
    person.press("Opportunities")
    person.heading("Opportunities")
    assert person.d.find_element(By.ID, "count-open").text == "2"
    assert "15,000 estimated · 7,500 weighted" in person.d.find_element(By.ID, "totals-open").text
    person.check("opportunities-board")
    person.press("Leads")
    person.heading("Leads")
    person.press("More filters and sorting")
    Select(person.field("Order")).select_by_visible_text("newest first")
    person.press("Apply")
    person.wait(lambda d: "sort=newest" in d.current_url)
    emails = [a.text for a in person.d.find_elements(By.CSS_SELECTOR, "tbody td:first-child a")]
    assert emails == ["cara@example.com", "bob@example.com", "ann@example.com"], emails
    Select(person.field("Order")).select_by_visible_text("highest score first")
    person.fill("Score from", "1")
    person.press("Apply")
    person.wait(lambda d: "sort=score" in d.current_url)
    emails = [a.text for a in person.d.find_elements(By.CSS_SELECTOR, "tbody td:first-child a")]
    assert emails == ["bob@example.com"], emails
    assert "only leads with a score" in person.text()
    person.check("leads-sorted")
    person.sign_out()

    person.sign_in("admin@example.com")  # the phone pass sees every page
    phone_pass(person)


# a value for every URL variable of a console route (without a session none is looked up)
ROUTE_ARGS = {"list_id": "ls1", "lead_id": "ld1", "contact_id": "ct1", "account_id": "ac1",
              "opp_id": "op1", "template_id": "tp1", "campaign_id": "cp1", "action": "pause",
              "filename": "console.css", "plural": "leads", "record_id": "ld1", "task_id": "av1",
              "webhook_id": "wh1", "delivery_id": "d1", "verb": "disable", "token": "tk1",
              "journey_id": "j1", "segment_id": "sg1"}


def status_of(person: Person) -> int:
    """The HTTP status of the page the browser shows (the navigation's response)."""
    return int(person.d.execute_script(
        "return performance.getEntriesByType('navigation')[0].responseStatus"))


def post_form(person: Person, path: str, fields: dict[str, str]) -> None:
    """Submit a form the page does not offer, as a crafted page would: built in the page,
    with the page's own CSRF token (the sign-out form's) unless ``fields`` says otherwise."""
    person.d.execute_script(
        "const [action, fields] = arguments;"
        "const token = document.querySelector('input[name=csrf_token]').value;"
        "const form = document.createElement('form');"
        "form.method = 'post'; form.action = action;"
        "for (const [name, value] of Object.entries({csrf_token: token, ...fields})) {"
        "  const input = document.createElement('input');"
        "  input.type = 'hidden'; input.name = name; input.value = value;"
        "  form.appendChild(input); }"
        "document.body.appendChild(form); form.submit();", path, fields)


def both_sizes(person: Person, name: str, again: Any) -> None:
    """axe and a screenshot of an answer to a POST at 1280x800, then ``again()`` (which
    repeats the POST) at 390x844: axe, no sideways scrolling, a full-page screenshot."""
    person.check(name, revisit=False)
    person.d.set_window_size(*VIEWPORTS["phone"])
    try:
        again()
        violations = axe_violations(person.d)
        assert not violations, (name, violations)
        overflow = sideways(person)
        assert not overflow, f"{name} scrolls sideways at phone width: {overflow}"
        full_page_shot(person.d, shots_dir() / f"{name}-phone.png", VIEWPORTS["phone"][0])
    finally:
        person.d.set_window_size(*VIEWPORTS["desktop"])


def clear_error_page(person: Person, title: str, status: int) -> None:
    person.heading(title)
    assert status_of(person) == status
    body = person.text()
    assert "Traceback" not in body and "Internal Server Error" not in body
    assert person.d.find_elements(person.by().LINK_TEXT, "Back to the dashboard")


def test_access_rules_hold_in_the_browser(console: Any) -> None:
    """Without a session every console page sends you to sign in; sales posting a launch
    anyway gets a clear 403 page; a form without its CSRF token gets a clear 400 page; a
    missing record a 404 page; six wrong passwords and the page says to wait, and then
    even the right password waits."""
    person, env = console
    By = person.by()
    campaign_id = env.campaign([env.asset_list("spring-guide", "lead")], name="Spring mailing")
    lead_id = env.lead_of("ann@example.com")["id"]

    # every GET route of the console, from Flask's URL map, without a session
    walked = []
    for rule in env.app.url_map.iter_rules():
        if (not rule.endpoint.startswith("console.") or "GET" not in rule.methods
                or rule.endpoint in ("console.login", "console.static")):
            continue
        path = rule.build(ROUTE_ARGS, append_unknown=False)[1]
        person.open(path)
        person.heading("Sign in")
        assert urlsplit(person.d.current_url).path == "/console/login", path
        assert person.d.find_elements(By.ID, "password"), path
        walked.append(path)
    assert len(walked) >= 25, walked
    person.open("/")
    person.heading("Sign in")

    # sales may read a campaign but not launch it: no button, and the POST itself is 403
    person.sign_in("sales@example.com")
    person.open(f"/console/campaigns/{campaign_id}")
    person.heading("Spring mailing")
    assert not person.d.find_elements(By.XPATH, "//button[normalize-space()='Launch']")
    launch = f"/console/campaigns/{campaign_id}/launch"
    post_form(person, launch, {"confirm": "yes"})
    clear_error_page(person, "Not allowed", 403)
    person.sees("Your role (sales) does not allow this.")
    assert env.show(campaign_id)["status"] == "draft"

    def post_launch_again() -> None:
        person.open(f"/console/campaigns/{campaign_id}")
        person.heading("Spring mailing")
        post_form(person, launch, {"confirm": "yes"})
        clear_error_page(person, "Not allowed", 403)

    both_sizes(person, "error-403", post_launch_again)
    assert env.show(campaign_id)["status"] == "draft"

    # a form whose CSRF token was removed: a clear 400 page, nothing changed
    def disqualify_without_token() -> None:
        person.open(f"/console/leads/{lead_id}")
        person.heading("Ann Lee")
        person.d.execute_script(
            "document.querySelector('form[action$=\"/disqualify\"] input[name=csrf_token]')"
            ".remove()")
        person.press("Disqualify lead")
        clear_error_page(person, "Form expired", 400)
        person.sees("missing its security token")

    disqualify_without_token()
    assert env.lead_of("ann@example.com")["status"] == "new"
    both_sizes(person, "error-400", disqualify_without_token)
    assert env.lead_of("ann@example.com")["status"] == "new"
    # with its token the same form works
    person.open(f"/console/leads/{lead_id}")
    person.press("Disqualify lead")
    person.wait(lambda d: d.find_element(By.ID, "lead-status").text == "disqualified")

    # a record that does not exist
    person.open("/console/leads/ld999999")
    clear_error_page(person, "Not found", 404)
    person.check("error-404")
    phone_pass(person)  # the 404 page again at phone size
    person.d.set_window_size(*VIEWPORTS["desktop"])
    person.open("/console/")
    person.sign_out()

    # wrong passwords are throttled per account and client: the sixth attempt waits, and
    # then the right password waits too
    def attempt(password: str) -> None:
        person.fill("Email", "sales@example.com")
        person.fill("Password", password)
        person.press("Sign in")

    for n in range(5):
        attempt(f"wrong password {n}")
        person.sees("Wrong email or password.")
        assert status_of(person) == 200
    attempt("wrong password 5")
    person.sees("Too many failed sign-ins. Try again in")
    assert status_of(person) == 429
    attempt(PASSWORD)
    person.sees("Too many failed sign-ins. Try again in")
    assert status_of(person) == 429
    assert not person.d.find_elements(By.XPATH, "//button[normalize-space()='Sign out']")

    def throttled_again() -> None:
        person.open("/console/login")
        attempt(PASSWORD)
        person.sees("Too many failed sign-ins. Try again in")

    both_sizes(person, "login-throttled", throttled_again)
    person.open("/console/leads")
    person.heading("Sign in")  # still no session
    # another account from the same browser is not held up
    person.sign_in("marketer@example.com")


def test_the_remaining_pages_at_both_sizes(console: Any) -> None:
    """Forms, my tasks, the pipeline, webhooks, a campaign's audience page, and the answers
    to a POST that the first test sees at desktop size only (a template that does not
    compile, the launch confirmation, a user just created), each at 1280x800 and 390x844
    with axe-core and a screenshot."""
    import dataclasses

    from selenium.webdriver.support.ui import Select

    from outreach.platform import webhooks
    from outreach.schemas.sales import WebhookIn

    person, env = console
    By = person.by()
    allow_private = dataclasses.replace(env.config, webhook_allow_private=True)
    webhooks.create_webhook(env.store, allow_private, WebhookIn().load(
        {"url": "http://127.0.0.1:9/outreach-hook", "events": ["lead.qualified", "opportunity.won"]}),
        "admin@example.com")
    for email, revenue in (("ann@example.com", 12000), ("cara@example.com", 4000)):
        lead_id = env.lead_of(email)["id"]
        made = env.post(f"/api/v1/leads/{lead_id}/qualify",
                        json={"estimated_revenue": revenue, "probability": 40})
        assert made.status_code == 200, made.get_json()
    campaign_id = env.campaign([env.asset_list("spring-guide", "lead")], name="Spring mailing")
    bob = env.lead_of("bob@example.com")["id"]

    person.sign_in("admin@example.com")
    person.press("Forms")
    person.heading("Forms")
    person.sees("spring-guide")
    person.check("forms")

    # a task for me, added from the lead's page, shows on my tasks
    person.open(f"/console/leads/{bob}")
    person.press("Add note · log call · add task")
    Select(person.field("Type")).select_by_visible_text("Task")
    person.fill("Subject", "Call Ann's colleague about the guide")
    # a date-time picker: typed keys depend on the browser's locale, so set its value
    person.d.execute_script("arguments[0].value = '2031-03-14T09:30'", person.field("Due"))
    person.press("Save")
    person.sees("Task added.")
    person.press("My tasks")
    person.heading("My tasks")
    person.sees("Call Ann's colleague about the guide")
    assert "Ann Lee" in person.d.find_element(By.ID, "open-tasks").text  # named, not an id
    person.check("tasks")

    person.press("Pipeline")
    person.heading("Pipeline")
    assert person.d.find_element(By.ID, "pipeline-stages").text
    person.check("pipeline")

    person.press("Webhooks")
    person.heading("Webhooks")
    person.sees("http://127.0.0.1:9/outreach-hook")
    person.sees("lead.qualified")
    person.check("webhooks")

    person.open(f"/console/campaigns/{campaign_id}/audience")
    person.heading("Audience")
    person.check("campaign-audience")

    # answers to a POST, at both sizes: each is made again at phone size
    def template_that_does_not_compile() -> None:
        person.open("/console/templates")
        person.press("Start from a built-in template")
        person.press("white paper followup")
        person.heading("New template")
        person.fill("Name", "Broken follow-up")
        html = person.field("HTML body").get_attribute("value")
        person.fill("HTML body", html + "{% if %}")
        person.press("Save template")
        person.wait(lambda d: "not saved" in d.find_element(By.TAG_NAME, "body").text)
        assert person.d.find_element(By.ID, "html-error").text

    template_that_does_not_compile()
    both_sizes(person, "template-form-error", template_that_does_not_compile)

    def launch_confirmation() -> None:
        person.open(f"/console/campaigns/{campaign_id}")
        person.heading("Spring mailing")
        person.press("Launch")
        person.heading("Launch")
        assert person.d.find_elements(By.XPATH, "//button[normalize-space()='Yes, launch']")

    launch_confirmation()
    both_sizes(person, "campaign-confirm", launch_confirmation)
    assert env.show(campaign_id)["status"] == "draft"  # only asked, never confirmed

    made = iter(("newcomer@example.com", "second.newcomer@example.com"))

    def user_created() -> None:
        person.open("/console/settings")
        person.heading("Settings")
        email = next(made)
        person.fill("Email", email)
        Select(person.field("Role")).select_by_visible_text("sales")
        person.press("Create user")
        person.wait(lambda d: d.find_elements(By.ID, "new-password"))
        person.sees(email)

    user_created()
    both_sizes(person, "settings-user-created", user_created)

    phone_pass(person)
    assert {"forms", "tasks", "pipeline", "webhooks", "campaign-audience"} <= set(person.pages)


def test_a_sent_campaign_shows_its_report_and_makes_a_follow_up(console: Any) -> None:
    """A sent campaign's page: the report (rates with bars, hours, links, domains) and the
    follow-up form, which makes a draft to the people who did not open."""
    person, env = console
    By = person.by()
    list_id = env.asset_list("spring-guide", "lead")
    campaign_id = env.launched([list_id], name="Spring report")
    assert env.run(campaign_id)["status"] == "sent"
    html = env.messenger.to("ann@example.com").get_body(("html",)).get_content()
    click = re.search(r'href="https?://[^"/]+(/t/c/[^"]+)"', html).group(1)
    assert env.client.get(click).status_code == 302  # ann clicks (an open too); bob does not

    person.sign_in("marketer@example.com")
    person.open(f"/console/campaigns/{campaign_id}")
    person.heading("Spring report")
    assert person.d.find_element(By.ID, "rate-opened").text == "50.0 %"
    assert person.d.find_element(By.ID, "rate-click_to_open").text == "100.0 %"
    domains = person.d.find_element(By.ID, "report-domains").text
    assert "example.com" in domains
    person.press("Follow up")
    person.check("campaign-report")
    person.fill("Name", "Spring again")
    person.fill("New subject", "Did you see the guide?")
    person.press("Create the follow-up draft")
    person.heading("Spring again")
    person.sees("follow-up of")
    person.check("follow-up-draft")
    # the audience, counted when asked: bob, who did not open
    person.press("Count the audience")
    person.wait(lambda d: d.find_element(By.ID, "audience-size").text == "1")


def test_a_user_changes_their_password_and_sign_out_ends_the_session(console: Any) -> None:
    """The change-my-password page (axe, both sizes), its error, the new password working
    and the old one not; sign-out ends the session on the server: a copy of its cookie put
    back into the browser lands on the sign-in page."""
    person, env = console
    new_password = "a new and longer passphrase"
    person.sign_in("sales@example.com")
    person.press("My password")
    person.heading("Change my password")
    person.check("password")
    person.fill("Current password", "not my password at all")
    person.fill("New password", new_password)
    person.fill("New password again", new_password)
    person.press("Change password")
    person.sees("This is not your current password.")
    person.check("password-error", revisit=False)
    person.fill("Current password", PASSWORD)
    person.fill("New password", new_password)
    person.fill("New password again", new_password)
    person.press("Change password")
    person.heading("Sign in")
    person.sees("Your password is changed")
    person.check("password-changed", revisit=False)
    person.fill("Email", "sales@example.com")
    person.fill("Password", PASSWORD)
    person.press("Sign in")
    person.sees("Wrong email or password.")
    person.fill("Email", "sales@example.com")
    person.fill("Password", new_password)
    person.press("Sign in")
    person.heading("Dashboard")

    copied = person.d.get_cookie("outreach_console")
    assert copied, person.d.get_cookies()
    person.sign_out()
    person.sees("You are signed out.")
    person.d.delete_all_cookies()
    person.d.add_cookie({k: copied[k] for k in ("name", "value", "path") if k in copied})
    person.open("/console/leads")
    person.heading("Sign in")  # the copied cookie no longer opens anything
    phone_pass(person)
