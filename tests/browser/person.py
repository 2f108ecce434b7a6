"""A person in the browser, for the console tests: fields by label, buttons by text,
axe-core on every page checked, screenshots into ``build/screenshots/console``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

TIMEOUT = 15
PASSWORD = "a long test passphrase"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}


def shots_dir() -> Path:
    folder = Path(os.environ.get("OUTREACH_SCREENSHOTS") or
                  Path(__file__).resolve().parents[2] / "build" / "screenshots" / "console")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Person:
    """A browser user: finds fields by their label and buttons and links by their text."""

    def __init__(self, driver: Any, base: str) -> None:
        self.d = driver
        self.base = base
        self.pages: dict[str, str] = {}  # screenshot name -> URL, revisited at phone size
        self.axe_checked: list[str] = []

    def open(self, path: str) -> None:
        self.d.get(self.base + path)

    def by(self) -> Any:
        from selenium.webdriver.common.by import By

        return By

    def wait(self, condition: Any) -> Any:
        """Until ``condition(driver)`` is truthy; a page being replaced meanwhile (stale
        elements, a node that left the document) is just another try."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.d, TIMEOUT, ignored_exceptions=(WebDriverException,)).until(condition)

    def sees(self, text: str) -> None:
        self.wait(lambda d: text in d.find_element(self.by().TAG_NAME, "body").text)

    def text(self) -> str:
        return self.d.find_element(self.by().TAG_NAME, "body").text

    def heading(self, text: str) -> None:
        from selenium.webdriver.support import expected_conditions as ec

        self.wait(ec.text_to_be_present_in_element((self.by().TAG_NAME, "h1"), text))

    def field(self, label: str) -> Any:
        By = self.by()
        labels = [el for el in self.d.find_elements(By.TAG_NAME, "label")
                  if el.text.strip().startswith(label)]
        assert labels, f"no field labelled {label!r} on {self.d.current_url}"
        return self.d.find_element(By.ID, labels[0].get_attribute("for"))

    def fill(self, label: str, value: str) -> None:
        element = self.field(label)
        element.clear()
        element.send_keys(value)

    def press(self, text: str) -> None:
        By = self.by()
        xpath = (f"//button[normalize-space()='{text}'] | //a[normalize-space()='{text}'] | "
                 f"//summary[normalize-space()='{text}']")

        def clicked(driver: Any) -> bool:
            shown = [el for el in driver.find_elements(By.XPATH, xpath) if el.is_displayed()]
            if not shown:
                return False
            shown[0].click()  # a node that left the document meanwhile: wait() tries again
            return True

        try:  # the page may still be loading: wait for it to show the button
            self.wait(clicked)
        except Exception as exc:  # noqa: BLE001 - say what the page shows instead
            raise AssertionError(f"no button or link {text!r} on {self.d.current_url}: "
                                 f"{self.text()[:800]}") from exc

    def sign_in(self, email: str) -> None:
        self.open("/console/login")
        self.heading("Sign in")
        self.fill("Email", email)
        self.fill("Password", PASSWORD)
        self.press("Sign in")
        self.heading("Dashboard")

    def sign_out(self) -> None:
        self.press("Sign out")
        self.heading("Sign in")

    def check(self, name: str, revisit: bool = True) -> None:
        """axe-core on this page (no serious or critical violation) and a screenshot;
        ``revisit``: the phone-size pass opens its URL again (not for answers to a POST)."""
        if revisit:
            self.pages[name] = self.d.current_url
        violations = axe_violations(self.d)
        assert not violations, f"{name}: " + "; ".join(
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in violations)
        self.axe_checked.append(name)
        self.d.save_screenshot(str(shots_dir() / f"{name}-desktop.png"))


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    results = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(done, e => done({error: String(e)}));")
    assert "error" not in results, results
    return [v for v in results["violations"] if v["impact"] in ("serious", "critical")]


def full_page_shot(driver: Any, path: Path, width: int) -> None:
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(width, min(max(height + 140, 844), 4000))
    driver.save_screenshot(str(path))
