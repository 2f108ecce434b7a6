"""People's time zones in a real headless Chromium: sales edits a lead's and a contact's zone
in the console (a text box suggesting every IANA name; a wrong one is shown next to the
field), a local-time campaign's page says how many wait for their hour, the new-campaign form
schedules one (a missing date shown next to its field), and the hosted form
and the embed send the browser's zone (none without script). axe on every page; screenshots
at 1280x800 and 390x844 into ``build/screenshots/console``."""

from __future__ import annotations

from typing import Any

from outreach.campaigns import model

from .person import VIEWPORTS, Person, axe_violations, shots_dir
from .test_console import console, phone_pass  # noqa: F401 - the console fixture
from .test_forms import _fill, _wait, live, no_js_browser, shots, sites  # noqa: F401


def at_both_sizes(person: Person, element_id: str, name: str) -> None:
    """The part of the page around ``element_id`` as it is now, at desktop and phone size:
    axe at each, and a screenshot with the element in the middle of the window."""
    try:
        for size in ("desktop", "phone"):
            person.d.set_window_size(*VIEWPORTS[size])
            person.d.execute_script("document.getElementById(arguments[0])"
                                    ".scrollIntoView({block: 'center'})", element_id)
            violations = axe_violations(person.d)
            assert not violations, (name, size, violations)
            person.d.save_screenshot(str(shots_dir() / f"{name}-{size}.png"))
    finally:
        person.d.set_window_size(*VIEWPORTS["desktop"])


def test_sales_edits_the_time_zone_of_a_lead_and_a_contact(console: Any) -> None:  # noqa: F811
    person, env = console
    By = person.by()
    lead_id = env.lead_of("ann@example.com")["id"]
    person.sign_in("sales@example.com")
    person.open(f"/console/leads/{lead_id}")
    person.heading("Ann Lee")
    zone = person.field("Time zone")
    assert zone.get_attribute("list") == "zone-names" and zone.get_attribute("value") == ""
    options = person.d.execute_script(
        "return [...document.querySelectorAll('#zone-names option')].map(o => o.value)")
    assert "Europe/Berlin" in options and "America/New_York" in options and len(options) > 300
    person.check("lead-timezone")
    person.fill("Time zone", "Europe/Atlantis")
    person.press("Save profile")
    person.sees("Not an IANA time zone name")
    assert person.field("Time zone").get_attribute("aria-invalid") == "true"
    assert person.field("Time zone").get_attribute("value") == "Europe/Atlantis"  # as typed
    person.check("lead-timezone-error", revisit=False)
    at_both_sizes(person, "f-timezone", "lead-timezone-field-error")
    person.fill("Time zone", "Europe/Berlin")
    person.press("Save profile")
    person.sees("Lead saved.")
    assert person.field("Time zone").get_attribute("value") == "Europe/Berlin"
    assert env.lead_of("ann@example.com")["timezone"] == "Europe/Berlin"
    at_both_sizes(person, "f-timezone", "lead-timezone-field-saved")

    ids = env.post(f"/api/v1/leads/{env.lead_of('bob@example.com')['id']}/qualify",
                   json={}).get_json()
    person.open(f"/console/contacts/{ids['contact_id']}")
    assert person.d.find_element(By.ID, "contact-timezone").text == "UTC (the default)"
    person.check("contact-timezone")
    person.fill("Time zone", "Australia/Lord_Howe")
    person.press("Save time zone")
    person.sees("Contact saved.")
    assert person.d.find_element(By.ID, "contact-timezone").text == "Australia/Lord_Howe"
    assert env.get(f"/api/v1/contacts/{ids['contact_id']}").get_json()["timezone"] == \
        "Australia/Lord_Howe"
    person.check("contact-timezone-saved")
    at_both_sizes(person, "contact-timezone", "contact-timezone-field-saved")
    phone_pass(person)


