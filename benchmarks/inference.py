"""Inference latency at batch 1: the bare forward pass against the whole Predictor.predict path.

Run: python benchmarks/inference.py
Both are measured in the same run, interleaved, so the ratio holds on a noisy machine.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medattn import Predictor
from medattn.benchmark import generate_case

REPEATS = 200


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    torch.set_num_threads(2)
    predictor = Predictor.default()
    size = predictor.preprocessing.input_size
    small = generate_case(0, 0, size).image
    large = (generate_case(0, 0, 2048).image * 4095).astype(np.uint16)  # a 2k x 2k 12-bit radiograph
    tensor, _ = predictor.prepare(small)

    timings: dict[str, list[float]] = {"forward": [], f"predict {size}px": [], "predict 2048px": []}
    for _ in range(REPEATS):
        start = time.perf_counter()
        with torch.inference_mode():
            predictor.model(tensor)
        timings["forward"].append(time.perf_counter() - start)
        start = time.perf_counter()
        predictor.predict(small)
        timings[f"predict {size}px"].append(time.perf_counter() - start)
        start = time.perf_counter()
        predictor.predict(large)
        timings["predict 2048px"].append(time.perf_counter() - start)

    base = median_ms(timings["forward"])
    print(f"{'path':<18}{'median ms':>10}{'p90 ms':>9}{'x forward':>11}")
    for name, samples in timings.items():
        p90 = np.percentile(samples, 90) * 1000
        print(f"{name:<18}{median_ms(samples):>10.2f}{p90:>9.2f}{median_ms(samples) / base:>11.2f}")
    print(f"threads={torch.get_num_threads()} repeats={REPEATS} torch={torch.__version__}")


if __name__ == "__main__":
    main()
