"""End to end in a real browser: Debian's chromium, driven by Playwright, against `streamlit run app.py`.

Screenshots go to $MEDATTN_ARTIFACTS (default: test-artifacts/).
"""

from __future__ import annotations

import csv
import re
import subprocess
import time
from pathlib import Path

import pytest

from pages.views.shared import REAPER_UNAVAILABLE
from tests.app.browser_support import (
    ARTIFACTS,
    ROOT,
    VIEWER,
    WAIT_MS,
    require_chromium,
    rss_mb,
    server_pid,
    serving_app,
    settle,
    wait_for_viewer,
)
from tests.conftest import PYDICOM_DATA_FILES, dicom_with

require_chromium()

from playwright.sync_api import Page, expect  # noqa: E402
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError  # noqa: E402

pytestmark = pytest.mark.slow  # every test here serves the app and drives a real browser


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    directory = tmp_path_factory.mktemp("browser")
    with serving_app(directory / "data", directory / "streamlit.log") as url:
        yield url


def new_page(browser, app_url) -> Page:
    page = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True).new_page()
    page.goto(app_url)
    expect(page.get_by_text("not for diagnosis")).to_be_visible(timeout=WAIT_MS)
    return page


@pytest.fixture
def page(browser, app_url) -> Page:
    return new_page(browser, app_url)


def upload_and_wait_for_overlay(page: Page, *paths: Path) -> None:
    """Upload, and wait for the overlay; for a scan unlike the training data, first ask to see it anyway."""
    page.locator("[data-testid=stSidebar] input[type=file]").set_input_files(list(paths))
    overlay, withheld = page.get_by_text("Attention overlay —"), page.get_by_text("Show the model's output anyway")
    expect(overlay.or_(withheld)).to_be_visible(timeout=WAIT_MS)
    if withheld.is_visible():
        withheld.click()
    expect(overlay).to_be_visible(timeout=WAIT_MS)
    wait_for_viewer(page)
    expect(page.frame_locator(VIEWER).get_by_role("button", name="Overlay")).to_be_visible()  # the map is on it
    bar = page.locator("[data-testid=stMain] [data-testid=stImage] img")  # the colour bar
    expect(bar).to_have_count(1, timeout=WAIT_MS)
    expect(bar).to_have_js_property("complete", True, timeout=WAIT_MS)  # retried until loaded
    assert bar.evaluate("img => img.naturalWidth") > 0


def test_png_upload_shows_overlay_label_and_confidence(page):
    upload_and_wait_for_overlay(page, ROOT / "assets" / "samples" / "synthetic-nodule.png")
    expect(page.get_by_text("Findings above threshold: Pulmonary nodule")).to_be_visible()
    expect(page.get_by_text("Probabilities")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "review-png.png", full_page=True)


def answer(page: Page, finding: str, verdict: str) -> None:
    radio = page.locator("[class*=st-key-your-review-] [data-testid=stRadio]").filter(has_text=finding)
    radio.get_by_text(verdict, exact=True).click()


