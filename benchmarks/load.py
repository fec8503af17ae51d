"""Sessions served at once: several clinicians upload different radiographs to one server on 2 cores.

Run: python benchmarks/load.py [sessions] [rounds]
A fresh `streamlit run app.py` serves every round. In each round, that many browser sessions upload one
real 2k radiograph each (pydicom-data's RG1 and RG3 chest and hand CRs, in their four encodings: different
bytes, so nothing is shared through the caches) at the same moment, and the time from each upload to its
first answer on screen is taken. For these real CRs, which the synthetic-trained default model calls
unlike its training data, that answer is the scan with its output withheld: the same decode and model run,
no blend. Then every session shows its overlay anyway and moves its opacity slider at the same moment,
and the time to each redrawn overlay is taken. The server's resident memory is read from /proc before the
round, its peak during it (sampled every 0.1 s), and after the round's sessions have closed and expired; a leak shows as
growth of the "after" figure from round to round. Streamlit keeps a closed session for
server.disconnectedSessionTTL (120 s by default, so that a reconnecting tab finds its work); the benchmark
sets it to 10 s so that a round's sessions are gone before the next round starts.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import sync_playwright

from pages.views.shared import REAP_INTERVAL_S
from tests.app.browser_support import VIEWER, PeakMemory, launch_chromium, rss_mb, server_pid, serving_app
from tests.conftest import PYDICOM_DATA_FILES

FILES = sorted(PYDICOM_DATA_FILES.glob("RG[13]_*.dcm"))  # 8 files: 1955x1841 and 1760x2140 CRs
TIMEOUT_S = 300
SESSION_TTL_S = 10
WITHHELD = "The findings, probabilities and heatmaps are withheld"


def overlay_source(page) -> str | None:
    """The reading viewer's stamp of the overlay it last drew and its opacity (None before any)."""
    return page.frame_locator(VIEWER).locator("#overlay").get_attribute("data-drawn")


def move_sliders(pages: list) -> list[float]:
    """Every session shows its overlay, then moves its opacity slider at the same moment: the seconds
    until each one's overlay is redrawn."""
    for page in pages:
        if page.get_by_text("Show the model's output anyway").count():
            page.get_by_text("Show the model's output anyway").click()
    for page in pages:
        page.get_by_text("Attention overlay —").wait_for(timeout=TIMEOUT_S * 1000)
    before = [overlay_source(page) for page in pages]
    started = {}
    for number, page in enumerate(pages):
        page.frame_locator(VIEWER).get_by_role("slider", name="Overlay opacity").focus()
        started[number] = time.perf_counter()  # the viewer redraws within the key press
        page.keyboard.press("ArrowRight")
    redrawn: dict[int, float] = {}
    deadline = time.perf_counter() + TIMEOUT_S
    while len(redrawn) < len(pages) and time.perf_counter() < deadline:
        for number, page in enumerate(pages):
            if number not in redrawn and overlay_source(page) not in (None, before[number]):
                redrawn[number] = time.perf_counter() - started[number]
        time.sleep(0.05)
    return list(redrawn.values())


def one_round(browser, url: str, pid: int, sessions: int) -> dict:
    before = rss_mb(pid)
    contexts = [browser.new_context(viewport={"width": 1200, "height": 900}) for _ in range(sessions)]
    pages = [context.new_page() for context in contexts]
    for page in pages:
        page.goto(url)
    for page in pages:
        page.get_by_text("Upload a scan").wait_for(timeout=TIMEOUT_S * 1000)
    with PeakMemory(pid, interval_s=0.1) as server:
        started = {}
        for number, page in enumerate(pages):
            page.locator("[data-testid=stSidebar] input[type=file]").set_input_files(FILES[number % len(FILES)])
            started[number] = time.perf_counter()
        done: dict[int, float] = {}
        deadline = time.perf_counter() + TIMEOUT_S
        while len(done) < sessions and time.perf_counter() < deadline:
            for number, page in enumerate(pages):
                answered = page.get_by_text("Attention overlay —").or_(page.get_by_text(WITHHELD))
                if number not in done and answered.count():
                    done[number] = time.perf_counter() - started[number]
            time.sleep(0.1)
        slider = move_sliders(pages) if len(done) == sessions else []
    for context in contexts:
        context.close()
    time.sleep(SESSION_TTL_S + REAP_INTERVAL_S + 5)  # the closed sessions expire and the server lets them go
    seconds = sorted(done.values())
    return {
        "served": len(done),
        "p50": statistics.median(seconds) if seconds else float("nan"),
        "p95": float(np.percentile(seconds, 95)) if seconds else float("nan"),
        "slider p50": statistics.median(slider) if slider else float("nan"),
        "before": before,
        "peak": server.peak_mb,
        "after": rss_mb(pid),
    }


def main() -> None:
    os.environ["STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL"] = str(SESSION_TTL_S)
    sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    with (
        tempfile.TemporaryDirectory() as scratch,
        sync_playwright() as playwright,
        serving_app(Path(scratch) / "data", Path(scratch) / "server.log") as url,
    ):
        pid = server_pid(url)
        browser = launch_chromium(playwright)
        print(f"{sessions} sessions at once, each uploading a different 2k CR; server pid {pid}")
        print(f"{'round':>5}{'served':>8}{'p50 s':>8}{'p95 s':>8}{'slider p50 s':>14}{'RSS before':>12}{'peak':>8}"
              f"{'after':>8}  (MB)")  # fmt: skip
        for number in range(1, rounds + 1):
            row = one_round(browser, url, pid, sessions)
            print(f"{number:>5}{row['served']:>5}/{sessions:<2}{row['p50']:>8.1f}{row['p95']:>8.1f}"
                  f"{row['slider p50']:>14.2f}{row['before']:>12.0f}{row['peak']:>8.0f}"
                  f"{row['after']:>8.0f}")  # fmt: skip
        browser.close()


if __name__ == "__main__":
    main()
