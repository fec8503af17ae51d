"""The browser tests' Chromium: one per test, closed after it."""

from __future__ import annotations

import pytest

from tests.app.browser_support import ARTIFACTS, launch_chromium


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright  # only the browser tests need Playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()
