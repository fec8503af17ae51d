"""Cluster scoring against local scoring, in one run: throughput on 1 and 2 Ray workers.

Run: python benchmarks/cluster.py [--repeats 2] [--small 1000] [--radiographs 32]
Needs: pip install -r requirements-cluster.txt, and root (the cluster runs in a loopback-only network namespace,
as in the tests). Starts a local Ray cluster (``ray start --head``, 2 CPUs, token authentication with a token of
its own), then times, interleaved in each repeat, on two archives:
- small: synthetic 128 px 16-bit PNGs (the model dominates: decoding takes under 1 ms a file);
- radiographs: copies of pydicom-data's 1955 x 1841 JPEG 2000 chest CR (decoding dominates: about 0.4 s).
Each is scored by ``python -m medattn score`` locally (2 decoding workers, the default), and on the
cluster with 1 and with 2 model actors. Whole runs, from the command to the last row written: start-up
(processes, the model, Ray's actors) included, as a user waits for it. Prints medians and ratios to local.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import PYDICOM_DATA_FILES, RayCluster, running_ray_cluster  # noqa: E402
from tests.test_batch import write_cases  # noqa: E402


def timed(cluster: RayCluster, command: list[str], data: Path) -> float:
    """A whole run, in the cluster's network (local runs too, so that every way runs alike)."""
    environment = {**os.environ, **cluster.environment, "PYTHONPATH": str(ROOT), "MEDATTN_DATA_DIR": str(data)}
    started = time.perf_counter()
    subprocess.run(cluster.namespace.command(command), cwd=ROOT, env=environment, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--radiographs", type=int, default=32)
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    archives = {"one file": scratch / "one", "small": scratch / "small", "radiographs": scratch / "radiographs"}
    write_cases(archives["one file"], 1, size=128)  # a run's fixed cost: start-up, the model, Ray's actors
    write_cases(archives["small"], options.small, size=128)
    archives["radiographs"].mkdir()
    for index in range(options.radiographs):
        shutil.copy(PYDICOM_DATA_FILES / "RG1_J2KR.dcm", archives["radiographs"] / f"cr-{index:03d}.dcm")
    with running_ray_cluster(scratch) as cluster:
        ways = {
            "local (2 decoding workers)": [],
            "cluster, 1 actor": ["--cluster", cluster.address, "--actors", "1"],
            "cluster, 2 actors": ["--cluster", cluster.address, "--actors", "2"],
        }
        seconds = {(archive, way): [] for archive in archives for way in ways}
        for repeat in range(options.repeats):
            for archive, folder in archives.items():
                for number, (way, flags) in enumerate(ways.items()):
                    out = scratch / f"out-{repeat}-{archive}-{number}"  # a fresh output: nothing to resume
                    out = out.with_suffix(".parquet") if not flags else out
                    command = [sys.executable, "-m", "medattn", "score", str(folder), "--out", str(out), *flags]
                    seconds[archive, way].append(timed(cluster, command, scratch / "data"))
    counts = {"one file": 1, "small": options.small, "radiographs": options.radiographs}
    median = {key: statistics.median(values) for key, values in seconds.items()}
    print(f"Whole runs, medians of {options.repeats} interleaved repeats, on {os.cpu_count()} cores.")
    print("'After start-up': the files beyond the first over the seconds beyond a one-file run's.\n")
    header = f"{'archive':<26}{'way':<28}{'seconds':>9}{'files/s':>9}{'vs local':>10}"
    print(header + f"{'after start-up':>16}{'vs local':>10}")
    for archive in archives:
        local = "local (2 decoding workers)"
        for way in ways:
            rate = counts[archive] / median[archive, way]
            label = f"{archive} ({counts[archive]})"
            line = f"{label:<26}{way:<28}{median[archive, way]:>9.1f}{rate:>9.1f}"
            line += f"{median[archive, local] / median[archive, way]:>9.2f}x"
            if counts[archive] > 1:
                marginal = (counts[archive] - 1) / max(median[archive, way] - median["one file", way], 1e-9)
                local_marginal = (counts[archive] - 1) / max(median[archive, local] - median["one file", local], 1e-9)
                line += f"{marginal:>16.1f}{marginal / local_marginal:>9.2f}x"
            print(line)
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