def test_an_unlike_scan_is_withheld_then_shown_marked_and_its_report_says_so(page, cr_jpeg2000_file, tmp_path):
    """A real JPEG 2000 chest radiograph, which the synthetic-trained model was not built for: withheld,
    revealed on request with every number marked, reviewed, reported and exported as such."""
    page.locator("[data-testid=stSidebar] input[type=file]").set_input_files([cr_jpeg2000_file])
    expect(page.get_by_text("This scan does not look like the images this model was trained on")).to_be_visible(
        timeout=WAIT_MS
    )
    expect(page.get_by_text("probabilities and heatmaps are withheld")).to_be_visible()
    wait_for_viewer(page)  # the scan alone: no map, no colour bar
    expect(page.locator("[data-testid=stMain] [data-testid=stImage]")).to_have_count(0)
    expect(page.frame_locator(VIEWER).get_by_role("button", name="Overlay")).to_be_hidden()
    expect(page.get_by_role("button", name="Save review")).to_be_visible(timeout=WAIT_MS)
    assert page.get_by_text("threshold").count() == 0 and "%" not in page.locator("[data-testid=stMain]").inner_text()
    page.screenshot(path=ARTIFACTS / "review-unlike-withheld.png", full_page=True)

    page.get_by_text("Show the model's output anyway").click()
    headline = page.get_by_role("heading").filter(has_text="threshold")
    expect(headline).to_contain_text("not meaningful for this scan", timeout=WAIT_MS)
    expect(page.get_by_text("Not meaningful for this scan: This scan does not look like")).to_be_visible()
    page.screenshot(path=ARTIFACTS / "review-unlike-shown-anyway.png", full_page=True)

    choose(page, "Explanation", "Grad-CAM")
    expect(page.get_by_text("Grad-CAM overlay —")).to_be_visible(timeout=WAIT_MS)

    page.get_by_role("textbox", name="Reviewer").fill("Dr Browser")
    page.get_by_role("textbox", name="Reviewer").press("Enter")
    for finding in ("Pulmonary nodule", "Pleural effusion", "Cardiomegaly"):
        answer(page, finding, "Unsure")
    page.get_by_role("textbox", name="Note").fill("Checked in a real browser.")
    page.get_by_role("button", name="Save review").click()
    expect(page.get_by_text("Review saved (number")).to_be_visible(timeout=WAIT_MS)

    for file_format, signature in (("PNG", b"\x89PNG"), ("PDF", b"%PDF")):
        with page.expect_download(timeout=WAIT_MS) as download:
            page.get_by_role("button", name=f"Download report ({file_format})").click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        assert saved.read_bytes().startswith(signature) and saved.stat().st_size > 10_000
    text = subprocess.run(["pdftotext", "-layout", str(saved), "-"], capture_output=True, text=True, check=True).stdout
    words = " ".join(text.split())
    assert "This scan does not look like the images this model was trained on" in words
    assert words.index("not meaningful here") < words.index("Findings (not meaningful for this scan)")
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(saved), str(ARTIFACTS / "report-unlike")], check=True)

    page.get_by_role("link", name="History").click()
    expect(page.get_by_text("Review history")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("1 of 1 reviews")).to_be_visible(timeout=WAIT_MS)
    with page.expect_download(timeout=WAIT_MS) as download:
        page.get_by_role("button", name="Export these reviews as CSV").click()
    exported = (tmp_path / "export.csv").resolve()
    download.value.save_as(exported)
    (row,) = list(csv.DictReader(exported.open()))
    assert row["reviewer"] == "Dr Browser" and row["note"] == "Checked in a real browser."
    assert row["unlike_training_data"] == "yes" and float(row["unlikeness"]) > float(row["unlikeness_limit"])
    page.screenshot(path=ARTIFACTS / "history.png", full_page=True)


def test_the_form_starts_unanswered_and_a_contradiction_is_pointed_out(page):
    upload_and_wait_for_overlay(page, ROOT / "assets" / "samples" / "synthetic-nodule.png")
    expect(page.get_by_text("Findings above threshold: Pulmonary nodule")).to_be_visible()
    assert page.locator("[class*=st-key-your-review-] input[type=radio]:checked").count() == 0
    page.get_by_role("textbox", name="Reviewer").fill("Dr Careful")
    page.get_by_role("textbox", name="Reviewer").press("Enter")
    page.get_by_role("button", name="Save review").click()
    expect(page.get_by_text("Give a verdict on every finding")).to_be_visible(timeout=WAIT_MS)
    answer(page, "Pulmonary nodule", "Agree")  # the model says present...
    answer(page, "Pleural effusion", "Agree")
    answer(page, "Cardiomegaly", "Agree")
    page.get_by_role("button", name="Save review").click()  # ...but the reading leaves it out
    expect(page.get_by_text("Your reading contradicts your verdict on: Pulmonary nodule")).to_be_visible(
        timeout=WAIT_MS
    )
    page.screenshot(path=ARTIFACTS / "review-contradiction.png", full_page=True)
    page.get_by_role("button", name="Save it as it is").click()
    expect(page.get_by_text("Review saved (number")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("Your reading contradicts")).to_have_count(0)


