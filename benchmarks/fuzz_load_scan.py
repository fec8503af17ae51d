"""Coverage-guided fuzzing of load_scan with atheris (libFuzzer), one codec family at a time, under a memory cap.

Run:  python benchmarks/fuzz_load_scan.py FAMILY -max_total_time=1800
FAMILY is one of jpegls, j2k, tiff, apng, nested, rest (DICOM uncompressed, RLE, JPEG, PNG) or all.

Only ScanError may escape load_scan. The process runs under a 2 GB address-space cap (as the app's decoder
workers run under theirs), and libFuzzer is told that an input taking over 10 s or 1.2 GB of resident memory
is a failure (-timeout=10 -rss_limit_mb=1200, set here unless given). Every failing input is written to
tests/scan/fuzz_regressions/ (crash-*, timeout-*, oom-*), where tests/scan/test_fuzz.py replays it on every
run once it is committed. The seed corpus is real files from pydicom and pydicom-data, and small TIFF, APNG
and nested-sequence files made here, copied into a temporary folder that libFuzzer then grows.
Hypothesis runs a bounded version of this in the test suite (tests/scan/test_fuzz.py).
"""

from __future__ import annotations

import io
import resource
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path

import atheris
import pydicom
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["medattn"]):
    from medattn import ScanError, load_scan

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
PYDICOM_DATA = Path(find_spec("data_store").origin).parent / "data"
REGRESSIONS = ROOT / "tests" / "scan" / "fuzz_regressions"
MEMORY_CAP = 2 * 2**30
# Small limits keep each input fast; the limit checks themselves are part of what is fuzzed.
MAX_VALUES = 4_000_000


def _tiff() -> bytes:
    buffer = io.BytesIO()
    pages = [Image.new("I;16", (24, 16), value) for value in (0, 900, 60000)]
    pages[0].save(buffer, format="TIFF", save_all=True, append_images=pages[1:], compression="tiff_adobe_deflate")
    return buffer.getvalue()


def _apng() -> bytes:
    buffer = io.BytesIO()
    frames = [Image.new("RGB", (24, 16), (value, 0, 255 - value)) for value in (0, 120, 240)]
    frames[0].save(buffer, format="PNG", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def _nested() -> bytes:
    ds = pydicom.dcmread(PYDICOM_FILES / "CT_small.dcm")
    inner = pydicom.Dataset()
    for _ in range(6):
        outer = pydicom.Dataset()
        outer.ReferencedImageSequence = [inner]
        inner = outer
    ds.ReferencedImageSequence = [inner]
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


FAMILIES = {
    "jpegls": lambda: [
        (PYDICOM_DATA / "emri_small_jpeg_ls_lossless.dcm").read_bytes(),
        (PYDICOM_FILES / "MR_small_jpeg_ls_lossless.dcm").read_bytes(),
        (PYDICOM_FILES / "JPEGLSNearLossless_16.dcm").read_bytes(),
    ],
    "j2k": lambda: [
        (PYDICOM_FILES / "JPEG2000.dcm").read_bytes(),
        (PYDICOM_FILES / "MR_small_jp2klossless.dcm").read_bytes(),
    ],
    "tiff": lambda: [_tiff()],
    "apng": lambda: [_apng()],
    "nested": lambda: [_nested()],
    "rest": lambda: [
        *(
            (PYDICOM_FILES / name).read_bytes()
            for name in ("CT_small.dcm", "MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm", "rtplan.dcm")
        ),
        *(path.read_bytes() for path in sorted((ROOT / "assets" / "samples").glob("*.png"))[:1]),
    ],
}


def test_one_input(data: bytes) -> None:
    try:  # a later frame decodes when it is asked for: its ScanError is as good an answer as the first's
        scan = load_scan(data, max_values=MAX_VALUES)
        scan.display(scan.frame_count - 1)
    except ScanError:
        return


def main() -> None:
    family, options = sys.argv[1] if len(sys.argv) > 1 else "all", sys.argv[2:]
    if family not in (*FAMILIES, "all"):
        sys.exit(f"error: the family is one of {', '.join(FAMILIES)} or all, not {family!r}")
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    corpus = Path(tempfile.mkdtemp(prefix=f"medattn-fuzz-{family}-"))
    for name in FAMILIES if family == "all" else [family]:
        for number, seed in enumerate(FAMILIES[name]()):
            (corpus / f"{name}-{number}").write_bytes(seed)
    REGRESSIONS.mkdir(exist_ok=True)
    defaults = {"-timeout": "10", "-rss_limit_mb": "1200", "-max_len": "300000", "-artifact_prefix": f"{REGRESSIONS}/"}
    given = {option.split("=")[0] for option in options}
    options += [f"{flag}={value}" for flag, value in defaults.items() if flag not in given]
    atheris.Setup([sys.argv[0], *options, str(corpus)], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
