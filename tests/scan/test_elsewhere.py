"""load_scan in worker processes gives what load_scan gives, and the workers never outlive their parent."""

import os
import signal
import subprocess
import sys
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
]


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.name)
def test_a_scan_decoded_elsewhere_is_the_scan_decoded_here(pool, path):
    here, there = load_scan(path), pool.load_scan(path.read_bytes())
    np.testing.assert_array_equal(all_frames(there), all_frames(here))
    for name in ("frame_count", "is_colour", "photometric", "modality", "default_window", "meta", "instance_uid"):
        assert getattr(there, name) == getattr(here, name), name


def test_a_file_that_cannot_be_shown_says_why_from_the_worker_too(pool):
    with pytest.raises(ScanError, match="not a DICOM, PNG, JPEG, TIFF or BMP image"):
        pool.load_scan(b"not a scan")
    assert pool.load_scan((PYDICOM_FILES / "CT_small.dcm").read_bytes()).modality == "CT"


def test_a_worker_that_dies_costs_one_file_a_message_and_the_next_file_gets_a_fresh_pool():
    pool = DecoderPool(2)
    try:
        os.kill(pool.pids()[0], signal.SIGKILL)  # as a decoder crash would
        content = (PYDICOM_FILES / "CT_small.dcm").read_bytes()
        time.sleep(0.5)
        with pytest.raises(ScanError, match="The decoder stopped while reading this file"):
            pool.load_scan(content)
        assert pool.load_scan(content).modality == "CT"
    finally:
        pool.shutdown()


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
