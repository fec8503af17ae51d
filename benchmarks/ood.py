"""Does the unlikeness score tell the model's kind of image from everything else?

Run: python benchmarks/ood.py
In-distribution: held-out synthetic radiographs (benchmark seed 1000, never trained on). Out of
distribution: every real DICOM file in pydicom and pydicom-data that load_scan opens (CR, CT, MR, US,
NM, secondary captures: real scans, none like the synthetic chest). Prints the share the gate withholds of
each (beyond either limit), and the AUROC of the unlikeness between them.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medattn import Predictor, ScanError, load_scan
from medattn.benchmark import generate_case
from medattn.model.calibration import roc_auc
from tests.conftest import real_dicom_files

HELD_OUT_SEED, HELD_OUT = 1000, 1000


def main() -> None:
    predictor = Predictor.default()
    statistics = predictor.card.unlikeness
    synthetic = [predictor.predict(generate_case(HELD_OUT_SEED, i).image) for i in range(HELD_OUT)]
    larger = [predictor.predict(generate_case(HELD_OUT_SEED, i, 512).image) for i in range(200)]
    real, by_modality = [], collections.defaultdict(list)
    for path in real_dicom_files():
        try:
            scan = load_scan(path)
        except ScanError:
            continue
        real.append(predictor.predict(scan))
        by_modality[scan.modality].append(real[-1].unlike_training_data)
    print(
        f"limits: unlikeness {statistics.threshold:.2f}, relative noise {statistics.noise_limit:.4f} (the highest "
        "99.5th percentiles of held-out cases the model still reads well: medattn fit-ood)"
    )
    print(f"{'images':<44}{'count':>7}{'median':>9}{'noise':>8}{'withheld':>10}")
    for name, predictions in (
        ("held-out synthetic radiographs", synthetic),
        ("the same, drawn at 512 px", larger),
        ("real DICOM files (pydicom, pydicom-data)", real),
    ):
        distances, noise = (np.array([getattr(p, field) for p in predictions]) for field in ("unlikeness", "noise"))
        withheld = np.mean([p.unlike_training_data for p in predictions])
        print(f"{name:<44}{len(predictions):>7}{np.median(distances):>9.1f}{np.median(noise):>8.3f}{withheld:>10.1%}")
    for modality, flags in sorted(by_modality.items()):
        print(f"{'  ' + modality:<44}{len(flags):>7}{'':>17}{np.mean(flags):>10.1%}")
    distances = np.array([p.unlikeness for p in synthetic + real])
    labels = np.r_[np.zeros(len(synthetic)), np.ones(len(real))]
    lowest = min(p.unlikeness for p in real)
    auroc = roc_auc(labels, distances)
    print(f"AUROC of the unlikeness, synthetic against real: {auroc:.4f}; least unlike real {lowest:.1f}")


if __name__ == "__main__":
    main()
