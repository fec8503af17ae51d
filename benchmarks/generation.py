"""Synthetic benchmark generation rate, single process (target: >= 200 images/s at 128 px on 2 cores).

Run: python benchmarks/generation.py
The baseline, measured in the same run, is drawing one Gaussian-noise image of the same size:
the least any generator that adds noise must spend.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medattn.benchmark import generate_case

COUNT = 600
NOISE = np.random.default_rng(0)


def images_per_second(draw: Callable[[int], object], count: int) -> float:
    start = time.perf_counter()
    for index in range(count):
        draw(index)
    return count / (time.perf_counter() - start)


def main() -> None:
    print(f"{'size':>6}{'images/s':>11}{'noise-only images/s':>22}{'cost x noise':>14}")
    for size in (128, 256, 512):
        count = COUNT * 128 // size

        def noise_image(_: int, size: int = size) -> np.ndarray:
            return NOISE.normal(0, 1, (size, size)).astype(np.float32)

        def case(index: int, size: int = size) -> object:
            return generate_case(0, index, size)

        noise, cases = images_per_second(noise_image, count), images_per_second(case, count)
        print(f"{size:>6}{cases:>11.0f}{noise:>22.0f}{noise / cases:>14.1f}")


if __name__ == "__main__":
    main()
