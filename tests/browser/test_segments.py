"""Segments in a real headless Chromium, built the way a marketer builds one.

With JavaScript: the rule builder counts as the rules change (htmx, debounced), a change of
a rule's kind brings that kind's inputs, a bad value is marked on its rule, Save builds the
segment; its page shows the size, the members and why a person is or is not a member. The
same segment is then built without JavaScript (the Count and + Condition buttons re-render
the page), and one is deleted after the confirmation step. axe-core on every page at 1280x800
and 390x844, screenshots of the list, the builder and the segment page at both sizes.
Every wait is for a condition on the page (the count's text, an element), never a sleep."""

from __future__ import annotations

from typing import Any

import pytest

from outreach.people.segments import build
from outreach.platform import users

from .person import PASSWORD, VIEWPORTS, Person
from .test_console import phone_pass


@pytest.fixture
def console(cenv: Any, serve: Any, browser: Any) -> Any:
    users.create_user(cenv.store, "marketer@example.com", "marketer", PASSWORD)
    cenv.leads("ann@example.com", "bob@example.com", asset="spring-guide", first_name="Ann",
               company="Acme Corp", country="DE")
    cenv.leads("cara@example.com", asset="launch-event", kind="event", first_name="Cara",
               company="Initech", country="DE")
    cenv.leads("dan@example.com", asset="spring-guide", company="Initech", country="FR")
    browser.set_window_size(*VIEWPORTS["desktop"])
    return Person(browser, serve(cenv.app)), cenv


def _count(person: Person, expected: str) -> None:
    By = person.by()
    person.wait(lambda d: d.find_element(By.ID, "preview-count").text == expected)


def _select(person: Person, element_id: str, *, value: str | None = None,
            text: str | None = None) -> None:
    from selenium.webdriver.support.ui import Select

    By = person.by()

    def chosen(d: Any) -> bool:
        select = Select(d.find_element(By.ID, element_id))
        if value is not None:
            select.select_by_value(value)
        else:
            select.select_by_visible_text(text)
        return True

    person.wait(chosen)


def _segment_id(person: Person) -> str:
    return person.d.current_url.rstrip("/").rsplit("/", 1)[1]


def test_a_marketer_builds_a_segment_with_and_without_javascript(console: Any) -> None:
    person, env = console
    By = person.by()
    guide_list = env.asset_list("spring-guide", "lead")

    person.sign_in("marketer@example.com")
    person.press("Segments")
    person.heading("Segments")
    person.sees("No segment yet.")

    # with JavaScript: the count follows the rules as they are typed
    person.press("New segment")
    person.heading("New segment")
    person.fill("Name", "German guide readers")
    _select(person, "field-r-0", value="country")
    _select(person, "op-r-0", value="eq")
    person.d.find_element(By.ID, "value-r-0").send_keys("de")
    _count(person, "3")
    person.press("+ Condition")
    person.wait(lambda d: d.find_element(By.ID, "kind-r-1"))
    _select(person, "kind-r-1", value="in_list")  # brings the list chooser
    person.wait(lambda d: d.find_element(By.ID, "list-r-1"))
    _select(person, "list-r-1", value=guide_list)
    _count(person, "2")
    assert "ann@example.com" in person.d.find_element(By.ID, "preview").text
    person.check("segment-builder", revisit=False)

    # a bad value is marked on its rule, and the count waits for it to be fixed
    _select(person, "field-r-0", value="score")
    value = person.d.find_element(By.ID, "value-r-0")
    value.clear()
    value.send_keys("lots")
    person.wait(lambda d: "A number." in d.find_element(By.ID, "errors-r-0").text)
    person.wait(lambda d: d.find_element(By.ID, "preview-errors").is_displayed())
    person.check("segment-builder-error", revisit=False)
    _select(person, "field-r-0", value="country")
    value = person.d.find_element(By.ID, "value-r-0")
    value.clear()
    value.send_keys("DE")
    _count(person, "2")
    person.wait(lambda d: d.find_element(By.ID, "errors-r-0").text == "")

    person.press("Save segment")
    person.heading("German guide readers")
    segment_id = _segment_id(person)
    assert not build.build(env.store, segment_id)  # what the beat does
    person.d.refresh()
    person.wait(lambda d: d.find_element(By.ID, "segment-size").text == "2")
    members = person.d.find_element(By.CSS_SELECTOR, ".table-wrap[aria-label='Members']").text
    assert "ann@example.com" in members and "bob@example.com" in members
    assert "cara@example.com" not in members
    person.fill("Email address", "cara@example.com")
    person.press("Explain")
    person.sees("cara@example.com is not a member")
    explained = person.d.find_element(By.ID, "explain-result").text
    assert f"not on list {guide_list}" in explained and "country is 'DE'" in explained
    person.check("segment-page")
    person.press("Segments")
    person.heading("Segments")
    assert "German guide readers" in person.text()
    person.check("segments-list")
    person.open("/console/segments/new")
    person.heading("New segment")
    person.check("segment-builder-new")

    # without JavaScript: Count and + Condition post the form and the page comes back
    person.d.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        person.open("/console/segments/new")
        person.heading("New segment")
        person.d.find_element(By.ID, "s-name").send_keys("Initech people")
        _select(person, "field-r-0", value="company")
        _select(person, "op-r-0", value="contains")
        person.d.find_element(By.ID, "value-r-0").send_keys("initech")
        person.press("Count")
        _count(person, "2")
        person.press("+ Condition")
        person.wait(lambda d: d.find_element(By.ID, "kind-r-1"))
        _select(person, "field-r-1", value="country")
        _select(person, "op-r-1", value="ne")
        person.d.find_element(By.ID, "value-r-1").send_keys("FR")
        person.press("Count")
        _count(person, "1")
        person.d.find_element(By.ID, "value-r-1").clear()
        person.press("Save segment")  # an empty value: the error is on that rule
        person.wait(lambda d: "non-empty" in d.find_element(By.ID, "errors-r-1").text)
        person.d.find_element(By.ID, "value-r-1").send_keys("FR")
        person.press("Save segment")
        person.heading("Initech people")
    finally:
        person.d.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
    second = _segment_id(person)
    assert not build.build(env.store, second)
    person.d.refresh()
    person.wait(lambda d: d.find_element(By.ID, "segment-size").text == "1")
    assert "cara@example.com" in person.text()

    # deleting asks first
    person.press("Delete")
    person.heading("Delete the segment")
    person.press("Yes, delete")
    person.heading("Segments")
    person.sees("Deleted the segment 'Initech people'.")

    phone_pass(person)
    assert {"segment-page", "segments-list", "segment-builder-new"} <= set(person.pages)
