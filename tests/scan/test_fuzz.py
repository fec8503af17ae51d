"""Property-based: truncated and bit-flipped real files make load_scan raise ScanError or succeed, nothing else."""

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from medattn import ScanError, load_scan
from tests.conftest import PYDICOM_DATA_FILES, PYDICOM_FILES

# Small real files, one per decoder path: uncompressed, deflated, big endian, RLE, JPEG, JPEG-LS, JPEG 2000.
DICOM_SEEDS = [
    PYDICOM_FILES / name
    for name in (
        "CT_small.dcm",
        "image_dfl.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "JPEG-lossy.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
        "SC_rgb_small_odd.dcm",
        "examples_palette.dcm",
    )
] + [PYDICOM_DATA_FILES / "emri_small_RLE.dcm"]


def _png(mode: str) -> bytes:
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


SEEDS = [path.read_bytes() for path in DICOM_SEEDS] + [_png("RGB"), _png("L"), _png("P")]


@st.composite
def mutated(draw) -> bytes:
    content = bytearray(draw(st.sampled_from(SEEDS)))
    if draw(st.booleans()):
        content = content[: draw(st.integers(0, len(content) - 1))]
    for _ in range(draw(st.integers(0, 8))):
        if content:
            position = draw(st.integers(0, len(content) - 1))
            content[position] ^= 1 << draw(st.integers(0, 7))
    return bytes(content)


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_only_scan_error_escapes(content):
    try:
        scan = load_scan(content)
        shown = scan.display(scan.frame_count - 1)  # a later frame is decoded only when it is shown
    except ScanError as error:
        assert str(error)
        return
    assert shown.dtype == np.uint8 and shown.shape[:2] == scan.frame(0).shape[:2]


REGRESSIONS = sorted((Path(__file__).parent / "fuzz_regressions").glob("*-*"))


@pytest.mark.parametrize("path", REGRESSIONS, ids=lambda path: path.name)
def test_every_input_the_fuzzer_failed_on_opens_or_is_refused(path):
    """benchmarks/fuzz_load_scan.py writes each input that crashed, hung or took too much memory into
    fuzz_regressions/; once committed, each one is replayed on every run."""
    try:  # a later frame decodes when it is asked for: its ScanError is as good an answer as the first's
        scan = load_scan(path.read_bytes(), max_values=4_000_000)
        scan.display(scan.frame_count - 1)
    except ScanError:
        return
