"""Responsiveness of the Review page in the real browser: Debian's chromium against `streamlit run app.py`.

Run: python benchmarks/browser.py [--baseline COMMIT]
Targets (issue 32, 2 cores): from the upload of a 2k JPEG 2000 radiograph (pydicom-data's RG1_J2KR) to the scan
drawn in the reading viewer <= 1.0 s, and no slower than the page before: --baseline serves that commit from a
temporary git worktree, its uploads alternated with this checkout's in the same run. Windowing, zooming and
panning in the viewer at >= 30 frames/s on the same scan, and scrolling through the frames of pydicom's 30-frame
ultrasound (no real 2k radiograph has several frames), with no message to the server: frame intervals come from
requestAnimationFrame in the viewer, beside the interval of an idle page (the display's own cadence, the bound).
Also (issue 33) an opacity change in the viewer -> the redrawn overlay <= 150 ms, and when the page has heard it.
The upload is set beside the bare decode, measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import sync_playwright

from medattn import load_scan
from medattn.runtime import decode_on_every_core
from tests.app.browser_support import ROOT, VIEWER, launch_chromium, on_page, serving_app, wait_for_viewer
from tests.conftest import PYDICOM_DATA_FILES, PYDICOM_FILES

RADIOGRAPH = PYDICOM_DATA_FILES / "RG1_J2KR.dcm"  # 1955 x 1841 CR, JPEG 2000 lossless
STACK = PYDICOM_FILES / "examples_ybr_color.dcm"  # 30 frames of 240 x 320 US, JPEG baseline
UPLOADS, OPACITY_CHANGES, DRAG_MOVES, WHEEL_NOTCHES = 5, 10, 90, 58  # 58: to the last frame and back
# The first answer: the scan on screen (in the viewer, or as the image of a page before it) with its output
# withheld, as the default model does for this real radiograph.
ANSWERED = """() => {
    const frame = document.querySelector('iframe[title*=medattn_viewer]');
    const drawn = frame && frame.contentDocument
        && (frame.contentDocument.getElementById('window') || {}).textContent?.includes('Zoom');
    const img = document.querySelector('[data-testid=stMain] [data-testid=stImage] img');
    return (drawn || (img && img.complete && img.naturalWidth > 0))
        && document.body.innerText.includes('probabilities and heatmaps are withheld');
}"""
PAGE_HEARD = """opacity => {
    const frame = document.querySelector('iframe[title*=medattn_viewer]');
    return Number(frame?.contentDocument?.body.dataset.pageOpacity) === Number(opacity);
}"""
OVERLAY_DRAWN = """before => {
    const frame = document.querySelector('iframe[title*=medattn_viewer]');
    const drawn = frame?.contentDocument?.getElementById('overlay')?.dataset.drawn;
    return drawn && drawn !== before;
}"""
RECORD_FRAMES = """() => {
    window.frameIntervals = [];
    let last = null;
    const tick = (now) => {
        if (last !== null) window.frameIntervals.push(now - last);
        last = now;
        if (window.recording) requestAnimationFrame(tick);
    };
    window.recording = true;
    requestAnimationFrame(tick);
}"""


def first_answer(browser, url: str) -> float:
    """Seconds from choosing the file to the first answer on screen, in a fresh session."""
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    page.goto(url)
    page.get_by_text("not for diagnosis").wait_for(timeout=90_000)
    page.wait_for_load_state("networkidle")  # as a reader picks a file: the page and its viewer loaded
    started = time.perf_counter()
    page.locator("[data-testid=stSidebar] input[type=file]").set_input_files(RADIOGRAPH)
    page.wait_for_function(ANSWERED, polling="raf", timeout=90_000)
    answered = time.perf_counter() - started
    page.context.close()
    return answered


def frame_intervals(page, interaction) -> list[float]:
    """Milliseconds between the viewer's animation frames while ``interaction`` runs (None: the page idle)."""
    frame = page.frame_locator(VIEWER).locator("body")
    frame.evaluate(RECORD_FRAMES)
    if interaction:
        interaction(page)
    else:
        page.wait_for_timeout(1500)
    frame.evaluate("() => { window.recording = false; }")
    return frame.evaluate("() => window.frameIntervals")


def dragging(button: str, dx: float, dy: float):
    """A drag with ``button`` from the scan's middle, in DRAG_MOVES steps of about one display frame each."""

    def drag(page) -> None:
        x, y = on_page(page, 920, 977)
        page.mouse.move(x, y)
        page.mouse.down(button=button)
        for step in range(1, DRAG_MOVES + 1):
            page.mouse.move(x + dx * step / DRAG_MOVES, y + dy * step / DRAG_MOVES)
            page.wait_for_timeout(16)
        page.mouse.up(button=button)

    return drag


