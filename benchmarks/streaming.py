"""Does training's memory stay flat as the set of files grows, and what does reading them per epoch cost?

Run: python benchmarks/streaming.py [--size PX] [FILES ...]   (default: 512 px; 200 and 800 files)
Benchmark cases are written as 16-bit PNG files of PX x PX, a folder of class sub-folders as a user would
bring them, and a small network is trained on them for two epochs at an input of PX, each run in a process
of its own so that its peak resident memory is its own. Three ways, alternated: files read batch by batch as
training reaches them (medattn.training.inputs; with no worker and with one), and the same files first read
into memory, so that their inputs are prepared once and held, as training did before. Prints each run's peak
memory, seconds and training images a second (both epochs), and the peak's growth per 100 files. The peak is
the training process's own: a worker holds a batch at a time beside its own copy of torch, and is not counted
(a spawned child's ru_maxrss starts from its parent's at the fork, so it cannot be read that way).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

EPOCHS = 2
WAYS = ("streamed, no worker", "streamed, 1 worker", "read into memory first")


def write_cases(root: Path, count: int, size: int) -> None:
    from medattn.benchmark import generate_case

    for index in range(count):
        case = generate_case(7, index, size)
        folder = root / ("nodule" if case.labels[0] else "clear")
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:04d}.png"), np.round(case.image * 65535).astype(np.uint16))


def run_one(folder: str, way: str, size: int) -> None:
    """In a process of its own: train, then print the peak memory (MB) and the seconds."""
    from medattn.model.network import ModelConfig
    from medattn.training.datasets import open_dataset
    from medattn.training.train import TrainConfig, train

    train_set, val_set = open_dataset(folder, "train"), open_dataset(folder, "val")
    if way == WAYS[2]:
        train_set.images, val_set.images = list(train_set.images), list(val_set.images)
    config = ModelConfig(("clear", "nodule"), input_size=size, widths=(4, 8, 8, 8))
    started = time.perf_counter()
    train(TrainConfig(epochs=EPOCHS, batch_size=32), train_set, val_set, config, workers=int(way == WAYS[1]))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mb": peak, "seconds": seconds, "images": len(train_set) * EPOCHS}))


def main(size: int, counts: list[int]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        figures: dict[tuple[int, str], dict] = {}
        for count in counts:
            folder = Path(scratch) / str(count)
            write_cases(folder, count, size)
            for way in WAYS:  # alternated within each size
                done = subprocess.run(
                    [sys.executable, __file__, "--one", str(folder), way, str(size)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                figures[count, way] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{EPOCHS} epochs at {size} px, files of {size} x {size} px, 70% of them training")
    print(f"{'files':>6} {'way':<24}{'peak MB':>9}{'seconds':>9}{'images/s':>10}")
    for (count, way), figure in figures.items():
        rate = figure["images"] / figure["seconds"]
        print(f"{count:>6} {way:<24}{figure['peak_mb']:>9.0f}{figure['seconds']:>9.1f}{rate:>10.1f}")
    if len(counts) > 1:
        low, high = min(counts), max(counts)
        for way in WAYS:
            growth = (figures[high, way]["peak_mb"] - figures[low, way]["peak_mb"]) / (high - low) * 100
            print(f"peak growth per 100 files, {way}: {growth:.1f} MB")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:  # one run, in its own process (below)
        run_one(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        arguments.add_argument("--size", type=int, default=512)
        arguments.add_argument("files", type=int, nargs="*", default=[200, 800])
        args = arguments.parse_args()
        main(args.size, args.files)