def test_strings_from_a_file_render_as_literal_text(page, ct_file, tmp_path):
    """Attributes and file names carrying HTML, Markdown links and bare addresses show as those characters:
    no markup, no formatting, no link."""
    hostile = "<img src=x onerror=alert(1)> [click](javascript:alert(1)) **bold**"
    addresses = "http://evil.example/a www.evil.example mailto:x@evil.example"
    path = tmp_path / "[scan](javascript:alert(2)).dcm"
    path.write_bytes(dicom_with(ct_file, Manufacturer=hostile, BodyPartExamined=addresses))
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    upload_and_wait_for_overlay(page, path)
    page.get_by_text("Scan details (de-identified)").click()
    expect(page.get_by_text(f"Manufacturer: {hostile}")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text(f"Body part: {addresses}")).to_be_visible()
    assert page.locator("a[href*='evil'], a[href^='mailto']").count() == 0
    unreadable = tmp_path / "www.evil.example mailto:y@evil.example.txt"
    unreadable.write_text("not a scan")
    page.locator("[data-testid=stSidebar] input[type=file]").set_input_files([path, unreadable])
    expect(page.get_by_text("This file cannot be shown.")).to_be_visible(timeout=WAIT_MS)
    page.screenshot(path=ARTIFACTS / "literal-text.png", full_page=True)
    page.get_by_role("link", name="Worklist").click()
    expect(page.get_by_text(unreadable.name)).to_be_visible(timeout=WAIT_MS)
    page.screenshot(path=ARTIFACTS / "literal-text-worklist.png", full_page=True)
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("a[href^='javascript'], a[href*='evil'], a[href^='mailto']").count() == 0
    assert dialogs == []


def test_two_sessions_never_see_each_others_scans(browser, app_url):
    first, second = new_page(browser, app_url), new_page(browser, app_url)
    upload_and_wait_for_overlay(first, ROOT / "assets" / "samples" / "synthetic-effusion.png")
    second.reload()
    expect(second.get_by_text("Upload a scan or open a sample case to begin.")).to_be_visible(timeout=WAIT_MS)
    second.get_by_role("link", name="Worklist").click()
    expect(second.get_by_text("Add scans to score them as one batch.")).to_be_visible(timeout=WAIT_MS)
    assert second.get_by_text("synthetic-effusion.png").count() == 0


@pytest.mark.parametrize("path", ["", "/model"])
def test_twelve_sessions_opened_at_once_on_a_cold_server_all_render(browser, tmp_path, path):
    """Each session runs on its own thread; the first ones import the heavy libraries all at once. A new
    server each time, opened at the Review page and, as tabs reconnecting after a restart do, at a page
    whose script sits in pages/views/, so that even the first request runs app.py and its navigation."""
    with serving_app(tmp_path / "data", tmp_path / "streamlit.log") as url:
        pages = [browser.new_context(viewport={"width": 1000, "height": 800}).new_page() for _ in range(12)]
        for session in pages:
            session.goto(url + path, wait_until="commit")
        for number, session in enumerate(pages):
            expect(session.get_by_text("not for diagnosis")).to_be_visible(timeout=WAIT_MS)
            heading = "Model card" if path else "Attention review"
            expect(session.get_by_role("heading", name=heading)).to_be_visible(timeout=WAIT_MS)
            assert session.locator("[data-testid=stException]").count() == 0, number
            # app.py's navigation, not Streamlit's older pages/ convention (which listed 'app' and 'shared')
            links = session.locator("[data-testid=stSidebarNav] a")
            titles = ["Review", "Worklist", "Model", "History", "Reader study"]  # each after its icon's name
            expect(links).to_have_text([re.compile(f"{title}$") for title in titles], timeout=WAIT_MS)
        log = (tmp_path / "streamlit.log").read_text()
        assert "Traceback" not in log and "partially initialized" not in log, log[-3000:]
        assert REAPER_UNAVAILABLE not in log  # a Streamlit upgrade moved what the session reaper reaches into
        assert "missing ScriptRunContext" not in log  # the decoder workers do not run app.py's layout


