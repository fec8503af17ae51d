"""Do the app and training feed the model the same input for the same image?

Run: python benchmarks/input_path.py
300 held-out benchmark cases (seed 1000) are written as 16-bit PNG files, as a user would bring them,
and read back with load_scan. Each is scored three ways, in one run: through training's path (the
benchmark's own float image), through the app's path (``Scan.model_pixels``: modality values, no
display window), and through the path the app used before (``Scan.display()``: the 8-bit image
windowed for eyes). Prints the largest probability gap and the decisions that flip against training's.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medattn import Predictor, load_scan
from medattn.benchmark import generate_case

HELD_OUT_SEED, CASES = 1000, 300


def main() -> None:
    predictor = Predictor.default()
    gaps: dict[str, list[float]] = {"app: Scan.model_pixels": [], "before: Scan.display()": []}
    flips = dict.fromkeys(gaps, 0)
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(CASES):
            image = generate_case(HELD_OUT_SEED, index).image
            path = Path(scratch) / f"{index}.png"
            cv2.imwrite(str(path), np.round(image * 65535).astype(np.uint16))
            scan = load_scan(path)
            training = predictor.predict(image)
            for name, pixels in zip(gaps, (scan, scan.display()), strict=True):
                seen = predictor.predict(pixels)
                gap = max(abs(seen.probabilities[c] - training.probabilities[c]) for c in seen.probabilities)
                gaps[name].append(gap)
                flips[name] += seen.labels != training.labels
    print(f"{CASES} held-out cases through 16-bit PNG files, against training's path on the same cases")
    print(f"{'path from file to model input':<32}{'max |Δp|':>10}{'median |Δp|':>13}{'flipped':>9}")
    for name, values in gaps.items():
        print(f"{name:<32}{max(values):>10.4f}{np.median(values):>13.6f}{flips[name]:>5} / {CASES}")


if __name__ == "__main__":
    main()
