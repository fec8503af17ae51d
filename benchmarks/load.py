"""Sessions served at once: several clinicians upload different radiographs to one server on 2 cores.

Run: python benchmarks/load.py [sessions] [rounds] [--alone]
A fresh `streamlit run app.py` serves every round. In each round, that many browser sessions upload one real 2k
radiograph each (pydicom-data's RG1 and RG3 chest and hand CRs, in their four encodings, each with an Image
Comments of its own: bytes no cache has seen, in any round) at the same moment, and the time from each upload to
its first answer on screen is taken. For these real CRs, which the synthetic-trained default model calls unlike its
training data, that answer is the scan with its output withheld: the same decode and model run, no blend. Then
every session shows its overlay anyway and moves the viewer's opacity slider at the same moment, and the time to
each redrawn overlay is taken, and to its page having heard the new opacity (which its reports then use). Each page
times itself, on the browser's clock. The server's resident memory is read from /proc before the round, its peak
during it (sampled every 0.1 s), and after the round's sessions have closed and expired; a leak shows as growth of
the "after" figure from round to round. Streamlit keeps a closed session for server.disconnectedSessionTTL (120 s
by default, so that a reconnecting tab finds its work); the benchmark sets it to 10 s so that a round's sessions
are gone before the next round starts. With --alone, each round first serves one session alone, and the N sessions'
p50 is given as a multiple of its.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import sync_playwright

from pages.views.shared import REAP_INTERVAL_S
from tests.app.browser_support import VIEWER, PeakMemory, launch_chromium, rss_mb, server_pid, serving_app
from tests.conftest import PYDICOM_DATA_FILES

FILES = sorted(PYDICOM_DATA_FILES.glob("RG[13]_*.dcm"))  # 8 files: 1955x1841 and 1760x2140 CRs
TIMEOUT_S = 300
SESSION_TTL_S = 10
WITHHELD = "The findings, probabilities and heatmaps are withheld"
ANSWERED = "Attention overlay —"
UPLOADER = "[data-testid=stSidebar] input[type=file]"


# Each page times itself, on the browser's clock (epoch ms): polling eight pages from here took a few hundred
# ms a round under load, which the figures once included.
TIME_THE_ANSWER = """answers => {
    window.timed = {};
    document.querySelector('UPLOADER')
        .addEventListener('change', (event) => { window.timed.uploaded = performance.timeOrigin + event.timeStamp; });
    new MutationObserver((_, observer) => {
        const captions = document.querySelectorAll('[data-testid=stCaptionContainer]');
        if (window.timed.uploaded && [...captions].some((c) => answers.some((a) => c.textContent.includes(a)))) {
            window.timed.answered = performance.timeOrigin + performance.now();
            observer.disconnect();
        }
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
}""".replace("UPLOADER", UPLOADER)
# In the viewer's frame: when it has drawn a scan (it writes the window it shows once it has).
TIME_THE_DRAW = """() => {
    window.timed = {};
    const shown = document.getElementById('window');
    new MutationObserver((_, observer) => {
        if (!shown.textContent.includes('Zoom')) return;
        window.timed.drawn = performance.timeOrigin + performance.now();
        observer.disconnect();
    }).observe(shown, { childList: true, characterData: true, subtree: true });
}"""
# In the viewer's frame: from the key pressed on the opacity slider (the event's own time stamp, when the browser
# took the key) to the overlay redrawn at the new opacity, and to the page's answer that it heard it.
TIME_THE_OPACITY = """() => {
    window.timed = {};
    const overlay = document.getElementById('overlay');
    document.getElementById('opacity').addEventListener('keydown', (event) => {
        window.timed.pressed = performance.timeOrigin + event.timeStamp;
        const drawn = overlay.dataset.drawn;
        new MutationObserver((_, observer) => {
            if (overlay.dataset.drawn === drawn) return;
            window.timed.redrawn = performance.timeOrigin + performance.now();
            observer.disconnect();
        }).observe(overlay, { attributes: true, attributeFilter: ['data-drawn'] });
        new MutationObserver((_, observer) => {
            if (Number(document.body.dataset.pageOpacity) !== Number(event.target.value)) return;
            window.timed.heard = performance.timeOrigin + performance.now();
            observer.disconnect();
        }).observe(document.body, { attributes: true, attributeFilter: ['data-page-opacity'] });
    }, { once: true });
}"""


def timed(read, keys: tuple[str, ...], count: int) -> list[dict]:
    """Wait for every page's ``window.timed`` (``read(number)``) to hold ``keys``; the times of those that do."""
    held: dict[int, dict] = {}
    deadline = time.perf_counter() + TIMEOUT_S
    while len(held) < count and time.perf_counter() < deadline:
        for number in set(range(count)) - held.keys():
            found = read(number) or {}
            if all(key in found for key in keys):
                held[number] = found
        time.sleep(0.2)
    return list(held.values())


def move_sliders(pages: list) -> tuple[list[float], list[float]]:
    """Every session shows its overlay, then moves its opacity slider at the same moment: the seconds until
    each one's overlay is redrawn, and until its page has heard the new opacity."""
    for page in pages:
        if page.get_by_text("Show the model's output anyway").count():
            page.get_by_text("Show the model's output anyway").click()
    for page in pages:
        page.get_by_text("Attention overlay —").wait_for(timeout=TIMEOUT_S * 1000)
    sliders = [page.frame_locator(VIEWER).get_by_role("slider", name="Overlay opacity") for page in pages]
    for slider in sliders:
        slider.evaluate(TIME_THE_OPACITY)
        slider.focus()
    for page in pages:
        page.keyboard.press("ArrowRight")
    times = timed(lambda n: sliders[n].evaluate("() => window.timed"), ("redrawn", "heard"), len(pages))
    return [(t["redrawn"] - t["pressed"]) / 1000 for t in times], [(t["heard"] - t["pressed"]) / 1000 for t in times]


def never_seen(path: Path, label: str, directory: Path) -> Path:
    """A copy of ``path`` in ``directory`` with ``label`` as its Image Comments: bytes no cache of the server's has
    seen (every cache is keyed by the file's hash), its pixels untouched. A file, not bytes: Playwright sends bytes
    through the browser's protocol, a second a file, and the uploads were spread over 8 s."""
    scan = pydicom.dcmread(path)
    scan.ImageComments = label
    copy = directory / f"{label.replace(' ', '-').replace(',', '')}-{path.name}"
    scan.save_as(copy, enforce_file_format=True)
    return copy


def one_round(browser, url: str, pid: int, sessions: int, label: str, scratch: Path) -> dict:
    files = [never_seen(FILES[n % len(FILES)], f"{label}, session {n}", scratch) for n in range(sessions)]
    before = rss_mb(pid)
    contexts = [browser.new_context(viewport={"width": 1200, "height": 900}) for _ in range(sessions)]
    pages = [context.new_page() for context in contexts]
    for page in pages:
        page.goto(url)
    for page in pages:
        page.get_by_text("Upload a scan").wait_for(timeout=TIMEOUT_S * 1000)
        page.locator(UPLOADER).wait_for(state="attached", timeout=TIMEOUT_S * 1000)
        page.evaluate(TIME_THE_ANSWER, [ANSWERED, WITHHELD])
        page.frame_locator(VIEWER).locator("#window").evaluate(TIME_THE_DRAW)
    with PeakMemory(pid, interval_s=0.1) as server:
        for number, page in enumerate(pages):
            page.locator(UPLOADER).set_input_files(files[number])
        # The first answer: the scan drawn in the viewer, and the page's word beside it (the output withheld).
        answers = timed(
            lambda n: (
                pages[n].evaluate("() => window.timed")
                | pages[n].frame_locator(VIEWER).locator("#window").evaluate("() => window.timed")
            ),
            ("answered", "drawn"),
            sessions,
        )
        slider, heard = move_sliders(pages) if len(answers) == sessions else ([], [])
    for context in contexts:
        context.close()
    time.sleep(SESSION_TTL_S + REAP_INTERVAL_S + 5)  # the closed sessions expire and the server lets them go
    seconds = sorted((max(t["answered"], t["drawn"]) - t["uploaded"]) / 1000 for t in answers)
    return {
        "sessions": sessions,
        "spread": (max(t["uploaded"] for t in answers) - min(t["uploaded"] for t in answers)) / 1000 if answers else 0,
        "served": len(answers),
        "p50": statistics.median(seconds) if seconds else float("nan"),
        "p95": float(np.percentile(seconds, 95)) if seconds else float("nan"),
        "slider p50": statistics.median(slider) if slider else float("nan"),
        "heard p50": statistics.median(heard) if heard else float("nan"),
        "before": before,
        "peak": server.peak_mb,
        "after": rss_mb(pid),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sessions", type=int, nargs="?", default=6)
    parser.add_argument("rounds", type=int, nargs="?", default=3)
    parser.add_argument("--alone", action="store_true", help="each round, one session alone first: the ratio")
    arguments = parser.parse_args()
    os.environ["STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL"] = str(SESSION_TTL_S)
    with (
        tempfile.TemporaryDirectory() as scratch,
        sync_playwright() as playwright,
        serving_app(Path(scratch) / "data", Path(scratch) / "server.log") as url,
    ):
        pid = server_pid(url)
        files = Path(scratch) / "files"
        files.mkdir()
        browser = launch_chromium(playwright)
        sessions = arguments.sessions
        print(f"{sessions} sessions at once, each uploading a different 2k CR; server pid {pid}")
        print(f"{'round':>5}{'served':>8}{'p50 s':>8}{'p95 s':>8}{'x alone':>8}{'redrawn p50 ms':>16}"
              f"{'heard p50 ms':>14}{'RSS before':>12}{'peak':>8}{'after':>8}{'spread s':>9}")  # fmt: skip
        for number in range(1, arguments.rounds + 1):
            alone = one_round(browser, url, pid, 1, f"round {number} alone", files) if arguments.alone else None
            for row in filter(None, (alone, one_round(browser, url, pid, sessions, f"round {number}", files))):
                ratio = f"{row['p50'] / alone['p50']:>8.2f}" if alone else f"{'':>8}"
                print(f"{number:>5}{row['served']:>5}/{row['sessions']:<2}{row['p50']:>8.1f}{row['p95']:>8.1f}{ratio}"
                      f"{row['slider p50'] * 1000:>16.0f}{row['heard p50'] * 1000:>14.0f}{row['before']:>12.0f}"
                      f"{row['peak']:>8.0f}{row['after']:>8.0f}{row['spread']:>9.2f}")  # fmt: skip
        browser.close()


if __name__ == "__main__":
    main()
