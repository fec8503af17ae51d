"""Does the unlikeness gate withhold what would mislead, or what is merely unusual? Selective prediction's view.

Run: python benchmarks/risk_coverage.py [cases]
For every shift of the robustness table (medattn/training/robustness.py; held-out seed 31337, which no training,
validation or evaluation run uses), each image is called by the default model and marked wrong where any finding's
call (probability against its threshold) differs from the truth. Per shift: the share the gate withholds at the
card's threshold, the error among what it shows and among what it withholds, and the error of the shift as a
whole. Then, per shift family with the clean cases beside it, the risk–coverage curve: the error among the share
of images a gate on the unlikeness score would keep, most familiar first. A gate that withholds what would mislead
keeps nearly everything where the model performs, and its error falls as it withholds more.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medattn import Predictor
from medattn.benchmark import generate_case
from medattn.training.robustness import ROBUSTNESS_SEED, SHIFTS, risk_at_coverage, shifted_cases, wrong_calls

COVERAGES = (1.0, 0.9, 0.8, 0.6, 0.4, 0.2)


def main() -> None:
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    predictor = Predictor.default()
    limit = predictor.card.unlikeness.threshold
    drawn = [generate_case(ROBUSTNESS_SEED, index) for index in range(cases)]
    by_shift = {}
    for shift in SHIFTS:
        images, masks = shifted_cases(shift, cases, ROBUSTNESS_SEED, drawn)
        by_shift[shift] = wrong_calls(predictor, images, masks)
    print(f"seed {ROBUSTNESS_SEED}, {cases} cases per shift; an image is wrong where any finding's call is wrong")
    print(f"{'shift':<30}{'withheld':>9}{'error':>8}{'shown':>8}{'withheld':>10}")
    for shift, (wrong, unlikeness) in by_shift.items():
        withheld = unlikeness > limit
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
        kept = (score <= limit).mean()
        print(f"{family:<26}" + "".join(f"{risk:>7.1%}" for risk in risks) + f"{kept:>12.0%}")


if __name__ == "__main__":
    main()
