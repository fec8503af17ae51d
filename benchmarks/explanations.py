"""Explanation cost and localisation, per method, on the same images in one run.

Run: python benchmarks/explanations.py
Targets: attention <= 1.1x a plain forward pass (it is a by-product of one); occlusion on a 128 px image
under 0.5 s on 2 cores. Every method's cost is timed on one image at a time, interleaved with the plain
forward pass it is compared with, so the ratio holds on a noisy machine.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medattn import Predictor
from medattn.benchmark import FINDINGS, generate_case
from medattn.explain import EXPLAINERS
from medattn.explain.quality import dilate, mass_inside, pointing_hit
from medattn.model.preprocessing import Preprocessing

SEED, CASES = 4242, 40  # a benchmark seed no training or evaluation run uses
REPEATS = 3


def main() -> None:
    model = Predictor.default().model
    size, cell = model.config.input_size, model.config.input_size // model.config.grid_size
    cases = [generate_case(SEED, i, size) for i in range(CASES)]
    jobs = [
        (torch.from_numpy(Preprocessing(size).prepare(case.image)[0])[None], case, int(c))
        for case in cases
        for c in np.flatnonzero(case.labels)
    ]

    forward_ms = {method: [] for method in EXPLAINERS}
    method_ms = {method: [] for method in EXPLAINERS}
    hits = {method: [] for method in EXPLAINERS}
    masses = {method: [] for method in EXPLAINERS}
    with torch.inference_mode():
        model(jobs[0][0])  # warm-up
    for model_input, case, c in jobs:
        for method, explainer in EXPLAINERS.items():
            for _ in range(REPEATS):  # alternating, so both see the same state of the machine
                started = time.perf_counter()
                with torch.inference_mode():
                    model(model_input)
                forward_ms[method].append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                heat = explainer.maps(model, model_input, c)[0]
                method_ms[method].append((time.perf_counter() - started) * 1000)
            heat = cv2.resize(heat, (size, size), interpolation=cv2.INTER_LINEAR)
            region = dilate(case.masks[c], cell)
            hits[method].append(pointing_hit(heat, region))
            masses[method].append(mass_inside(heat, region))

    print(f"{len(jobs)} (image, finding) pairs from {CASES} cases of {size} px; {torch.get_num_threads()} threads")
    print(f"{'method':<22}{'forward ms':>12}{'method ms':>11}{'x forward':>11}{'pointing':>10}{'mass in mask':>14}")
    for method in EXPLAINERS:
        forward, cost = statistics.median(forward_ms[method]), statistics.median(method_ms[method])
        print(
            f"{method:<22}{forward:>12.2f}{cost:>11.2f}{cost / forward:>11.2f}"
            f"{np.mean(hits[method]):>10.2f}{np.mean(masses[method]):>14.2f}"
        )
    counts = [f"{name} {sum(int(case.labels[i]) for case in cases)}" for i, name in enumerate(FINDINGS)]
    print("findings:", ", ".join(counts))


if __name__ == "__main__":
    main()
