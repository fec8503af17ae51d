"""The reading viewer (Cornerstone3D in pages/viewer) driven in Chromium as a reader drives it, on real files."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from medattn import load_scan
from medattn.assets import all_samples
from medattn.scan.frames import exact_values
from tests.app.browser_support import (
    ARTIFACTS,
    VIEWER,
    WAIT_MS,
    in_viewer,
    on_page,
    require_chromium,
    serving_app,
    settle,
    wait_for_viewer,
)
from tests.conftest import PYDICOM_DATA_FILES

require_chromium()

from playwright.sync_api import Page, expect  # noqa: E402

from tests.app.test_browser import choose  # noqa: E402

pytestmark = pytest.mark.slow  # every test here serves the app and drives a real browser

CT = all_samples()["real CT, JPEG 2000"]  # 512 x 512, 16-bit, Pixel Spacing 0.478516 mm


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    directory = tmp_path_factory.mktemp("viewer")
    with serving_app(directory / "data", directory / "streamlit.log") as url:
        yield url


def open_in_viewer(browser, app_url: str, path, size=(1440, 900), sent: list | None = None) -> Page:
    """A fresh page at ``size`` with ``path`` uploaded and drawn; what the page sends its server is appended to
    ``sent``."""
    page = browser.new_context(viewport={"width": size[0], "height": size[1]}).new_page()
    if sent is not None:
        page.on("websocket", lambda socket: socket.on("framesent", lambda payload: sent.append(payload)))
    page.goto(app_url)
    expect(page.get_by_text("not for diagnosis")).to_be_visible(timeout=WAIT_MS)
    page.locator("[data-testid=stSidebar] input[type=file]").set_input_files([path])
    wait_for_viewer(page)
    settle(page)
    return page


def held_values(page: Page) -> dict:
    """The shown image's dimensions, array type and the SHA-256 of its values, as the viewer holds them."""
    return in_viewer(
        page,
        """async () => {
            const { dimensions, scalarData } = window.medattn.viewport.getImageData();
            const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', scalarData));
            return { dimensions, type: scalarData.constructor.name,
                     sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('') };
        }""",
    )


def sha256_of(values: np.ndarray) -> str:
    return hashlib.sha256(values.astype(values.dtype.newbyteorder("<")).tobytes()).hexdigest()


def window_shown(page: Page) -> str:
    return page.frame_locator(VIEWER).locator("#window").inner_text()


@pytest.mark.parametrize(
    ("path", "window", "stored_as"),
    [
        (PYDICOM_DATA_FILES / "RG1_J2KR.dcm", "Lung", "Uint16Array"),  # 1841 x 1955, MONOCHROME1: inverted
        (CT, "File default", "Int16Array"),  # MONOCHROME2, negative values
    ],
)
def test_the_viewer_holds_every_stored_value_and_draws_them_as_the_app_renders_them(
    browser, app_url, path, window, stored_as
):
    """Lossless at full resolution: the stored values, bit for bit, drawn through the window the page chose
    as the app draws it for its reports. Every scan was once drawn inverted (a reversed grey ramp)."""
    page = open_in_viewer(browser, app_url, path)
    scan = load_scan(path)
    if window != "File default":
        choose(page, "Window", window)
        expect(page.frame_locator(VIEWER).locator("#window")).to_contain_text(
            f"W {round(scan.window_presets(0)[window][1])}", timeout=WAIT_MS
        )
    held = held_values(page)
    expected = exact_values(scan.frame(0))
    assert held["dimensions"][:2] == [expected.shape[1], expected.shape[0]] and held["type"] == stored_as
    assert held["sha256"] == sha256_of(expected)

    # What the canvas shows, sampled where each screen pixel falls well inside one scan pixel, against the app's
    # own rendering in the same window (MONOCHROME1: inverted). Nearest-neighbour sampling, so each screen pixel
    # shows one scan pixel's grey.
    samples = in_viewer(
        page,
        """async () => {
            const viewport = window.medattn.viewport;
            viewport.setProperties({ interpolationType: 0 });
            viewport.render();
            await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
            const canvas = viewport.getCanvas();
            const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            const { imageData, dimensions } = viewport.getImageData();
            const ratio = window.devicePixelRatio, found = [];
            for (let y = 1; y < canvas.height; y += 5) {
                for (let x = 1; x < canvas.width; x += 5) {
                    const at = imageData.worldToIndex(viewport.canvasToWorld([(x + 0.5) / ratio, (y + 0.5) / ratio]));
                    const [column, row] = [Math.round(at[0]), Math.round(at[1])];
                    const inside = Math.abs(at[0] - column) < 0.3 && Math.abs(at[1] - row) < 0.3;
                    if (inside && column >= 0 && row >= 0 && column < dimensions[0] && row < dimensions[1]) {
                        found.push([column, row, pixels[(y * canvas.width + x) * 4]]);
                    }
                }
            }
            return found;
        }""",
    )
    columns, rows, grey = np.asarray(samples).T
    rendered = scan.display(0, scan.window_presets(0)[window])
    difference = np.abs(grey.astype(int) - rendered[rows, columns].astype(int))
    assert len(grey) > 2_000 and np.unique(grey).size > 50  # a real spread of greys, not a blank canvas
    assert (difference <= 1).mean() > 0.99, np.percentile(difference, [50, 99, 100])