def test_memory_is_handed_back_when_sessions_end(browser, tmp_path, monkeypatch):
    """Four sessions each open a different 2k radiograph and leave; once they expire, the server is back
    near where it stood before them (the libraries and the model stay loaded)."""
    ttl_s, reap_interval_s = 2, 2
    monkeypatch.setenv("STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL", str(ttl_s))
    monkeypatch.setenv("MEDATTN_REAP_INTERVAL_S", str(reap_interval_s))
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")  # as the README's run command
    radiographs = sorted(PYDICOM_DATA_FILES.glob("RG[13]_*.dcm"))[:4]

    def visit(url: str, path: Path) -> None:
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        page = context.new_page()
        page.goto(url)
        expect(page.get_by_text("not for diagnosis")).to_be_visible(timeout=WAIT_MS)
        page.locator("[data-testid=stSidebar] input[type=file]").set_input_files([path])
        answer = page.get_by_text("Attention overlay —").or_(
            page.get_by_text("probabilities and heatmaps are withheld")
        )
        expect(answer).to_be_visible(timeout=WAIT_MS)
        context.close()

    with serving_app(tmp_path / "data", tmp_path / "streamlit.log") as url:
        pid = server_pid(url)
        visit(url, ROOT / "assets" / "samples" / "synthetic-nodule.png")  # libraries, model, decoders loaded
        time.sleep(ttl_s + 2 * reap_interval_s)
        idle = rss_mb(pid)
        for path in radiographs:
            visit(url, path)
        busy = rss_mb(pid)
        time.sleep(ttl_s + 2 * reap_interval_s)  # the sessions expire and are let go, their memory handed back
        after = rss_mb(pid)
    print(f"server RSS: idle {idle:.0f} MB, after four 2k radiographs {busy:.0f} MB, once they ended {after:.0f} MB")
    # Measured: 50-65 MB above idle; 110-160 MB before ended sessions were reaped and their memory trimmed.
    assert after - idle < 90, (idle, busy, after)


def test_closing_an_upload_closes_its_scan_and_changing_page_does_not(page):
    samples = ROOT / "assets" / "samples"
    upload_and_wait_for_overlay(page, samples / "synthetic-nodule.png")
    page.get_by_role("link", name="History").click()
    expect(page.get_by_text("Review history")).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("link", name="Review").click()
    expect(page.get_by_text("Attention overlay — Pulmonary nodule")).to_be_visible(timeout=WAIT_MS)  # still open
    page.locator("[data-testid=stSidebar] input[type=file]").set_input_files([samples / "synthetic-effusion.png"])
    expect(page.get_by_text("Attention overlay — Pleural effusion")).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("button", name="Remove synthetic-effusion.png").click()  # close the effusion upload
    expect(page.get_by_text("Attention overlay — Pulmonary nodule")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("Attention overlay — Pleural effusion")).to_have_count(0)
    page.screenshot(path=ARTIFACTS / "review-upload-closed.png", full_page=True)


def choose(page: Page, label: str, option: str, tries: int = 4) -> None:
    """Pick ``option`` in the select box ``label``. A rerun closes an open list, and one can start just after the
    page looked settled (a CI run lost the list that way), so the list is opened again until the option is taken."""
    for attempt in range(tries):
        settle(page)
        page.get_by_role("combobox", name=label).click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
            return
        except PlaywrightTimeoutError:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")


