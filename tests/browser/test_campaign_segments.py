"""The new-campaign form with segments beside lists and exclusions, in a real headless
Chromium: the deduplicated audience is counted as boxes are ticked (htmx), the draft keeps
the segments; and the lead page's table of scored events. axe-core at 1280x800 and 390x844,
screenshots into ``build/screenshots/console`` (``$OUTREACH_SCREENSHOTS``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from outreach.people.segments import build, catalog
from outreach.platform import users

from .person import PASSWORD, VIEWPORTS, Person
from .test_console import phone_pass


@pytest.fixture
def console(cenv: Any, serve: Any, browser: Any) -> Any:
    for role in users.ROLES:
        users.create_user(cenv.store, f"{role}@example.com", role, PASSWORD)
    cenv.leads("ann@example.com", "bob@example.com", asset="spring-guide", first_name="Ann",
               company="Acme Corp")
    cenv.leads("cara@example.com", "dan@example.com", asset="launch-event", kind="event",
               company="Initech")
    cenv.leads("bob@example.com", asset="launch-event", kind="event", company="Initech")
    for name, rules in (("Initech people", {"field": "company", "op": "eq", "value": "Initech"}),
                        ("Bob", {"field": "email", "op": "starts_with", "value": "bob@"})):
        segment = catalog.create_segment(cenv.store, name, "lead", rules)
        assert not build.build(cenv.store, segment["id"])
    browser.set_window_size(*VIEWPORTS["desktop"])
    return Person(browser, serve(cenv.app)), cenv


def test_a_campaign_to_lists_and_segments_less_exclusions(console: Any) -> None:
    person, env = console
    By = person.by()
    template_id = env.template(name="Segment follow-up")
    person.sign_in("marketer@example.com")
    person.open("/console/campaigns/new")
    person.heading("New campaign")
    person.fill("Name", "By segment")
    from selenium.webdriver.support.ui import Select

    Select(person.field("Template")).select_by_visible_text("Segment follow-up")

    def tick(prefix: str, name: str) -> None:
        (box,) = [el for el in person.d.find_elements(By.CSS_SELECTOR, f"input[id^='{prefix}-']")
                  if name in el.find_element(By.XPATH, "..").text]
        box.find_element(By.XPATH, "..").click()

    def audience() -> str:
        return person.d.find_element(By.ID, "audience-size").text

    tick("l", "spring-guide (leads)")  # ann, bob
    person.wait(lambda d: audience() == "2")
    tick("s", "Initech people")  # bob (and his new company), cara, dan
    person.wait(lambda d: audience() == "4")
    person.press("Leave out the people on these lists or in these segments")
    tick("xs", "Bob")
    person.wait(lambda d: audience() == "3")
    assert "members of the lists and segments" in person.d.find_element(By.ID, "audience").text
    person.d.execute_script("document.getElementById('audience').scrollIntoView({block: 'center'})")
    person.check("campaign-new-segments", revisit=False)
    person.press("Create draft")
    person.heading("By segment")
    campaign_id = urlsplit(person.d.current_url).path.rsplit("/", 1)[1]
    campaign = env.get(f"/api/v1/campaigns/{campaign_id}").get_json()
    assert campaign["template_id"] == template_id
    assert len(campaign["segment_ids"]) == 1 and len(campaign["exclude_segment_ids"]) == 1
    person.open("/console/campaigns/new")  # the empty form, with the segments offered
    person.heading("New campaign")
    assert "Initech people (3 members)" in person.text()
    person.check("campaign-new-empty")
    phone_pass(person)  # the marketer's pages at phone size
    person.pages.clear()
    person.d.set_window_size(*VIEWPORTS["desktop"])
    person.sign_out()

    # a lead's score: each scored event, its points and what it is worth now
    person.sign_in("sales@example.com")
    bob = env.lead_of("bob@example.com")
    person.open(f"/console/leads/{bob['id']}")
    person.heading("Ann")  # bob registered with the first name Ann
    person.sees("bob@example.com")
    table = person.d.find_element(By.ID, "score-items")
    assert "registered for event launch-event" in table.text
    assert table.find_elements(By.CSS_SELECTOR, "tr.score-item")
    person.d.execute_script("document.getElementById('score-items').scrollIntoView()")
    person.check("lead-score")

    phone_pass(person)
