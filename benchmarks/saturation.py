"""How saturated a model's probabilities are: the share beyond 99.99% or below 0.01%, where hiding a region of
the image no longer moves them visibly, and the per-image faithfulness check can only say it cannot tell.

Run: python benchmarks/saturation.py [MODEL_DIR ...]   (default: the default model, and the one before it from git)
On 2,000 cases of held-out seed 1000 (the cards' own test cases), through the app's path: per model, the share of
(case, finding) probabilities beyond 99.99% or below 0.01%, per finding the share of present ones above 99.99%,
and the probability each sample case gets for each finding (the findings called in capitals).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.robustness import PREVIOUS_DEFAULT, committed_model
from medattn import Predictor, load_scan
from medattn.assets import DEFAULT_MODEL_DIR, SAMPLES_DIR
from medattn.training.datasets import synthetic
from medattn.training.inputs import ModelInputs

CASES, SEED, SATURATED = 2000, 1000, 1e-4


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        models = [Path(argument) for argument in sys.argv[1:]]
        measure(models or [DEFAULT_MODEL_DIR, committed_model(PREVIOUS_DEFAULT, Path(scratch))])


def measure(models: list[Path]) -> None:
    cases = synthetic(SEED, CASES, 128, "test")
    present = cases.labels > 0.5
    for model_dir in models:
        predictor = Predictor.load(model_dir)
        inputs = ModelInputs(cases.images, predictor.preprocessing)
        probabilities = np.concatenate([predictor.run(x, box).probabilities for x, box in inputs.batches()])
        saturated = (probabilities > 1 - SATURATED) | (probabilities < SATURATED)
        print(f"{model_dir}: {saturated.mean():.0%} of probabilities beyond 99.99% or below 0.01%")
        print("| finding | present cases | above 99.99% |\n|---|---|---|")
        for column, finding in enumerate(predictor.classes):
            shown = probabilities[present[:, column], column]
            print(f"| {finding} | {len(shown)} | {(shown > 1 - SATURATED).mean():.0%} |")
        for sample in sorted(SAMPLES_DIR.glob("synthetic-*.png")):
            prediction = predictor.predict(load_scan(sample))
            said = ", ".join(
                f"{finding.upper() if finding in prediction.labels else finding} {value:.3f}"
                for finding, value in prediction.probabilities.items()
            )
            print(f"  {sample.name}: {said}")


if __name__ == "__main__":
    main()
