import io
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from medattn import Scan, ScanError, load_scan
from medattn.scan.cine import cine_loop
from tests.conftest import PYDICOM_DATA_FILES


def test_a_cine_loop_holds_every_frame_and_costs_one_decoded_frame_of_memory():
    scan = load_scan(PYDICOM_DATA_FILES / "emri_small_jpeg_ls_lossless.dcm")  # 10 frames of 64 x 64 MR
    tracemalloc.start()
    try:
        loop = cine_loop(scan, frames_per_second=5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    movie = Image.open(io.BytesIO(loop))
    assert movie.format == "WEBP" and movie.is_animated and movie.info["loop"] == 0
    durations, shown = 0, []
    for index in range(movie.n_frames):  # identical neighbours may be merged: count time, not frames
        movie.seek(index)
        movie.load()  # the frame's duration is known once it is decoded
        durations += movie.info["duration"]
        shown.append(movie.convert("L").resize((64, 64)))
    assert durations == 10 * 200 and movie.size == (64, 64)
    first, last = (scan.display(i).astype(int) for i in (0, 9))
    assert abs(int(shown[0].getpixel((32, 32))) - first[32, 32]) < 40  # lossy, but the same picture
    assert abs(int(shown[-1].getpixel((32, 32))) - last[32, 32]) < 40
    assert peak < 8 * 2**20


def test_a_loop_that_would_decode_too_much_is_refused_after_one_frame():
    """50 frames of 7000 x 7000 from a 17.6 kB file took 42 s of decoding for one press of 'Play'."""
    decoded = []

    def decode(index: int) -> np.ndarray:
        decoded.append(index)
        return np.zeros((2000, 2000), np.float32)

    scan = Scan(101, False, "MONOCHROME2", "OT", (0.0, 1.0), decode)  # 404 million values in all
    with pytest.raises(ScanError, match="above the 400 million a loop may take"):
        cine_loop(scan)
    assert decoded == [0]
    scan = Scan(99, False, "MONOCHROME2", "OT", (0.0, 1.0), lambda index: np.zeros((8, 8), np.float32))
    assert Image.open(io.BytesIO(cine_loop(scan))).n_frames >= 1  # many small frames play
