"""The journeys console in a real headless Chromium, used the way a marketer would: build a
journey in the editor (add steps, reorder, remove, pick templates, waits and branch targets,
an error shown beside its step), save it, activate it after the confirmation, see the flow
drawn with each step's counts once a person is in it, pause and resume it, save a second
version, and find the person's journey on the lead page. axe-core on every page at desktop
and phone width, no sideways scrolling on a phone, screenshots of each."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from outreach.journeys import engine, inbox
from outreach.platform import users

from .person import PASSWORD, VIEWPORTS, Person, full_page_shot, shots_dir
from .test_console import phone_pass


@pytest.fixture
def console(cenv: Any, serve: Any, browser: Any) -> Any:
    for role in users.ROLES:
        users.create_user(cenv.store, f"{role}@example.com", role, PASSWORD)
    cenv.leads("ann@example.com", asset="spring-guide", first_name="Ann", last_name="Lee")
    cenv.app.extensions["outreach.messenger"] = cenv.messenger
    browser.set_window_size(*VIEWPORTS["desktop"])
    return Person(browser, serve(cenv.app)), cenv


def pump(env: Any) -> None:
    """What the beat and the workers do, by hand: the inbox, then every due step."""
    store, config = env.store, env.config
    for _ in range(20):
        inbox.drain(store, config)
        batches: list[tuple[str, list[str]]] = []
        collect = batches.append
        for journey_id in sorted(store.r.smembers(store.keys.journeys_running)):
            engine.drain_due(store, journey_id, lambda j, refs, c=collect: c((j, refs)),
                             now=time.time())
        if not batches:
            return
        for journey_id, refs in batches:
            engine.run_steps(store, config, env.messenger, journey_id, refs, now=time.time)


def look(person: Person, name: str, revisit: bool = True) -> None:
    """``Person.check`` (axe, the viewport's screenshot) and the whole page at desktop width."""
    person.check(name, revisit=revisit)
    full_page_shot(person.d, shots_dir() / f"{name}-desktop-full.png", VIEWPORTS["desktop"][0])
    person.d.set_window_size(*VIEWPORTS["desktop"])


def test_marketer_builds_runs_and_follows_a_journey(console: Any) -> None:
    from selenium.webdriver.support.ui import Select

    person, env = console
    By = person.by()
    first = env.template(name="Welcome guide")
    second = env.template(name="Second mail")

    def cards() -> list[str]:
        return [el.get_attribute("id") for el in person.d.find_elements(By.CSS_SELECTOR, "li.step-card")]

    def step_ids() -> list[str]:
        return [el.get_attribute("value") for el in
                person.d.find_elements(By.CSS_SELECTOR, "li.step-card input[name$='-id']")]

    def add(label: str, count: int) -> None:
        person.press(label)
        person.wait(lambda d: len(cards()) == count)

    def click(name: str, value: int) -> None:
        person.d.find_element(By.CSS_SELECTOR, f"button[name='{name}'][value='{value}']").click()

    def choose(element_id: str, value: str) -> None:
        Select(person.d.find_element(By.ID, element_id)).select_by_value(value)

    person.sign_in("marketer@example.com")
    person.press("Journeys")
    person.heading("Journeys")
    assert "No journey yet" in person.text()
    person.press("New journey")
    person.heading("New journey")
    person.fill("Name", "Spring guide nurture")
    choose("j-trigger", "registration")
    choose("j-asset", "spring-guide")
    for n, label in enumerate(("Send an email", "Wait", "Branch (if / else)", "Task for the owner",
                               "Send an email", "Exit", "Add to a list"), start=1):
        add(label, n)
    assert step_ids() == ["send-1", "wait-2", "branch-3", "task-4", "send-5", "exit-6",
                          "add-to-list-7"]
    assert person.field("Name").get_attribute("value") == "Spring guide nurture"  # kept
    # remove the list step, move the task below the second send
    click("remove", 6)
    person.wait(lambda d: len(cards()) == 6)
    click("down", 3)
    person.wait(lambda d: step_ids()[3:5] == ["send-5", "task-4"])
    look(person, "journey-editor-new", revisit=False)

    # saved with the branch going nowhere: the error stands beside the branch
    person.press("Save draft")
    person.wait(lambda d: d.find_elements(By.ID, "steps-2-error"))
    error = person.d.find_element(By.CSS_SELECTOR, "#step-2 #steps-2-error").text
    assert "branch-3" in error and "then" in error, error
    look(person, "journey-editor-error", revisit=False)

    choose("s0-template", first)
    person.fill("For (number)", "2")
    choose("s1-unit", "days")
    choose("s2-cond", "opened")
    choose("s2-cond-step", "send-1")
    person.d.find_element(By.ID, "s2-within").clear()
    person.d.find_element(By.ID, "s2-within").send_keys("3")
    choose("s2-then", "task-4")
    choose("s2-else", "send-5")
    choose("s3-template", second)
    choose("s3-next", "exit-6")
    person.d.find_element(By.ID, "s4-subject").clear()
    person.d.find_element(By.ID, "s4-subject").send_keys("Call Ann about the guide")
    # quiet hours that never hold while the test runs (Ann's zone is the default, UTC): fixed
    # hours would hold back her first mail whenever the suite runs at night
    hour = time.gmtime().tm_hour
    quiet_start, quiet_end = f"{(hour + 3) % 24:02d}:00", f"{(hour + 5) % 24:02d}:00"
    for element_id, value in (("j-quiet-start", quiet_start), ("j-quiet-end", quiet_end)):
        # a time input's keys follow the browser's locale (AM/PM): set it as a picker would
        person.d.execute_script("arguments[0].value = arguments[1]",
                                person.d.find_element(By.ID, element_id), value)
    person.press("Save draft")
    person.heading("Spring guide nurture")
    person.sees("saved as a draft")
    assert person.d.find_element(By.ID, "journey-status").text == "draft"
    boxes = person.d.find_elements(By.CSS_SELECTOR, "svg.flow g.flow-step")
    assert [b.get_attribute("id") for b in boxes] == [
        "flow-send-1", "flow-wait-2", "flow-branch-3", "flow-send-5", "flow-task-4", "flow-exit-6"]
    labels = [t.text for t in person.d.find_elements(By.CSS_SELECTOR, "svg.flow text.flow-label")]
    assert sorted(labels) == ["else", "then"]
    assert f"{quiet_start}–{quiet_end}" in person.d.find_element(By.ID, "journey-settings").text
    look(person, "journey-draft")

    # activate, after the confirmation
    person.press("Activate")
    person.heading("Activate")
    look(person, "journey-confirm", revisit=False)
    person.press("Yes, activate")
    person.heading("Spring guide nurture")
    person.wait(lambda d: d.find_element(By.ID, "journey-status").text == "active")

    # Ann registers again: she enters, the first mail goes, she waits
    env.leads("ann@example.com", asset="spring-guide")
    pump(env)
    assert env.messenger.to("ann@example.com")
    person.d.refresh()
    person.wait(lambda d: "sent 1" in d.find_element(By.ID, "flow-send-1").text)
    assert "waiting 1" in person.d.find_element(By.ID, "flow-wait-2").text
    assert "ann@example.com" in person.d.find_element(By.ID, "enrollment-table").text
    look(person, "journey-active")

    # pause and resume, each after its confirmation
    person.press("Pause")
    person.heading("Pause")
    person.press("Yes, pause")
    person.wait(lambda d: d.find_element(By.ID, "journey-status").text == "paused")
    person.sees("every step is held")
    person.press("Resume")
    person.heading("Resume")
    person.press("Yes, resume")
    person.wait(lambda d: d.find_element(By.ID, "journey-status").text == "active")

    # the enrollments filter
    choose("e-status", "done")
    person.press("Filter")
    person.wait(lambda d: "status=done" in d.current_url)
    assert "ann@example.com" not in person.d.find_element(By.ID, "enrollment-table").text
    choose("e-status", "active")
    person.fill("Email", "ann@example.com")
    person.press("Filter")
    person.wait(lambda d: "status=active" in d.current_url)
    assert "ann@example.com" in person.d.find_element(By.ID, "enrollment-table").text

    # editing the active journey makes version 2 (the page says so)
    person.press("Edit")
    person.heading("Edit journey")
    assert "version 2" in person.d.find_element(By.ID, "version-note").text
    look(person, "journey-editor")
    person.d.find_element(By.ID, "s4-subject").clear()
    person.d.find_element(By.ID, "s4-subject").send_keys("Call Ann today")
    person.press("Save as version 2")
    person.heading("Spring guide nurture")
    person.sees("Saved as version 2")
    assert person.d.find_element(By.ID, "journey-version").text == "2"

    person.press("Journeys")
    person.heading("Journeys")
    row = person.d.find_element(By.CSS_SELECTOR, "#journeys tbody tr").text
    assert "Spring guide nurture" in row and "active" in row and "registers for spring-guide" in row
    look(person, "journeys")

    # the lead page shows Ann's journey, step by step
    person.open(f"/console/leads/{env.lead_of('ann@example.com')['id']}")
    person.wait(lambda d: d.find_elements(By.ID, "person-journeys"))
    section = person.d.find_element(By.ID, "person-journeys").text
    assert "Spring guide nurture" in section and "version 1" in section, section
    assert re.search(r"send-1\s+sent", section), section
    look(person, "lead-journeys")

    phone_pass(person)
