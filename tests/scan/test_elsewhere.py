"""load_scan in worker processes gives what load_scan gives, and the workers never outlive their parent."""

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from medattn import ScanError, load_scan
from medattn.scan.elsewhere import DecoderPool
from tests.conftest import PYDICOM_DATA_FILES, PYDICOM_FILES, all_frames

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pool():
    workers = DecoderPool(2)
    yield workers
    workers.shutdown()


SAMPLES = [
    PYDICOM_DATA_FILES / "RG1_J2KR.dcm",
    PYDICOM_FILES / "CT_small.dcm",
    ROOT / "assets" / "samples" / "synthetic-nodule.png",
    PYDICOM_DATA_FILES / "emri_small_jpeg_ls_lossless.dcm",  # 10 frames: loaded here, frame by frame
    PYDICOM_FILES / "SC_rgb_gdcm_KY.dcm",  # colour
    PYDICOM_FILES / "rtdose.dcm",  # 15 frames of doses, not whole numbers: no narrower type holds them
]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.name)
def test_a_scan_decoded_elsewhere_is_the_scan_decoded_here(pool, path):
    """The frames cross from the workers in the narrowest type that holds them exactly, and arrive as float32."""
    here, there = load_scan(path), pool.load_scan(path.read_bytes())
    assert all_frames(there).dtype == all_frames(here).dtype == np.float32
    np.testing.assert_array_equal(all_frames(there), all_frames(here))
    for name in ("frame_count", "is_colour", "photometric", "modality", "default_window", "meta", "instance_uid"):
        assert getattr(there, name) == getattr(here, name), name


def test_every_frame_of_a_multi_frame_file_is_decoded_in_a_worker_never_here():
    """A hostile later frame once grew the server by 6 GB: frames after the first were decoded in its process."""
    pool = DecoderPool(1)
    scan = pool.load_scan((PYDICOM_DATA_FILES / "emri_small_jpeg_ls_lossless.dcm").read_bytes())
    assert scan.frame(3).shape == (64, 64)
    pool.shutdown()
    assert scan.frame(3).shape == (64, 64)  # the frame last shown is kept
    with pytest.raises(ScanError, match="decoders have been shut down"):
        scan.frame(4)  # no worker left: nothing here decodes it


def test_a_file_that_cannot_be_shown_says_why_from_the_worker_too(pool):
    with pytest.raises(ScanError, match="not a DICOM, PNG, JPEG, TIFF or BMP image"):
        pool.load_scan(b"not a scan")
    assert pool.load_scan((PYDICOM_FILES / "CT_small.dcm").read_bytes()).modality == "CT"


def cpu_seconds(pid: int) -> float:
    """The process's user and system time so far (Linux's /proc/PID/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kill_once_busy(pid: int, busy_seconds: float = 0.05) -> None:
    """SIGKILL ``pid`` once it has spent ``busy_seconds`` of CPU, as a decoder crash would: mid-decode on a machine
    of any speed. A fixed delay of 0.2 s was passed by a quiet machine's whole decode, and nothing was killed."""
    start = cpu_seconds(pid)
    while cpu_seconds(pid) - start < busy_seconds:
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)


def test_a_worker_that_dies_in_a_decode_costs_that_file_a_message_and_the_next_file_nothing(monkeypatch):
    monkeypatch.setenv("OPJ_NUM_THREADS", "1")
    pool = DecoderPool(1)
    try:
        (worker,) = pool.pids()
        content = (PYDICOM_DATA_FILES / "RG1_J2KR.dcm").read_bytes()  # 0.5 s of JPEG 2000 on one core
        threading.Thread(target=kill_once_busy, args=(worker,), daemon=True).start()
        with pytest.raises(ScanError, match="The decoder stopped while reading this file"):
            pool.load_scan(content)
        assert pool.load_scan((PYDICOM_FILES / "CT_small.dcm").read_bytes()).modality == "CT"
        (idle,) = pool.pids()
        os.kill(idle, signal.SIGKILL)  # dead while idle: Pebble calls its pool broken; a fresh one takes over
        time.sleep(0.5)
        assert pool.load_scan((PYDICOM_FILES / "CT_small.dcm").read_bytes()).modality == "CT"
    finally:
        pool.shutdown()


def test_a_file_past_a_workers_deadline_or_memory_gets_a_message_and_the_worker_is_replaced(monkeypatch):
    """The bounds that hold for a hostile file the guards do not know yet: here, real files under tight bounds."""
    content = (PYDICOM_DATA_FILES / "RG1_J2KR.dcm").read_bytes()
    monkeypatch.setenv("OPJ_NUM_THREADS", "1")  # 0.5 s of decoding, on any machine's cores
    hurried = DecoderPool(1, seconds=0.2)
    try:
        with pytest.raises(ScanError, match=r"took longer than 0\.2 s, so it was stopped"):
            hurried.load_scan(content)
        assert hurried.load_scan((PYDICOM_FILES / "CT_small.dcm").read_bytes()).modality == "CT"
    finally:
        hurried.shutdown()
    frugal = DecoderPool(1, memory_bytes=2**30)  # 1 GB beyond its libraries
    try:
        from PIL import Image

        buffer = io.BytesIO()
        Image.new("RGB", (9000, 9000), (10, 20, 30)).save(buffer, format="PNG")  # 243 M values, 1 GB as float32
        with pytest.raises(ScanError, match="needed more memory than a decoder may use"):
            frugal.load_scan(buffer.getvalue(), max_values=10**9)  # past the size limit, as a hostile file is
        assert frugal.load_scan(content).frame(0).shape == (1955, 1841)
    finally:
        frugal.shutdown()


WORKER_PARENT = "from medattn.scan.elsewhere import DecoderPool; import time; DecoderPool(2); print('up', flush=True)"


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


@pytest.mark.slow
def test_workers_leave_when_their_parent_is_killed(tmp_path):
    command = [sys.executable, "-c", WORKER_PARENT + "; time.sleep(60)"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "up"
    children = [int(pid) for pid in Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()]
    assert len(children) >= 2
    os.kill(parent.pid, signal.SIGKILL)  # no chance to shut its pool down
    parent.wait()
    deadline = time.monotonic() + 10
    while any(alive(child) for child in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [child for child in children if alive(child)]