def test_a_local_time_campaign_shows_who_waits(console: Any, monkeypatch: Any) -> None:  # noqa: F811
    from selenium.webdriver.support.ui import Select

    person, env = console
    By = person.by()
    env.patch(f"/api/v1/leads/{env.lead_of('ann@example.com')['id']}",
              json={"timezone": "Pacific/Kiritimati"})
    now = model.utc_from_iso("2031-05-04T00:00:00Z").timestamp()
    monkeypatch.setattr(model, "now", lambda: now)
    campaign_id = env.launched([env.asset_list("spring-guide", "lead")], name="Local nine",
                               send_at="2031-05-04", send_at_local="09:00")
    shown = env.run(campaign_id)
    assert (shown["stats"]["sent"], shown["stats"]["waiting_local"]) == (1, 1)
    person.sign_in("marketer@example.com")
    person.open(f"/console/campaigns/{campaign_id}")
    person.heading("Local nine")
    assert person.d.find_element(By.ID, "campaign-waiting").text == \
        "1 waiting for their local time (09:00)"
    person.sees("sends at 09:00 on 2031-05-04 in each recipient’s own time zone")
    person.check("campaign-waiting-local")
    at_both_sizes(person, "campaign-waiting", "campaign-waiting-local-part")

    # the same schedule through the new-campaign form: a missing date comes back next to its
    # field with what was entered kept, then the draft is saved
    template_id = env.template(name="Local form template")
    person.open("/console/campaigns/new")
    person.heading("New campaign")
    person.fill("Name", "Local form")
    Select(person.field("Template")).select_by_value(template_id)
    (label,) = [el for el in person.d.find_elements(By.CSS_SELECTOR, "fieldset label")
                if "spring-guide (leads)" in el.text and el.is_displayed()]
    label.click()
    person.field("At a local time").click()
    set_value = "arguments[0].value = arguments[1]"  # typing into date/time inputs is locale-bound
    person.d.execute_script(set_value, person.field("At (local time"), "09:00")
    person.press("Create draft")
    person.wait(lambda d: d.find_elements(By.ID, "send_date-error"))
    assert "YYYY-MM-DD" in person.d.find_element(By.ID, "send_date-error").text
    assert person.field("At a local time").is_selected()
    assert person.field("At (local time").get_attribute("value") == "09:00"
    assert person.field("On (date)").get_attribute("aria-invalid") == "true"
    at_both_sizes(person, "schedule", "campaign-new-local-time-error")
    person.d.execute_script(set_value, person.field("On (date)"), "2031-05-04")
    person.press("Create draft")
    person.heading("Local form")
    person.sees("sends at 09:00 on 2031-05-04 in each recipient’s own time zone")
    made = env.show(person.d.current_url.rsplit("/", 1)[1])
    assert (made["status"], made["send_at_local"], made["send_at"][:10]) == \
        ("draft", "09:00", "2031-05-04")
    phone_pass(person)


def test_forms_send_the_browsers_zone(browser, sites, shots) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    env, a, b = sites["env"], sites["a"], sites["b"]
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
    try:
        browser.get(f"{a}/f/summit")
        zone = browser.find_element(By.NAME, "timezone")
        assert zone.get_attribute("value") == "Asia/Tokyo" and zone.is_enabled()
        _fill(browser, {"email": "ann@example.com", "company": "Acme"})
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        _wait(browser, lambda d: d.current_url.endswith("/f/summit/thanks"))

        browser.execute_cdp_cmd("Emulation.setTimezoneOverride",
                                {"timezoneId": "America/Sao_Paulo"})
        browser.get(f"{b}/")
        _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "[data-outreach-form]")
              .get_attribute("data-outreach-ready")
              and d.find_element(By.NAME, "timezone").is_enabled())
        _fill(browser, {"email": "bob@example.com", "company": "Bobco"})
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".of-thanks"))
    finally:
        browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})
    env.drain()
    zones = {lead["email"]: lead["timezone"] for lead in env.get("/api/v1/leads").get_json()["items"]}
    assert zones == {"ann@example.com": "Asia/Tokyo", "bob@example.com": "America/Sao_Paulo"}


def test_without_script_a_form_sends_no_zone(no_js_browser, sites) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    env, a = sites["env"], sites["a"]
    no_js_browser.get(f"{a}/f/summit")
    assert not no_js_browser.find_element(By.NAME, "timezone").is_enabled()
    _fill(no_js_browser, {"email": "carla@example.com", "company": "Plain"})
    no_js_browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(no_js_browser, lambda d: d.current_url.endswith("/f/summit/thanks"))
    env.drain()
    (lead,) = env.get("/api/v1/leads").get_json()["items"]
    assert (lead["email"], lead["timezone"]) == ("carla@example.com", None)
