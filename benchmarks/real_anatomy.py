"""Does the nodule attention move to a nodule inserted into a real chest radiograph?

Run: python benchmarks/real_anatomy.py [--baseline DIR] [--count N]
The radiograph is pydicom-data's chest CR (RG1_J2KR.dcm, with round masses of its own), at 512 px. Each
nodule is drawn as the benchmark draws a fuzzy one and placed in one lung field, then the other; a hit is
the nodule attention's peak on it (grown by one token cell). Prints the hit rate of the model and of a
baseline model (by default, the model before the robustness training), on the same insertions.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.robustness import BEFORE_ROBUSTNESS_TRAINING, committed_model
from medattn import Predictor, load_scan
from medattn.assets import DEFAULT_MODEL_DIR
from medattn.training.robustness import inserted_lesion_pointing
from tests.conftest import CHEST_CR_LUNG_FIELDS, PYDICOM_DATA_FILES

SIDE = 512


def chest_pixels():
    pixels = load_scan(PYDICOM_DATA_FILES / "RG1_J2KR.dcm").model_pixels(0)
    return cv2.resize(pixels, (SIDE, SIDE), interpolation=cv2.INTER_AREA)


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--baseline", type=Path)
    arguments.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    arguments.add_argument("--count", type=int, default=100)
    args = arguments.parse_args()
    pixels = chest_pixels()
    print("| model | nodules inserted | attention on the nodule |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        baseline = args.baseline or committed_model(BEFORE_ROBUSTNESS_TRAINING, Path(scratch))
        for name, folder in (("before", baseline), ("after", args.model)):
            rate = inserted_lesion_pointing(Predictor.load(folder), pixels, CHEST_CR_LUNG_FIELDS, args.count)
            print(f"| {name} ({folder}) | {args.count} | {rate:.0%} |")


if __name__ == "__main__":
    main()