def test_windowing_and_zoom_happen_in_the_browser_alone_and_are_kept_across_pages(browser, app_url, cr_jpeg2000_file):
    sent: list = []
    page = open_in_viewer(browser, app_url, cr_jpeg2000_file, sent=sent)
    before, messages = window_shown(page), len(sent)
    x, y = on_page(page, 920, 900)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 120, y - 60, steps=12)  # the window narrows and the level falls
    page.mouse.up()
    page.wait_for_timeout(500)
    windowed = window_shown(page)
    assert windowed != before and len(sent) == messages  # windowed, and nothing asked of the server: no rerun
    page.mouse.move(x, y)
    page.mouse.down(button="right")
    page.mouse.move(x, y - 80, steps=8)  # zoomed in
    page.mouse.up(button="right")
    page.wait_for_timeout(500)
    after = window_shown(page)
    assert after.split("Zoom")[1] != windowed.split("Zoom")[1] and len(sent) == messages
    page.screenshot(path=ARTIFACTS / "viewer-windowed.png")

    page.get_by_role("link", name="History").click()
    expect(page.get_by_text("Review history")).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("link", name="Review").click()
    wait_for_viewer(page)
    expect(page.frame_locator(VIEWER).locator("#window")).to_have_text(after)  # the reader's window and zoom, kept


def test_at_1280_by_720_the_whole_radiograph_is_on_screen(browser, app_url, cr_jpeg2000_file):
    page = open_in_viewer(browser, app_url, cr_jpeg2000_file, size=(1280, 720))
    page.screenshot(path=ARTIFACTS / "viewer-1280x720.png")
    for column, row in ((-0.5, -0.5), (1840.5, 1954.5)):  # the image's outer corners
        x, y = on_page(page, column, row)
        assert 0 <= x <= 1280 and 0 <= y <= 720, (column, row, x, y)


def test_the_readout_gives_the_stored_value_in_hu_and_a_length_is_measured_in_mm(browser, app_url):
    page = open_in_viewer(browser, app_url, CT)
    scan = load_scan(CT)
    page.mouse.move(*on_page(page, 256, 300))
    readout = page.frame_locator(VIEWER).locator("#readout")
    expect(readout).to_contain_text("HU")
    # A screen pixel covers more than one scan pixel at this zoom: the readout names the pixel it read.
    column, row, value = (
        int(n) for n in re.fullmatch(r"x (\d+)\s+y (\d+)\s+(-?\d+) HU", readout.inner_text()).groups()
    )
    assert abs(column - 256) <= 1 and abs(row - 300) <= 1
    assert value == round(float(scan.frame(0)[row, column]))  # the stored value (rescaled: HU), not a grey

    page.frame_locator(VIEWER).get_by_role("button", name="Length").click()
    start, end = on_page(page, 100, 200), on_page(page, 400, 200)  # 300 pixels of 0.478516 mm: 143.55 mm
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=10)
    page.mouse.up()
    label = page.frame_locator(VIEWER).locator("svg text").filter(has_text="mm")
    expect(label).to_have_count(1, timeout=WAIT_MS)
    for _ in range(50):  # the label follows the drag a frame behind: read it until it has caught up
        length = float(re.search(r"([\d.]+) mm", label.text_content()).group(1))
        if abs(length - 300 * 0.478516) < 1.0:
            break
        page.wait_for_timeout(100)
    assert abs(length - 300 * 0.478516) < 1.0, length
    page.screenshot(path=ARTIFACTS / "viewer-length.png")


def overlay_alpha(page: Page) -> int:
    """The most opaque pixel of the overlay the viewer draws: 0 when none is drawn."""
    return in_viewer(
        page,
        """() => {
            const canvas = document.getElementById('overlay');
            const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let most = 0;
            for (let i = 3; i < pixels.length; i += 4) most = Math.max(most, pixels[i]);
            return most;
        }""",
    )


