"""Headless Chromium (Debian's) driving the real screens on pytest-django's live server.

The sync Playwright API runs an event loop in the test thread, which makes Django's async-safety
check refuse ORM calls from the test body; the tests only use the ORM between page actions, so
that check is switched off for this folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

# Generous waits: CI machines are shared and a slow first render is not a failure of the screen.
expect.set_options(timeout=15_000)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium).")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class PageProblems(list):
    """Console errors and uncaught exceptions of a page (a CSP violation shows up here too)."""


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


def _open_page(browser: Browser, problems: PageProblems, viewport: dict) -> Page:
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(15_000)
    page = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        # The site has no favicon; the browser's request for one is not a page problem.
        if message.type == "error" and "favicon" not in (message.location or {}).get("url", ""):
            problems.append(f"console: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    return page


@pytest.fixture
def page(browser: Browser, problems: PageProblems) -> Iterator[Page]:
    page = _open_page(browser, problems, LAPTOP)
    yield page
    page.context.close()


@pytest.fixture
def phone_page(browser: Browser, problems: PageProblems) -> Iterator[Page]:
    page = _open_page(browser, problems, PHONE)
    yield page
    page.context.close()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login_with_keyboard(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    # The username field has autofocus: type, Tab to the password, Enter submits.
    expect(page.locator("#id_username")).to_be_focused()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base_url}/")
