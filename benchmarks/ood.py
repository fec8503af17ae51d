"""Does the unlikeness score tell the model's kind of image from everything else?

Run: python benchmarks/ood.py
In-distribution: held-out synthetic radiographs (benchmark seed 1000, never trained on). Out of
distribution: every real DICOM file in pydicom and pydicom-data that load_scan opens (CR, CT, MR, US,
NM, secondary captures: real scans, none like the synthetic chest). Prints the alarm rate of each and
the AUROC of the score between them.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medattn import Predictor, ScanError, load_scan
from medattn.benchmark import generate_case
from medattn.training.evaluate import roc_auc
from tests.conftest import real_dicom_files

HELD_OUT_SEED, HELD_OUT = 1000, 1000


def main() -> None:
    predictor = Predictor.default()
    limit = predictor.card.unlikeness.threshold
    synthetic = np.array([predictor.predict(generate_case(HELD_OUT_SEED, i).image).unlikeness for i in range(HELD_OUT)])
    larger = np.array([predictor.predict(generate_case(HELD_OUT_SEED, i, 512).image).unlikeness for i in range(200)])
    real, by_modality = [], collections.defaultdict(list)
    for path in real_dicom_files():
        try:
            scan = load_scan(path)
        except ScanError:
            continue
        distance = predictor.predict(scan).unlikeness
        real.append(distance)
        by_modality[scan.modality].append(distance > limit)
    real = np.array(real)
    labels = np.r_[np.zeros(len(synthetic)), np.ones(len(real))]
    print(f"unlikeness limit {limit:.2f} (the highest 99.5th percentile of held-out cases drawn at 128, 256, 512 px)")
    print(f"{'images':<44}{'count':>7}{'median':>9}{'flagged':>9}")
    print(f"{'held-out synthetic radiographs':<44}{len(synthetic):>7}{np.median(synthetic):>9.1f}"
          f"{(synthetic > limit).mean():>9.1%}")  # fmt: skip
    print(f"{'the same, drawn at 512 px':<44}{len(larger):>7}{np.median(larger):>9.1f}{(larger > limit).mean():>9.1%}")
    print(f"{'real DICOM files (pydicom, pydicom-data)':<44}{len(real):>7}{np.median(real):>9.1f}"
          f"{(real > limit).mean():>9.1%}")  # fmt: skip
    for modality, flags in sorted(by_modality.items()):
        print(f"{'  ' + modality:<44}{len(flags):>7}{'':>9}{np.mean(flags):>9.1%}")
    print(f"AUROC, synthetic against real: {roc_auc(labels, np.r_[synthetic, real]):.4f}; lowest real {real.min():.1f}")


if __name__ == "__main__":
    main()
