"""Coverage-guided fuzzing of load_scan with atheris (libFuzzer), seeded with real DICOM and PNG files.

Run: python benchmarks/fuzz_load_scan.py -runs=20000 -max_len=300000
Only ScanError may escape load_scan; anything else is a crash, and libFuzzer writes the input to
crash-* in the current folder. The seed corpus is real files from pydicom, pydicom-data and the
sample cases, copied into a temporary folder that libFuzzer then grows.
Hypothesis runs a bounded version of this in the test suite (tests/test_io_fuzz.py).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports(include=["medattn"]):
    from medattn import ScanError, load_scan

import pydicom

SEED_FILES = [
    Path(pydicom.__file__).parent / "data" / "test_files" / name
    for name in ("CT_small.dcm", "MR_small_RLE.dcm", "JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm", "rtplan.dcm")
]
SEED_FILES += [Path(find_spec("data_store").origin).parent / "data" / "emri_small_jpeg_ls_lossless.dcm"]
SEED_FILES += sorted((Path(__file__).resolve().parent.parent / "assets" / "samples").glob("*.png"))[:1]
# Small limits keep each input fast; the limit checks themselves are part of what is fuzzed.
MAX_VALUES = 4_000_000


def test_one_input(data: bytes) -> None:
    try:
        scan = load_scan(data, max_values=MAX_VALUES)
    except ScanError:
        return
    scan.display(scan.frame_count - 1)


def main() -> None:
    corpus = Path(tempfile.mkdtemp(prefix="medattn-fuzz-"))
    for path in SEED_FILES:
        shutil.copy(path, corpus / path.name)
    atheris.Setup([*sys.argv, str(corpus)], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
