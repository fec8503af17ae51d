"""Scan ingestion cost: load_scan + display against bare pydicom.dcmread(...).pixel_array on the same files.

Run: python benchmarks/ingestion.py
Targets: our time <= 1.2x the bare decode; our peak memory <= 3x the decoded array. The bare decode's
own peak is printed beside ours: a decoder's working buffers bound what any caller of it can reach.
Both paths are timed interleaved in one run, so the ratio holds on a noisy machine.
"""

from __future__ import annotations

import io
import statistics
import sys
import time
import tracemalloc
from importlib.util import find_spec
from pathlib import Path

import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medattn import load_scan

DATA = Path(find_spec("data_store").origin).parent / "data"  # pydicom-data's real files
FILES = {
    "CR 1955x1841 uncompressed": DATA / "RG1_UNCR.dcm",
    "CR 1955x1841 JPEG 2000": DATA / "RG1_J2KR.dcm",
    "CT 512x512 uncompressed": DATA / "693_UNCR.dcm",
}
REPEATS = 7


def bare(content: bytes):
    return pydicom.dcmread(io.BytesIO(content)).pixel_array


def ours(content: bytes):
    scan = load_scan(content)
    return scan.display()


def seconds(function, content: bytes) -> float:
    start = time.perf_counter()
    function(content)
    return time.perf_counter() - start


def peak_bytes(function, content: bytes) -> int:
    tracemalloc.start()
    function(content)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main() -> None:
    print(
        f"{'file':<28}{'bare ms':>9}{'ours ms':>9}{'time x':>8}{'array MB':>10}"
        f"{'bare peak x':>13}{'our peak MB':>13}{'our peak x':>12}"
    )
    for name, path in FILES.items():
        content = path.read_bytes()
        bare_times, our_times = [], []
        for _ in range(REPEATS):
            bare_times.append(seconds(bare, content))
            our_times.append(seconds(ours, content))
        array_bytes = bare(content).nbytes
        bare_peak, peak = peak_bytes(bare, content), peak_bytes(ours, content)
        bare_ms, our_ms = statistics.median(bare_times) * 1000, statistics.median(our_times) * 1000
        print(
            f"{name:<28}{bare_ms:>9.1f}{our_ms:>9.1f}{our_ms / bare_ms:>8.2f}{array_bytes / 2**20:>10.1f}"
            f"{bare_peak / array_bytes:>13.2f}{peak / 2**20:>13.1f}{peak / array_bytes:>12.2f}"
        )


if __name__ == "__main__":
    main()
