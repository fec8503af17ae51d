"""Hostile files through the app, with the server's memory watched: the cases that once cost the server process
itself gigabytes, or other sessions their answers, now cost it nothing and get a message."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.app.browser_support import (
    ARTIFACTS,
    ROOT,
    WAIT_MS,
    PeakMemory,
    require_chromium,
    rss_mb,
    server_pid,
    serving_app,
)
from tests.scan.test_guards import crafted, tiff_of_pages

require_chromium()

from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.slow


def hostile_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """The issue's files, made here from real ones: each passed the guards of its day."""
    palette = io.BytesIO()
    Image.new("P", (7071, 7071)).save(palette, format="PNG")  # 7071² held as RGB: the server peaked at 2.55 GB
    contents = {  # file name -> (content, what its message says)
        # frame 2 of 10 of a real JPEG-LS MR with a height of 0: one press on → grew the server to 6.9 GB
        "mr-frame-2-of-height-0.dcm": (
            crafted("emri_small_jpeg_ls_lossless.dcm", b"\xff\xf7", 5, b"\0\0", frame=2),
            "a frame of 64×0 pixels",
        ),
        # 3.7 kB of JPEG 2000 declaring 1,024 components: 5 GB to decode
        "j2k-1024-components.dcm": (
            crafted("JPEG2000.dcm", b"\xff\x4f\xff\x51", 40, b"\x04\x00"),
            "1024 components",
        ),
        "palette-7071.png": (palette.getvalue(), "7071×7071 pixels × 3 samples"),
        # 133 s to open, 61 s of it server CPU, decoded twice
        "tiff-20000-pages.tif": (tiff_of_pages(20_000), "holds more than 1,000 pages or frames"),
    }
    folder.mkdir()
    for name, (content, _) in contents.items():
        (folder / name).write_bytes(content)
    return {name: (folder / name, message) for name, (_, message) in contents.items()}


def study_folder(tmp_path: Path, files: dict[str, tuple[Path, str]]) -> Path:
    """A labelled folder (one sub-folder per finding) whose cases are the hostile files and one real normal."""
    folder = tmp_path / "study"
    for finding, names in {"nodule": ["j2k-1024-components.dcm"], "normal": ["palette-7071.png"]}.items():
        (folder / finding).mkdir(parents=True)
        for name in names:
            (folder / finding / name).write_bytes(files[name][0].read_bytes())
    (folder / "normal" / "real.png").write_bytes((ROOT / "assets" / "samples" / "synthetic-normal.png").read_bytes())
    return folder


def open_page(browser, url: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(url)
    expect(page.get_by_text("not for diagnosis")).to_be_visible(timeout=WAIT_MS)
    return page


def test_hostile_files_cost_the_server_nothing_and_another_session_is_answered_meanwhile(browser, tmp_path):
    files = hostile_files(tmp_path / "hostile")
    with serving_app(tmp_path / "data", tmp_path / "streamlit.log") as url:
        pid = server_pid(url)
        other = open_page(browser, url)
        other.locator("[data-testid=stSidebar] input[type=file]").set_input_files(
            [ROOT / "assets" / "samples" / "synthetic-normal.png"]
        )  # libraries, model and decoders loaded before the baseline
        expect(other.get_by_text("Attention overlay —")).to_be_visible(timeout=WAIT_MS)
        idle = rss_mb(pid)
        attacker = open_page(browser, url)
        uploader = attacker.locator("[data-testid=stSidebar] input[type=file]")
        with PeakMemory(pid, interval_s=0.02) as server:
            for name, (path, message) in files.items():
                uploader.set_input_files([path])
                expect(attacker.get_by_text(message)).to_be_visible(timeout=WAIT_MS)
                expect(attacker.get_by_text("This file cannot be shown.")).to_be_visible()
                assert "Traceback" not in attacker.content(), name
                attacker.screenshot(path=ARTIFACTS / f"hostile-{name}.png")
            # The study folder's files were decoded in the server process: a folder holding the JPEG 2000 took it
            # from 518 MB to 5.5 GB before its message.
            attacker.get_by_role("link", name="Reader study").click()
            attacker.get_by_text("Set up a study", exact=True).click()
            attacker.get_by_text("A labelled folder", exact=True).click()
            attacker.get_by_label("Study name").fill("Hostile folder")
            attacker.locator("[data-testid=stForm] input[type=file]").set_input_files(study_folder(tmp_path, files))
            started = time.monotonic()
            attacker.get_by_role("button", name="Create the study").click()
            # Meanwhile another session is answered, as quickly as a loaded server answers.
            other.locator("[data-testid=stSidebar] input[type=file]").set_input_files(
                [ROOT / "assets" / "samples" / "synthetic-nodule.png"]
            )
            expect(other.get_by_text("Attention overlay — Pulmonary nodule")).to_be_visible(timeout=WAIT_MS)
            answered_s = time.monotonic() - started
            refusal = attacker.locator("[data-testid=stAlertContentError]").filter(has_text="1024 components")
            expect(refusal).to_be_visible(timeout=WAIT_MS)  # the folder's hostile case, named by its message
            assert "Study created" not in attacker.content()
            attacker.screenshot(path=ARTIFACTS / "hostile-study-folder.png", full_page=True)
        print(f"server RSS: {idle:.0f} MB idle, {server.peak_mb:.0f} MB at its peak; other session answered in "
              f"{answered_s:.1f} s")  # fmt: skip
    assert server.peak_mb - idle < 300, (idle, server.peak_mb)  # each of these once cost it 1.8 to 6.9 GB
