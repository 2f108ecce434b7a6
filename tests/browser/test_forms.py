"""Hosted form and embed in a real headless Chromium, the embed on another origin.

Three live servers: the service (origin A, ``OUTREACH_CORS_ORIGINS`` = B), a website on
origin B that carries the embed snippet, and a website on origin C that is not allowed.
Screenshots go to ``$OUTREACH_SCREENSHOTS`` (default: the test's tmp dir).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

TIMEOUT = 10
VENDOR = Path(__file__).parent / "vendor" / "axe.min.js"
ASSET = {"slug": "summit", "kind": "event", "title": "Cloud Summit 2027",
         "description": "Two days of talks in Lyon.", "location": "Lyon",
         "form": {"fields": ["first_name", "company"], "required": ["company"],
                  "consent_text": "Yes, email me about the summit.",
                  "thank_you_message": "Thanks! See you in Lyon."}}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live() -> Iterator[Callable[[Any, int], str]]:
    servers = []

    def start(app: Any, port: int) -> str:
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _site(html: str) -> Any:
    @Request.application
    def app(request: Request) -> Response:
        return Response(html, mimetype="text/html")

    return app


@pytest.fixture
def sites(make_env, live) -> Iterator[dict[str, Any]]:
    """The service on A with the asset, and the pages of sites B (allowed) and C (not)."""
    port_a, port_b, port_c = _port(), _port(), _port()
    a, b, c = (f"http://127.0.0.1:{p}" for p in (port_a, port_b, port_c))
    # B is reached as "localhost": another origin than 127.0.0.1 whatever the ports
    b = f"http://localhost:{port_b}"
    with make_env(base_url=a, cors_origins=(b,)) as env:
        assert env.post("/api/v1/assets", json=ASSET).status_code == 201
        live(env.app, port_a)
        with env.app.test_request_context():
            from outreach.people.assets import get_asset
            from outreach.web.public.pages import snippet

            embed = snippet(get_asset(env.store, "summit", a))
        page = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Partner site"
                "</title></head><body><main><h1>Register on our partner site</h1>"
                f"{embed}</main></body></html>")
        live(_site(page), port_b)
        live(_site(page), port_c)
        yield {"env": env, "a": a, "b": b, "c": c}


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("OUTREACH_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _wait(driver: Any, condition: Callable[[Any], Any]) -> Any:
    """Until ``condition``; an element of the page being left (a form post) is looked up
    again on the next poll."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, TIMEOUT, ignored_exceptions=(
        StaleElementReferenceException, NoSuchElementException)).until(condition)


def _leads(env: Any) -> list[str]:
    env.drain()
    return sorted(lead["email"] for lead in env.get("/api/v1/leads").get_json()["items"])


def _fill(driver: Any, values: dict[str, str]) -> None:
    from selenium.webdriver.common.by import By

    for name, value in values.items():
        field = driver.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)


def _error_of(driver: Any, name: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'[data-field="{name}"] .of-error').text


def _axe(driver: Any) -> list[dict[str, Any]]:
    if not VENDOR.is_file():
        pytest.skip("axe-core is not vendored in tests/browser/vendor")
    driver.execute_script(VENDOR.read_text())
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations))"
        ".catch(e => done([{id: 'axe-error', help: String(e), impact: 'critical'}]));")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"]} for v in result]


def test_hosted_form_without_javascript_needed(browser, sites, shots) -> None:
    from selenium.webdriver.common.by import By

    env, a = sites["env"], sites["a"]
    browser.get(f"{a}/f/summit")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Cloud Summit 2027"
    assert "Yes, email me about the summit." in browser.find_element(By.TAG_NAME, "form").text
    assert _axe(browser) == []
    browser.save_screenshot(str(shots / "hosted-form.png"))
    _fill(browser, {"email": "not an address", "first_name": "Ann", "company": "Acme"})
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(browser, lambda d: _error_of(d, "email"))
    assert _error_of(browser, "email") == "Not a valid email address."
    assert browser.find_element(By.NAME, "company").get_attribute("value") == "Acme"
    assert _axe(browser) == []
    browser.save_screenshot(str(shots / "hosted-form-error.png"))
    _fill(browser, {"email": "ann@example.com", "company": ""})
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(browser, lambda d: _error_of(d, "company"))
    assert _error_of(browser, "company") == "Missing data for required field."
    _fill(browser, {"company": "Acme"})
    browser.find_element(By.NAME, "consent").click()
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(browser, lambda d: d.current_url.endswith("/f/summit/thanks"))
    assert "Thanks! See you in Lyon." in browser.find_element(By.TAG_NAME, "body").text
    assert _axe(browser) == []
    browser.save_screenshot(str(shots / "hosted-thanks.png"))
    assert _leads(env) == ["ann@example.com"]
    lead = env.get("/api/v1/leads").get_json()["items"][0]
    assert lead["first_name"] == "Ann" and lead["company"] == "Acme" and lead["consent"] is True


