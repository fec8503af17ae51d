"""The attention maps' model-wide scale, and the level at which a map is called diffuse.

Run: python benchmarks/map_scale.py [cases]
On the benchmark's validation seed (1, where the level was chosen) and its held-out test seed (1000,
never used to choose anything), for each finding: the peak attention relative to uniform (median and
95th percentile) in images with and without the finding, and the share of maps the app calls diffuse
(spread over more than DIFFUSE_SPREAD of the image) in each. A good level flags few maps of findings
that are present and many of findings that are absent. Rates are per map; no averaging across findings.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medattn import Predictor
from medattn.benchmark import generate
from medattn.model.predictor import DIFFUSE_SPREAD, attention_spread

SEEDS = {"validation (seed 1)": 1, "held-out test (seed 1000)": 1000}


def main() -> None:
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    predictor = Predictor.default()
    print(f"{cases} cases per seed, 128 px; diffuse: attention spread over more than {DIFFUSE_SPREAD:.0%} of the image")
    print(f"{'seed':<27}{'finding':<14}{'present':>8}{'peak x uniform p50/p95':>25}{'diffuse':>9}"
          f"{'absent':>8}{'peak x uniform p50/p95':>25}{'diffuse':>9}")  # fmt: skip
    for label, seed in SEEDS.items():
        images, masks = generate(seed, cases, 128)
        present = masks.reshape(len(masks), masks.shape[1], -1).any(axis=-1)  # (n, C)
        inputs = torch.from_numpy(np.stack([predictor.preprocessing.prepare(image)[0] for image in images]))
        attention = predictor.run(inputs).attention  # (n, C, h, w)
        tokens = attention.shape[-2] * attention.shape[-1]
        peaks = attention.flatten(2).amax(dim=2).numpy() * tokens  # (n, C), relative to uniform
        spread = np.stack([attention_spread(maps) for maps in attention])  # (n, C)
        for c, finding in enumerate(predictor.classes):
            cells = []
            for group in (present[:, c], ~present[:, c]):
                p50, p95 = np.percentile(peaks[group, c], [50, 95])
                diffuse = (spread[group, c] > DIFFUSE_SPREAD).mean()
                cells.append(f"{group.sum():>8}{p50:>16.0f} / {p95:<6.0f}{diffuse:>9.1%}")
            print(f"{label:<27}{finding:<14}{cells[0]}{cells[1]}")


if __name__ == "__main__":
    main()