def test_a_scans_reading_state_survives_a_visit_to_another_page(page, cr_jpeg2000_file):
    """Window, "show anyway", the finding shown and the draft review were gone after History and back: the reader
    started again. The note is typed and the page left at once, with no Enter and no click elsewhere first."""
    page.locator("[data-testid=stSidebar] input[type=file]").set_input_files([cr_jpeg2000_file])
    page.get_by_text("Show the model's output anyway").click(timeout=WAIT_MS)
    expect(page.get_by_text("Attention overlay —")).to_be_visible(timeout=WAIT_MS)
    choose(page, "Window", "Soft tissue")
    choose(page, "Heatmap for finding", "Cardiomegaly")
    expect(page.get_by_text("Attention overlay — Cardiomegaly")).to_be_visible(timeout=WAIT_MS)
    verdicts = {"Pulmonary nodule": "Disagree", "Pleural effusion": "Unsure", "Cardiomegaly": "Agree"}
    for finding, verdict in verdicts.items():  # in a quick run, as a reader clicks
        answer(page, finding, verdict)
    page.get_by_role("textbox", name="Note").fill("Heart size at the upper limit.")
    # Pressed for 50 ms, as a hand clicks: the note is sent as it loses focus. A click of 0 ms (only a script's)
    # lets Streamlit send the page change before the note, whose rerun then keeps Review on screen.
    page.get_by_role("link", name="History").click(delay=50)
    expect(page.get_by_text("Review history")).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("link", name="Review").click()
    expect(page.get_by_text("Attention overlay — Cardiomegaly")).to_be_visible(timeout=WAIT_MS)  # revealed, shown
    expect(page.get_by_role("combobox", name="Window")).to_have_value("Soft tissue")
    expect(page.get_by_role("switch", name="Show the model's output anyway")).to_be_checked()
    expect(page.get_by_role("textbox", name="Note")).to_have_value("Heart size at the upper limit.")
    for finding, verdict in verdicts.items():
        radio = page.locator("[class*=st-key-your-review-] [data-testid=stRadio]").filter(has_text=finding)
        expect(radio.get_by_role("radio", name=verdict, exact=True)).to_be_checked()


@pytest.mark.parametrize("viewport", [(1440, 900), (1280, 720)])
def test_every_page_fits_its_tables_and_draws_no_stray_rule(browser, tmp_path, viewport):
    """The Model page's quality and robustness tables cut their last columns at 1280 px, and an empty Worklist
    heading drew a horizontal rule. Every page is saved as a screenshot for a reader to look at. A server of its
    own: the module's holds the files and reviews of the tests before."""
    width, height = viewport
    with serving_app(tmp_path / "data", tmp_path / "app.log") as app_url:
        every_page_fits(browser, app_url, width, height)


def every_page_fits(browser, app_url: str, width: int, height: int) -> None:
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.goto(app_url)
    expect(page.get_by_text("not for diagnosis")).to_be_visible(timeout=WAIT_MS)
    upload_and_wait_for_overlay(page, ROOT / "assets" / "samples" / "synthetic-nodule-effusion.png")
    page.get_by_role("textbox", name="Reviewer").fill("Dr Layout")  # a review, so that History lists one
    page.get_by_role("textbox", name="Reviewer").press("Enter")
    for finding in ("Pulmonary nodule", "Pleural effusion", "Cardiomegaly"):
        answer(page, finding, "Unsure")
    page.get_by_role("textbox", name="Note").fill("A long note, as readers write them, " * 6)
    page.get_by_role("button", name="Save review").click()
    expect(page.get_by_text("Review saved (number")).to_be_visible(timeout=WAIT_MS)
    for name in ("review", "model", "worklist", "history", "study"):
        if name != "review":
            page.goto(f"{app_url}/{name}")
            expect(page.get_by_text("not for diagnosis")).to_be_visible(timeout=WAIT_MS)
        if name == "worklist":
            page.get_by_role("button", name="Add the sample cases").click()
            expect(page.get_by_text("Scored 10 of 10")).to_be_visible(timeout=WAIT_MS)
        expect(page.locator("[data-testid=stStatusWidget]")).to_have_count(0, timeout=WAIT_MS)
        page.wait_for_timeout(1500)  # data grids and charts draw after the script has finished
        page.screenshot(path=ARTIFACTS / f"page-{name}-{width}x{height}.png")
        overflowing = page.evaluate(
            """() => Array.from(document.querySelectorAll(
                     '[data-testid=stMain] [data-testid=stTable], '
                     + '[data-testid=stMain] [data-testid=stDataFrame] .dvn-scroller'))
                 .filter(t => t.scrollWidth > t.clientWidth + 1)
                 .map(t => t.closest('[data-testid]').getAttribute('data-testid'))"""
        )
        assert overflowing == [], (name, overflowing)
        assert page.locator("[data-testid=stMain] [data-testid=stMarkdown] hr").count() == 0, name