def test_embed_on_another_origin(browser, sites, shots) -> None:
    from selenium.webdriver.common.by import By

    env, b = sites["env"], sites["b"]
    browser.get(f"{b}/")
    _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "[data-outreach-form]")
          .get_attribute("data-outreach-ready"))
    _wait(browser, lambda d: d.execute_script("return performance.getEntriesByType('resource')"
                                              ".some(e => e.name.endsWith('/f/summit.json'))"))
    assert not browser.find_elements(By.TAG_NAME, "iframe")
    browser.save_screenshot(str(shots / "embed-form.png"))
    _fill(browser, {"email": "bob@exa mple.com", "company": "Bobco"})
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(browser, lambda d: _error_of(d, "email"))
    assert _error_of(browser, "email") == "Not a valid email address."
    assert browser.current_url.startswith(b)  # the script showed it; no navigation
    email = browser.find_element(By.NAME, "email")
    assert email.get_attribute("aria-invalid") == "true"
    browser.save_screenshot(str(shots / "embed-error.png"))
    _fill(browser, {"email": "bob@example.com"})
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".of-thanks"))
    assert browser.find_element(By.CSS_SELECTOR, ".of-thanks").text == "Thanks! See you in Lyon."
    assert browser.current_url.startswith(b)
    browser.save_screenshot(str(shots / "embed-thanks.png"))
    assert _leads(env) == ["bob@example.com"]


def test_an_origin_not_allowed_is_refused_by_the_browser(browser, sites) -> None:
    env, a, c = sites["env"], sites["a"], sites["c"]
    browser.get(f"{c}/")
    outcome = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('{a}/api/v1/registrations', {{method: 'POST', mode: 'cors',"
        " headers: {'Content-Type': 'application/json'},"
        " body: JSON.stringify({kind: 'event', asset: 'summit', email: 'eve@example.com',"
        " company: 'Evil'})}).then(r => done('status ' + r.status))"
        ".catch(e => done('blocked: ' + e.name));")
    assert outcome == "blocked: TypeError"
    assert _leads(env) == []
    # the embed's form definition is not readable from there either: the form stays plain
    # and its plain post carries Origin C, which the service refuses (403)
    from selenium.webdriver.common.by import By

    _fill(browser, {"email": "eve@example.com", "company": "Evil"})
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(browser, lambda d: d.current_url.startswith(a))
    assert "not allowed" in browser.find_element(By.TAG_NAME, "body").text
    assert _leads(env) == []


@pytest.fixture
def no_js_browser(chrome) -> Iterator[Any]:
    """A second Chromium with JavaScript switched off (as when a site blocks the script)."""
    import shutil
    import tempfile

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from .conftest import CHROMEDRIVER, CHROMIUM

    profile = tempfile.mkdtemp(prefix="outreach-nojs-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs",
                                    {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_embed_without_javascript_still_posts(no_js_browser, sites, shots) -> None:
    from selenium.webdriver.common.by import By

    browser, env, a, b = no_js_browser, sites["env"], sites["a"], sites["b"]
    browser.get(f"{b}/")
    assert not browser.find_element(By.CSS_SELECTOR, "[data-outreach-form]").get_attribute(
        "data-outreach-ready")
    _fill(browser, {"email": "nojs", "company": "Plain"})
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(browser, lambda d: d.current_url.startswith(a))
    # the service's own page, with the error next to the field
    assert _error_of(browser, "email") == "Not a valid email address."
    browser.save_screenshot(str(shots / "nojs-error.png"))
    _fill(browser, {"email": "carla@example.com"})
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(browser, lambda d: d.current_url.endswith("/f/summit/thanks"))
    assert "Thanks! See you in Lyon." in browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(shots / "nojs-thanks.png"))
    assert _leads(env) == ["carla@example.com"]


def test_embed_solves_the_proof_of_work(browser, sites, shots) -> None:
    from selenium.webdriver.common.by import By

    env, b = sites["env"], sites["b"]
    # before any registration: the intake's rules cache has not read the asset yet
    env.patch("/api/v1/assets/summit", json={"form": {"proof_of_work": True}})
    browser.get(f"{b}/")
    _wait(browser, lambda d: d.execute_script("return performance.getEntriesByType('resource')"
                                              ".some(e => e.name.endsWith('/f/summit.json'))"))
    _fill(browser, {"email": "pow@example.com", "company": "Solvers"})
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".of-thanks"))
    assert env.store.r.hget(env.store.keys.metrics, "registrations_dropped_proof_of_work") is None
    assert _leads(env) == ["pow@example.com"]
