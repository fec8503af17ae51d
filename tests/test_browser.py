"""End to end in a real browser: Debian's chromium, driven by Playwright, against `streamlit run app.py`.

Screenshots go to $MEDATTN_ARTIFACTS (default: test-artifacts/).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("MEDATTN_ARTIFACTS", ROOT / "test-artifacts"))
WAIT_MS = 90_000

if not CHROMIUM.exists():
    message = f"{CHROMIUM} is missing: apt-get install -y chromium"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail(f"streamlit did not start:\n{server.stdout.read().decode(errors='replace')}")
    yield url
    server.terminate()
    server.wait(timeout=20)


@pytest.fixture
def page(app_url):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(app_url)
        expect(page.get_by_text("not for diagnosis")).to_be_visible(timeout=WAIT_MS)
        yield page
        browser.close()


def upload_and_wait_for_overlay(page: Page, path: Path) -> None:
    page.locator("input[type=file]").set_input_files(path)
    expect(page.get_by_text(path.name)).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("Attention overlay —")).to_be_visible(timeout=WAIT_MS)
    images = page.locator("[data-testid=stImage] img")
    expect(images).to_have_count(3, timeout=WAIT_MS)  # original, overlay, colour bar
    for index in range(3):
        image = images.nth(index)
        expect(image).to_have_js_property("complete", True, timeout=WAIT_MS)  # retried until loaded
        assert image.evaluate("img => img.naturalWidth") > 0


def test_png_upload_shows_overlay_label_and_confidence(page):
    sample = ROOT / "assets" / "samples" / "synthetic-nodule.png"
    upload_and_wait_for_overlay(page, sample)
    expect(page.get_by_text("Findings above threshold: Pulmonary nodule")).to_be_visible()
    expect(page.get_by_text("Probabilities")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "review-png.png", full_page=True)
    page.get_by_role("combobox", name="Explanation").click()
    page.get_by_role("option", name="Occlusion").click()
    expect(page.get_by_text("Occlusion overlay — Pulmonary nodule")).to_be_visible(timeout=WAIT_MS)
    page.screenshot(path=ARTIFACTS / "review-occlusion.png", full_page=True)


def test_compressed_dicom_upload_shows_overlay_label_and_confidence(page, cr_jpeg2000_file):
    upload_and_wait_for_overlay(page, cr_jpeg2000_file)
    headline = page.get_by_role("heading").filter(has_text="threshold")
    expect(headline).to_be_visible()
    assert "%" in headline.inner_text()  # the confidence is on screen
    expect(page.get_by_text("not for diagnosis")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "review-dicom.png", full_page=True)
