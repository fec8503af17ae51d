"""A real app server and Debian's chromium, for the browser tests and the browser benchmark."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
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
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("MEDATTN_ARTIFACTS", ROOT / "test-artifacts"))  # the browser tests' screenshots
WAIT_MS = 90_000


def require_chromium() -> None:
    """Skip the calling test module where Debian's chromium is missing; in CI, fail instead."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message, allow_module_level=True)


def server_pid(url: str) -> int:
    """The process id of the ``streamlit run`` serving ``url``."""
    port = url.rsplit(":", 1)[1].encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(command) and port in command:
            return int(proc.name)
    raise RuntimeError(f"no streamlit server at {url}")


def rss_mb(pid: int) -> float:
    """The process's resident memory, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PeakMemory:
    """The highest resident memory (MB) a process reaches while in the ``with`` block, sampled every
    ``interval_s``."""

    def __init__(self, pid: int, interval_s: float):
        self.pid, self.interval_s, self.peak_mb, self._done = pid, interval_s, rss_mb(pid), threading.Event()

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(self.interval_s):
            self.peak_mb = max(self.peak_mb, rss_mb(self.pid))

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def settle(page) -> None:
    """Wait until the page's run has finished: nothing left from the run before (Streamlit marks such elements
    stale), and no running indicator. A click on a widget of a run still going can be lost."""
    from playwright.sync_api import expect  # only the browser tests have Playwright

    expect(page.locator("[data-stale=true]")).to_have_count(0, timeout=WAIT_MS)
    expect(page.locator("[data-testid^=stStatusWidgetRunning]")).to_have_count(0, timeout=WAIT_MS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving_app(
    data_dir: Path,
    log_path: Path,
    port: int | None = None,
    environment: dict | None = None,
    options: tuple = (),
    root: Path = ROOT,
) -> Iterator[str]:
    """``streamlit run app.py`` on a free port (or ``port``) with its own review store; its output goes to
    ``log_path``. ``environment`` is added to the server's; ``options`` to its command line; ``root`` is the
    checkout served (another commit's, for a benchmark's baseline)."""
    port = port or free_port()
    env = {**os.environ, "MEDATTN_DATA_DIR": str(data_dir)}
    env.pop("MEDATTN_DB_URL", None)
    env.update(environment or {})
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true", *options]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command,
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_answered(f"{url}/_stcore/health", server, log_path, seconds=60)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:  # once, in CI, after twelve cold sessions; not reproduced since
                server.kill()
                server.wait()
                with log_path.open("a") as note:
                    note.write("\nthe server did not stop within 20 s of SIGTERM and was killed\n")


def wait_until_answered(url: str, process: subprocess.Popen, log_path: Path, seconds: float) -> None:
    """Wait until ``url`` answers, while the server ``process`` runs; raise with its log if it never does."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{process.args} did not start:\n{log_path.read_text()}") from None
            time.sleep(0.3)


def launch_chromium(playwright, *extra_args: str):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args])


VIEWER = "iframe[title*=medattn_viewer]"  # the reading viewer's frame (pages/viewer)


def wait_for_viewer(page) -> None:
    """Wait until the reading viewer has drawn a scan: it writes the window it shows once it has."""
    from playwright.sync_api import expect

    expect(page.frame_locator(VIEWER).locator("#window")).to_contain_text("Zoom", timeout=WAIT_MS)
    # The viewer fits itself to the space below its top, which moves while the page above it is drawn; a drag
    # begun before it stops lands elsewhere on the scan.
    frame, before = page.locator(VIEWER), None
    deadline = time.monotonic() + WAIT_MS / 1000
    while (box := frame.bounding_box()) != before and time.monotonic() < deadline:
        before = box
        page.wait_for_timeout(500)


def in_viewer(page, script: str, argument=None):
    """Run ``script`` (a function of the viewport element and ``argument``) in the viewer's frame; there,
    ``window.medattn.viewport`` is Cornerstone3D's viewport."""
    return page.frame_locator(VIEWER).locator("#viewport").evaluate(script, argument)


def on_page(page, column: float, row: float) -> tuple[float, float]:
    """Where the centre of the scan's pixel (``column``, ``row``) is on the page, as the viewer shows it now."""
    x, y = in_viewer(
        page,
        """(element, [column, row]) => {
            const viewport = window.medattn.viewport;
            const { imageData } = viewport.getImageData();
            const [x, y] = viewport.worldToCanvas(imageData.indexToWorld([column, row, 0]));
            const box = element.getBoundingClientRect();
            return [box.left + x, box.top + y];
        }""",
        [column, row],
    )
    frame = page.locator(VIEWER).bounding_box()
    return frame["x"] + x, frame["y"] + y
