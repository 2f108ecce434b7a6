"""The unsubscribe page end to end in a real headless Chromium.

A campaign is sent on fakeredis with the fake messenger; the recipient's
List-Unsubscribe https URL is taken from the message, pointed at a live werkzeug
server, opened in the browser and confirmed with the page's own button.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

TIMEOUT = 10


@pytest.fixture
def sent(cenv, serve) -> dict[str, Any]:
    """A campaign sent to ann and bob, the app served live; unsubscribe URLs point at it."""
    list_id = cenv.leads("ann@example.com", "bob@example.com", first_name="Ann")
    campaign_id = cenv.launched([list_id])
    assert cenv.run(campaign_id)["stats"]["sent"] == 2
    base = serve(cenv.app)
    configured = urlsplit(cenv.config.base_url)
    urls = {}
    for address in ("ann@example.com", "bob@example.com"):
        header = cenv.messenger.to(address)["List-Unsubscribe"]
        (url,) = re.findall(r"<(https://[^>]+)>", header)
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc) == (configured.scheme, configured.netloc), url
        assert parts.path.startswith("/u/"), url
        urls[address] = base + parts.path
    return {"env": cenv, "campaign_id": campaign_id, "urls": urls}


def _wait_heading(driver: Any, text: str) -> None:
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    # the h1 looked up while the form post navigates away can belong to the old document
    # ("Node with given id does not belong to the document"): look again until the timeout
    WebDriverWait(driver, TIMEOUT, ignored_exceptions=(StaleElementReferenceException, WebDriverException)
                  ).until(ec.text_to_be_present_in_element((By.TAG_NAME, "h1"), text))


def _status(driver: Any) -> int:
    """The HTTP status of the page the browser shows (Navigation Timing ``responseStatus``)."""
    return int(driver.execute_script(
        "return performance.getEntriesByType('navigation')[0].responseStatus"))


def _body(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def _tamper(token: str) -> str:
    """Change one character inside the signature (not the last, whose low bits are padding)."""
    i = len(token) - 5
    assert token.rfind(".") < i
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]


def test_unsubscribe_in_the_browser(browser, sent) -> None:
    from selenium.webdriver.common.by import By

    env, campaign_id = sent["env"], sent["campaign_id"]
    keys = env.store.keys

    browser.get(sent["urls"]["ann@example.com"])
    _wait_heading(browser, "Unsubscribe?")
    assert _status(browser) == 200
    assert browser.title == "Unsubscribe"
    assert "ann@example.com" in _body(browser)
    (button,) = browser.find_elements(By.CSS_SELECTOR, "form button[type=submit]")
    assert button.is_displayed() and button.text == "Unsubscribe"
    # opening the confirm page changes nothing
    assert env.store.r.hget(keys.suppressed, "ann@example.com") is None
    assert env.lead_of("ann@example.com")["consent"] is True
    assert env.show(campaign_id)["stats"]["unsubscribed"] == 0

    button.click()
    _wait_heading(browser, "You are unsubscribed")
    assert _status(browser) == 200
    assert browser.title == "You are unsubscribed"
    assert "ann@example.com will not receive marketing email from us any more." in _body(browser)
    assert browser.find_elements(By.TAG_NAME, "form") == []

    assert env.store.r.hget(keys.suppressed, "ann@example.com") == "unsubscribed"
    assert env.store.r.hlen(keys.suppressed) == 1
    assert env.lead_of("ann@example.com")["consent"] is False
    assert env.lead_of("bob@example.com")["consent"] is True
    assert env.show(campaign_id)["stats"]["unsubscribed"] == 1


def test_tampered_link_shows_the_not_valid_page(browser, sent) -> None:
    from selenium.webdriver.common.by import By

    env, campaign_id = sent["env"], sent["campaign_id"]
    url = sent["urls"]["ann@example.com"]
    prefix, _, token = url.rpartition("/")

    browser.get(f"{prefix}/{_tamper(token)}")
    _wait_heading(browser, "This link is not valid")
    assert _status(browser) == 404
    assert "damaged or incomplete" in _body(browser)
    assert "ann@example.com" not in browser.page_source
    assert browser.find_elements(By.TAG_NAME, "form") == []

    assert env.store.r.hlen(env.store.keys.suppressed) == 0
    assert env.lead_of("ann@example.com")["consent"] is True
    assert env.show(campaign_id)["stats"]["unsubscribed"] == 0
