"""An A/B test in the console, in a real headless Chromium: the new-campaign form's variants
(no JavaScript needed), the campaign page's variants with their rates, intervals and bars,
and "Decide now" through its confirmation step. axe-core on every page; screenshots at
desktop and phone size (``build/screenshots/console``)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from selenium.webdriver.support.ui import Select

from outreach.platform import users

from .person import PASSWORD, VIEWPORTS, Person, shots_dir
from .test_console import both_sizes, phone_pass


@pytest.fixture
def console(cenv: Any, serve: Any, browser: Any) -> Any:
    for role in users.ROLES:
        users.create_user(cenv.store, f"{role}@example.com", role, PASSWORD)
    cenv.leads(*[f"p{i:02d}@example{i % 3}.com" for i in range(24)], asset="ab-guide",
               first_name="Pat")
    browser.set_window_size(*VIEWPORTS["desktop"])
    return Person(browser, serve(cenv.app)), cenv


def test_a_marketer_sets_up_an_ab_test_and_decides_it(console: Any) -> None:
    person, env = console
    By = person.by()
    env.template(subject="Our guide", name="Guide")
    person.sign_in("marketer@example.com")
    person.open("/console/campaigns/new")
    person.heading("New campaign")
    person.fill("Name", "Guide A/B")
    Select(person.field("Template")).select_by_visible_text("Guide")
    person.d.find_element(By.XPATH, "//label[contains(., 'ab-guide')]/input").click()
    person.press("A/B test (optional)")
    # a wrong answer first: one variant alone is no test
    person.fill("Variant A subject", "Only A")
    person.fill("Test share", "50")
    person.press("Create draft")
    person.sees("Variants:")
    person.check("campaign-form-ab-error", revisit=False)
    form_url = person.d.current_url
    for size in ("desktop", "phone"):  # the A/B part of the form, up close
        person.d.set_window_size(*VIEWPORTS[size])
        section = person.d.find_element(By.ID, "ab-test")
        person.d.execute_script("arguments[0].scrollIntoView()", section)
        section.screenshot(str(shots_dir() / f"campaign-form-ab-{size}.png"))
    person.d.set_window_size(*VIEWPORTS["desktop"])
    assert person.d.current_url == form_url
    person.fill("Variant B subject", "Your guide is waiting")
    Select(person.field("Winner by")).select_by_visible_text("clicks")
    person.fill("Decide after", "2")
    Select(person.field("Unit")).select_by_visible_text("hours")
    person.press("Create draft")
    person.heading("Guide A/B")
    person.sees("A/B test")
    person.sees("Testing")
    campaign_id = person.d.current_url.rstrip("/").rsplit("/", 1)[1]
    experiment = env.show(campaign_id)["experiment"]
    assert [v["subject"] for v in experiment["variants"]] == ["Only A", "Your guide is waiting"]
    assert (experiment["test_share"], experiment["decide_after"]) == (0.5, "PT2H")
    person.check("campaign-experiment-draft")

    # launched; the test share is sent; everyone who got B clicks
    assert env.post(f"/api/v1/campaigns/{campaign_id}/launch").status_code == 200
    env.pump()
    env.watch(campaign_id)
    for msg, _, _ in env.messenger.messages:
        if msg["Subject"] == "Your guide is waiting":
            html = msg.get_body(("html",)).get_content()
            click = re.search(r'href="https?://[^"/]+(/t/c/[^"]+)"', html)
            if click:
                env.client.get(click.group(1), headers={"User-Agent": "Thunderbird/115"})
    person.open(f"/console/campaigns/{campaign_id}")
    person.heading("Guide A/B")
    table = person.d.find_element(By.ID, "experiment-variants").text
    assert "Your guide is waiting" in table and "–" in table
    assert len(person.d.find_elements(By.CSS_SELECTOR, "#experiment-variants svg line.whisker")) == 6
    person.check("campaign-experiment-testing")
    section_shots(person, "experiment-section-testing")

    def decide_b() -> None:
        person.open(f"/console/campaigns/{campaign_id}")
        person.press("Choose B")
        person.heading("Choose variant B")

    decide_b()
    both_sizes(person, "experiment-confirm", decide_b)
    person.press("Yes, choose B")
    person.sees("Variant B chosen")
    assert person.d.find_element(By.ID, "experiment-winner").text == "B"
    person.sees("by marketer@example.com")
    assert not person.d.find_elements(By.XPATH, "//button[normalize-space()='Choose A']")
    person.check("campaign-experiment-decided")
    section_shots(person, "experiment-section-decided")
    env.pump()
    env.watch(campaign_id)
    assert env.show(campaign_id)["status"] == "sent"
    assert set(env.messenger.counts().values()) == {1} and len(env.messenger.counts()) == 24
    phone_pass(person)


def section_shots(person: Person, name: str) -> None:
    """The A/B section alone, at desktop and phone size (to look at the bars up close)."""
    By = person.by()
    url = person.d.current_url
    for size in ("desktop", "phone"):
        person.d.set_window_size(*VIEWPORTS[size])
        person.d.get(url)
        section = person.d.find_element(By.ID, "experiment")
        person.d.execute_script("arguments[0].scrollIntoView()", section)
        section.screenshot(str(shots_dir() / f"{name}-{size}.png"))
    person.d.set_window_size(*VIEWPORTS["desktop"])