def scrolling(page) -> None:
    """The wheel, a notch about every display frame: on through the stack and back."""
    page.mouse.move(*on_page(page, 160, 120))
    for notch in range(WHEEL_NOTCHES):
        page.mouse.wheel(0, 120 if notch < WHEEL_NOTCHES // 2 else -120)
        page.wait_for_timeout(16)


def opened(browser, url: str, path: Path, sent: list):
    """A fresh session with ``path`` uploaded and drawn in the viewer; what it sends the server goes to ``sent``."""
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    page.on("websocket", lambda socket: socket.on("framesent", lambda payload: sent.append(payload)))
    page.goto(url)
    page.get_by_text("not for diagnosis").wait_for(timeout=90_000)
    page.locator("[data-testid=stSidebar] input[type=file]").set_input_files(path)
    wait_for_viewer(page)
    page.wait_for_timeout(1000)
    return page


def viewer_figures(browser, url: str) -> tuple[dict, list, list, int]:
    """Frame intervals per interaction, the reveal and opacity timings (the overlay redrawn in the viewer, and the
    page told, which its reports follow), and the messages sent to the server during the interactions."""
    sent: list = []
    stack = opened(browser, url, STACK, sent)
    before = len(sent)
    intervals = {"stack scroll (wheel, 30-frame US)": frame_intervals(stack, scrolling)}
    during = len(sent) - before
    stack.context.close()

    page = opened(browser, url, RADIOGRAPH, sent)
    before = len(sent)
    intervals = {
        "idle page (the display's cadence)": frame_intervals(page, None),
        "window drag": frame_intervals(page, dragging("left", -200, -120)),
        "zoom (right drag)": frame_intervals(page, dragging("right", 0, -150)),
        "pan (middle drag)": frame_intervals(page, dragging("middle", 150, 80)),
    } | intervals
    during += len(sent) - before

    reveal, opacity, heard = [], [], []
    started = time.perf_counter()
    page.get_by_text("Show the model's output anyway").click()
    page.wait_for_function(OVERLAY_DRAWN, arg="", polling="raf", timeout=90_000)
    reveal.append(time.perf_counter() - started)
    slider = page.frame_locator(VIEWER).get_by_role("slider", name="Overlay opacity")
    overlay = page.frame_locator(VIEWER).locator("#overlay")
    for _ in range(OPACITY_CHANGES):  # 0.45 to 0.95: each a value not shown before
        drawn = overlay.get_attribute("data-drawn")
        slider.focus()
        started = time.perf_counter()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(OVERLAY_DRAWN, arg=drawn, polling="raf", timeout=30_000)
        opacity.append(time.perf_counter() - started)
        chosen = slider.input_value()  # then the page hears it, for its reports: one rerun
        page.wait_for_function(PAGE_HEARD, arg=chosen, polling="raf", timeout=30_000)
        heard.append(time.perf_counter() - started)
    page.context.close()
    return intervals, reveal, opacity, heard, during


def bare_decode() -> float:
    """Seconds to decode the radiograph in this process, on every core as the app's decoders do."""
    decode_on_every_core()
    started = time.perf_counter()
    load_scan(RADIOGRAPH).frame(0)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="a commit whose page is timed alongside, alternated")
    parser.add_argument("--uploads", type=int, default=UPLOADS, help=f"uploads per server (default {UPLOADS})")
    arguments = parser.parse_args()
    baseline, uploads_each = arguments.baseline, arguments.uploads
    uploads: dict[str, list[float]] = {"this checkout": []}
    with ExitStack() as stack, sync_playwright() as playwright:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        servers = {"this checkout": stack.enter_context(serving_app(scratch / "data", scratch / "log"))}
        if baseline:
            tree = scratch / "baseline"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), baseline], check=True)
            stack.callback(subprocess.run, ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)])
            name = f"the page at {baseline[:10]}"
            uploads[name] = []
            servers[name] = stack.enter_context(serving_app(scratch / "data-b", scratch / "log-b", root=tree))
        browser = launch_chromium(playwright)
        for attempt in range(uploads_each + 1):  # the first warms each server's model and decoders: not counted
            for name, url in servers.items():  # alternated: these machines are noisy
                answered = first_answer(browser, url)
                if attempt:
                    uploads[name].append(answered)
        intervals, reveal, opacity, heard, sent = viewer_figures(browser, servers["this checkout"])
        browser.close()

    decode_ms = statistics.median(bare_decode() for _ in range(3)) * 1000
    here_ms = statistics.median(uploads["this checkout"]) * 1000
    print(f"{'upload RG1_J2KR -> scan on screen':<44}{'median ms':>10}{'target':>9}{'x bare decode':>15}{'x here':>8}")
    for name, samples in uploads.items():
        median = statistics.median(samples) * 1000
        print(f"  {name:<42}{median:>10.0f}{'1000':>9}{median / decode_ms:>15.2f}{median / here_ms:>8.2f}")
    print(f"  {'bare decode, in process':<42}{decode_ms:>10.0f}")
    idle = statistics.median(intervals["idle page (the display's cadence)"])
    print(f"\n{'viewer, 2k CR':<36}{'frames':>7}{'median ms':>10}{'p90 ms':>8}{'frames/s':>9}{'x idle':>8}")
    for name, samples in intervals.items():
        ordered = sorted(samples)
        median, p90 = statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]
        print(f"  {name:<34}{len(samples):>7}{median:>10.1f}{p90:>8.1f}{1000 / median:>9.1f}{median / idle:>8.2f}")
    print(f"  messages to the server during the drags and the scrolling: {sent} (target 0)")
    print(f"\n{'reveal and opacity':<44}{'median ms':>10}{'target':>9}")
    print(f"  {'show anyway -> overlay drawn':<42}{statistics.median(reveal) * 1000:>10.0f}")
    print(f"  {'opacity change -> overlay redrawn':<42}{statistics.median(opacity) * 1000:>10.0f}{'150':>9}")
    print(f"  {'opacity change -> the page has heard it':<42}{statistics.median(heard) * 1000:>10.0f}")
    print(f"{uploads_each} uploads per server, alternated; {DRAG_MOVES} moves per drag, one per ~16 ms")


if __name__ == "__main__":
    main()
