"""Does the unlikeness gate withhold what would mislead, or what is merely unusual? Selective prediction's view.

Run: python benchmarks/risk_coverage.py [cases]
For every shift of the robustness table (medattn/training/robustness.py; held-out seed 31337, which no training,
validation or evaluation run uses), each image is called by the default model and marked wrong where any finding's
call (probability against its threshold) differs from the truth. Per shift: the share the gate withholds at the
card's threshold, the error among what it shows and among what it withholds, and the error of the shift as a
whole. Then, per shift family with the clean cases beside it, the risk–coverage curve: the error among the share
of images a gate on the unlikeness score would keep, most familiar first. A gate that withholds what would mislead
keeps nearly everything where the model performs, and its error falls as it withholds more.

A candidate gate can be measured in its place (the app does not use it yet): `--limit D` withholds beyond
distance D instead of the card's limit, and `--noise-limit N` also withholds an image whose relative noise (the
median absolute Laplacian, as a Gaussian noise SD, over the image's 1st-99th percentile range: exposure does not
change it) is above N. `--seed` draws the cases from another seed, to choose limits on one and report on another.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medattn import Predictor
from medattn.benchmark import generate_case
from medattn.training.robustness import ROBUSTNESS_SEED, SHIFTS, risk_at_coverage, shifted_cases, wrong_calls

COVERAGES = (1.0, 0.9, 0.8, 0.6, 0.4, 0.2)


def relative_noise(image: np.ndarray) -> float:
    """The image's noise as a Gaussian SD (the median absolute Laplacian, which a smooth image leaves near 0), over
    its 1st-99th percentile range."""
    laplacian = cv2.Laplacian(image.astype(np.float32), cv2.CV_32F)
    low, high = np.percentile(image, [1, 99])
    return float(np.median(np.abs(laplacian)) / 0.6745 / np.sqrt(20) / max(high - low, 1e-6))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", type=int, nargs="?", default=500)
    parser.add_argument("--limit", type=float, help="the distance beyond which to withhold (default: the card's)")
    parser.add_argument("--noise-limit", type=float, help="also withhold above this relative noise")
    parser.add_argument("--seed", type=int, default=ROBUSTNESS_SEED)
    arguments = parser.parse_args()
    cases, seed = arguments.cases, arguments.seed
    predictor = Predictor.default()
    limit = arguments.limit or predictor.card.unlikeness.threshold
    drawn = [generate_case(seed, index) for index in range(cases)]
    by_shift = {}
    for shift in SHIFTS:
        images, masks = shifted_cases(shift, cases, seed, drawn)
        wrong, distance = wrong_calls(predictor, images, masks)
        # A score the gate withholds above 1: the distance over its limit, or the noise over its own.
        score = distance / limit
        if arguments.noise_limit:
            score = np.maximum(score, np.array([relative_noise(image) for image in images]) / arguments.noise_limit)
        by_shift[shift] = wrong, score
    gate = f"distance > {limit:.1f}"
    if arguments.noise_limit:
        gate += f" or relative noise > {arguments.noise_limit}"
    print(f"seed {seed}, {cases} cases per shift; an image is wrong where any finding's call is wrong; gate: {gate}")
    print(f"{'shift':<30}{'withheld':>9}{'error':>8}{'shown':>8}{'withheld':>10}")
    for shift, (wrong, score) in by_shift.items():
        withheld = score > 1
        shown_error = wrong[~withheld].mean() if (~withheld).any() else float("nan")
        withheld_error = wrong[withheld].mean() if withheld.any() else float("nan")
        print(f"{shift.name:<30}{withheld.mean():>9.0%}{wrong.mean():>8.1%}{shown_error:>8.1%}{withheld_error:>10.1%}")
    clean = by_shift[SHIFTS[0]]
    print("\nrisk (error among what is kept) at each coverage, the clean cases and a family's shifts pooled")
    print(f"{'family':<26}" + "".join(f"{coverage:>7.0%}" for coverage in COVERAGES) + f"{'gate keeps':>12}")
    for family in dict.fromkeys(shift.family for shift in SHIFTS):
        members = [by_shift[shift] for shift in SHIFTS if shift.family == family]
        wrong = np.concatenate([clean[0], *(m[0] for m in members)]) if family != "clean" else clean[0]
        score = np.concatenate([clean[1], *(m[1] for m in members)]) if family != "clean" else clean[1]
        risks = [risk_at_coverage(wrong, score, coverage) for coverage in COVERAGES]
        kept = (score <= 1).mean()
        print(f"{family:<26}" + "".join(f"{risk:>7.1%}" for risk in risks) + f"{kept:>12.0%}")


if __name__ == "__main__":
    main()