def test_the_overlay_is_switched_by_key_and_button_and_drawn_at_the_chosen_opacity(browser, app_url):
    page = open_in_viewer(browser, app_url, all_samples()["synthetic nodule"])
    expect(page.get_by_text("Attention overlay — Pulmonary nodule")).to_be_visible(timeout=WAIT_MS)
    assert overlay_alpha(page) == round(0.45 * 255)
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("o")  # the page has the focus, not the viewer: the key still reaches it
    expect(page.frame_locator(VIEWER).get_by_role("button", name="Overlay")).to_have_attribute("aria-pressed", "false")
    assert overlay_alpha(page) == 0
    page.frame_locator(VIEWER).get_by_role("button", name="Overlay").click()
    assert overlay_alpha(page) == round(0.45 * 255)
    slider = page.frame_locator(VIEWER).get_by_role("slider", name="Overlay opacity")
    slider.focus()
    page.keyboard.press("ArrowRight")  # 0.45 -> 0.50, drawn by the viewer without the page
    assert overlay_alpha(page) == round(0.5 * 255)
    page.keyboard.press("o")  # in the slider, a key is the slider's: not the overlay switch
    assert overlay_alpha(page) == round(0.5 * 255)
    heard = page.frame_locator(VIEWER).locator("body")
    expect(heard).to_have_attribute("data-page-opacity", "0.5", timeout=WAIT_MS)  # then told to the page
    slider.focus()
    for _ in range(3):  # quicker than the page's runs: the last value is the one kept, on screen and by the page
        page.keyboard.press("ArrowRight")
    expect(heard).to_have_attribute("data-page-opacity", "0.65", timeout=WAIT_MS)
    page.wait_for_timeout(500)
    assert slider.input_value() == "0.65" and overlay_alpha(page) == round(0.65 * 255)
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    expect(heard).to_have_attribute("data-page-opacity", "0.5", timeout=WAIT_MS)
    page.screenshot(path=ARTIFACTS / "viewer-overlay.png")
    page.get_by_role("link", name="History").click()  # and kept, as the page's other view settings are
    expect(page.get_by_text("Review history")).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("link", name="Review").click()
    wait_for_viewer(page)
    expect(slider).to_have_value("0.5", timeout=WAIT_MS)
    for _ in range(50):
        if overlay_alpha(page) == round(0.5 * 255):
            break
        page.wait_for_timeout(100)
    assert overlay_alpha(page) == round(0.5 * 255)


def test_n_opens_the_next_case_even_while_the_viewer_has_the_focus(browser, app_url):
    samples = all_samples()
    page = open_in_viewer(browser, app_url, samples["synthetic nodule"])
    page.locator("[data-testid=stSidebar] input[type=file]").set_input_files(
        [samples["synthetic nodule"], samples["synthetic effusion"]]
    )
    expect(page.get_by_text("Attention overlay — Pleural effusion")).to_be_visible(timeout=WAIT_MS)
    settle(page)
    page.keyboard.press("Shift+N")  # the page has the focus: back to the nodule
    expect(page.get_by_text("Attention overlay — Pulmonary nodule")).to_be_visible(timeout=WAIT_MS)
    settle(page)
    # Back to a scan the viewer had shown: Cornerstone refused to add its images again, and the effusion's
    # pixels stayed under the nodule's findings.
    nodule = sha256_of(exact_values(load_scan(samples["synthetic nodule"]).frame(0)))
    for _ in range(50):
        if held_values(page)["sha256"] == nodule:
            break
        page.wait_for_timeout(100)
    assert held_values(page)["sha256"] == nodule
    page.frame_locator(VIEWER).locator("#viewport").click()  # now the viewer has it
    page.keyboard.press("n")
    expect(page.get_by_text("Attention overlay — Pleural effusion")).to_be_visible(timeout=WAIT_MS)


def test_the_wheel_scrolls_through_the_frames_in_the_browser_and_the_map_stays_on_its_own_frame(browser, app_url):
    """pydicom-data's 10-frame MR: every frame reaches the viewer, so scrolling asks nothing of the server."""
    sent: list = []
    mr = all_samples()["real MR, 10 frames, JPEG-LS"]
    page = open_in_viewer(browser, app_url, mr, sent=sent)
    scan = load_scan(mr)
    page.get_by_text("Show the model's output anyway").click()
    overlay = page.frame_locator(VIEWER).locator("#overlay")
    expect(overlay).not_to_have_attribute("data-drawn", "", timeout=WAIT_MS)  # the map of frame 1, on frame 1
    settle(page)
    window = page.frame_locator(VIEWER).locator("#window")
    expect(window).to_contain_text("Frame 1/10")
    messages = len(sent)
    page.mouse.move(*on_page(page, 32, 32))
    for _ in range(3):
        page.mouse.wheel(0, 120)  # one frame on per notch
        page.wait_for_timeout(150)
    expect(window).to_contain_text("Frame 4/10")
    expect(overlay).to_have_attribute("data-drawn", "")  # not frame 4's map: none is drawn there
    page.mouse.move(*on_page(page, 30, 34))
    readout = page.frame_locator(VIEWER).locator("#readout")
    expect(readout).to_contain_text("x ")
    column, row, value = (int(n) for n in re.fullmatch(r"x (\d+)\s+y (\d+)\s+(-?\d+)", readout.inner_text()).groups())
    assert value == round(float(scan.frame(3)[row, column]))  # frame 4's stored value...
    assert value != round(float(scan.frame(0)[row, column]))  # ...which differs from frame 1's there
    assert len(sent) == messages  # scrolled in the browser alone
