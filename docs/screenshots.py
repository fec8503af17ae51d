"""Regenerates the documentation's pictures from the running app, so that they show what it shows today.

Run: python docs/screenshots.py   (needs Debian's chromium, as the browser tests do)

Starts the app with an empty review store, opens it in Chromium at 1440 x 900, and saves:
- docs/review.png: the Review page with the synthetic nodule sample and the model's attention for it;
- docs/model.png: the Model page.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.app.browser_support import VIEWER, WAIT_MS, launch_chromium, serving_app, wait_for_viewer  # noqa: E402

VIEWPORT = {"width": 1440, "height": 900}


def idle(page) -> None:
    """Wait until the page's script has finished: Streamlit shows its running indicator until then."""
    expect(page.locator("[data-testid=stStatusWidget]")).to_have_count(0, timeout=WAIT_MS)


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as scratch,
        serving_app(Path(scratch), Path(scratch) / "app.log") as url,
        sync_playwright() as playwright,
    ):
        browser = launch_chromium(playwright)
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(url)
        sample = ROOT / "assets" / "samples" / "synthetic-nodule.png"
        page.locator("[data-testid=stSidebar] input[type=file]").set_input_files([sample])
        expect(page.get_by_text("Attention overlay —")).to_be_visible(timeout=WAIT_MS)
        wait_for_viewer(page)
        expect(page.frame_locator(VIEWER).locator("#overlay")).not_to_have_attribute("data-drawn", "")
        colour_bar = page.locator("[data-testid=stMain] [data-testid=stImage] img")
        expect(colour_bar).to_have_js_property("complete", True, timeout=WAIT_MS)
        idle(page)
        page.screenshot(path=ROOT / "docs" / "review.png")
        page.goto(f"{url}/model")
        expect(page.get_by_role("heading", name="Model")).to_be_visible(timeout=WAIT_MS)
        idle(page)
        page.wait_for_timeout(2000)  # the charts draw after the page's script has finished
        page.screenshot(path=ROOT / "docs" / "model.png")
        browser.close()
    print("wrote docs/review.png and docs/model.png")


if __name__ == "__main__":
    main()
