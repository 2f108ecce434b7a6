"""The console as people use it, on the real thing: real Redis, an ``outreach worker``
process sending to a real SMTP server (aiosmtpd), the app served over HTTP, headless
Chromium. A marketer finds the lists registrations made, makes a template from a
built-in and previews it for a person, creates and launches a campaign and watches the
progress bar reach 100 %; the mail arrives; a recipient clicks; sales sees the message
sent and the click on the lead's timeline, qualifies
the lead, closes the opportunity as won and sees the funnel change on the dashboard."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from browser.conftest import browser, chrome, serve  # noqa: F401 - fixtures
from browser.person import PASSWORD, Person

from outreach.platform import users

from .conftest import wait_for

pytestmark = pytest.mark.integration


def test_marketer_and_sales_on_a_real_worker_and_smtp(make_service: Any, browser: Any,  # noqa: F811
                                                     serve: Any) -> None:  # noqa: F811
    service = make_service()
    service.start_worker()
    for email, name in (("ann@example.com", "Ann"), ("bob@example.com", "Bob")):
        service.register(kind="white_paper", asset="field-guide", email=email, first_name=name,
                         company="Globex", consent=True)
    wait_for(lambda: service.processed_count() == 2, timeout=60, message="ingest")
    for role in ("marketer", "sales"):
        users.create_user(service.store, f"{role}@example.com", role, PASSWORD)
    browser.set_window_size(1280, 800)
    person = Person(browser, serve(service.app))
    By = person.by()

    person.sign_in("marketer@example.com")
    assert person.d.find_element(By.ID, "total-leads").text == "2"
    person.press("Lists")
    person.sees("field-guide")
    person.press("Templates")
    person.press("Start from a built-in template")
    person.press("white paper followup")
    person.heading("New template")
    person.fill("Name", "Field guide follow-up")
    person.press("Save template")
    person.heading("Field guide follow-up")
    # previewed for a real person, rendered in the sending sandbox
    person.fill("Preview for", "bob@example.com")
    person.press("Preview")
    person.wait(lambda d: "email=bob" in d.current_url)
    assert person.d.find_element(By.ID, "preview-subject").text.startswith("Your copy of")
    person.d.switch_to.frame(person.d.find_element(By.CSS_SELECTOR, "iframe.preview"))
    person.sees("Hi Bob")
    person.d.switch_to.default_content()
    person.press("New campaign with this template")
    person.heading("New campaign")
    person.fill("Name", "Field guide mailing")
    [box] = [el for el in person.d.find_elements(By.CSS_SELECTOR, "fieldset label")
             if "field-guide (leads)" in el.text]
    box.click()
    person.press("Create draft")
    person.heading("Field guide mailing")
    person.press("Send a test")
    person.fill("Test addresses", "reviewer@agency.example")
    person.press("Send test")
    person.sees("Test sent to reviewer@agency.example")
    wait_for(lambda: len(service.smtp.messages) == 1, timeout=10, message="the test message")
    test = service.smtp.messages[0].message
    assert test["Subject"].startswith("[TEST] ") and test["X-Outreach-Test"] == "yes"
    person.press("Launch")
    person.heading("Launch")
    person.press("Yes, launch")
    person.heading("Field guide mailing")
    # the worker sends; the page refreshes itself (htmx, every 2 s) until it is done
    person.wait(lambda d: d.find_element(By.ID, "campaign-status").text == "sent")
    assert person.d.find_element(By.ID, "campaign-percent").text.startswith("100")
    assert person.d.find_element(By.ID, "stat-sent").text == "2"
    person.sign_out()

    messages = service.smtp.messages[1:]  # after the test, which was not counted (2 sent)
    assert sorted(r for m in messages for r in m.rcpt_tos) == ["ann@example.com", "bob@example.com"]
    [to_bob] = [m.message for m in messages if m.rcpt_tos == ["bob@example.com"]]
    html = to_bob.get_body(preferencelist=("html",)).get_content()
    click = re.search(r'href="http://outreach\.test(/t/c/[^"]+)"', html)
    assert click, html[:2000]
    assert service.client.get(click.group(1)).status_code == 302

    person.sign_in("sales@example.com")
    person.press("Leads")
    person.fill("Search", "bob@example.com")
    person.press("Search")
    person.wait(lambda d: "q=bob" in d.current_url)
    person.press("bob@example.com")
    person.heading("Bob")
    # the lead's timeline: the message the worker sent, and the click on it
    person.sees("Clicked a link in")
    sent = person.d.find_elements(By.CSS_SELECTOR, "#timeline-items li.tl-message")
    assert len(sent) == 1 and "Message sent" in sent[0].text, person.text()[-1500:]
    assert "Field guide mailing" in sent[0].text and "bob@example.com" in sent[0].text
    clicked = person.d.find_elements(By.CSS_SELECTOR, "#timeline-items li.tl-click")
    assert len(clicked) == 1 and "Clicked a link" in clicked[0].text, clicked
    person.fill("Estimated revenue", "40000")
    person.press("Qualify lead")
    person.wait(lambda d: "/console/opportunities/" in d.current_url)
    person.press("Opportunities")
    person.sees("40,000 estimated")
    person.d.back()
    person.press("Close as won")
    person.wait(lambda d: d.find_element(By.ID, "opp-status").text == "won")
    person.press("Dashboard")
    person.sees("Opportunities won\n1")
    assert urlsplit(person.d.current_url).path == "/console/"
