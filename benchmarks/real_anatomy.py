"""Does the nodule attention move to a nodule inserted into a real chest radiograph?

Run: python benchmarks/real_anatomy.py [--baseline DIR] [--count N]
The radiograph is pydicom-data's chest CR (RG1_J2KR.dcm, with round masses of its own), at 512 px. Each
nodule is drawn as the benchmark draws a fuzzy one and placed in one lung field, then the other; a hit is
the nodule attention's peak on it (grown by one token cell), or one of its three highest peaks a token cell
apart (where a reader's eye goes first). Prints the hit rates of the model and of a
baseline model (by default, the model before the robustness training), on the same insertions, and as a
control the same insertions into the benchmark's normal sample (512 px).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.robustness import BEFORE_ROBUSTNESS_TRAINING, committed_model
from medattn import Predictor, load_scan
from medattn.assets import DEFAULT_MODEL_DIR, SAMPLES_DIR
from medattn.training.robustness import inserted_lesion_pointing
from tests.conftest import CHEST_CR_LUNG_FIELDS, SYNTHETIC_LUNG_FIELDS, chest_cr_pixels


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--baseline", type=Path)
    arguments.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    arguments.add_argument("--count", type=int, default=100)
    args = arguments.parse_args()
    radiographs = {
        "real chest CR": (chest_cr_pixels(), CHEST_CR_LUNG_FIELDS),
        "synthetic normal sample (control)": (
            load_scan(SAMPLES_DIR / "synthetic-normal.png").model_pixels(0),
            SYNTHETIC_LUNG_FIELDS,
        ),
    }
    print("| model | radiograph | nodules inserted | attention's peak on the nodule | among its top 3 peaks |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        baseline = args.baseline or committed_model(BEFORE_ROBUSTNESS_TRAINING, Path(scratch))
        for name, folder in (("before", baseline), ("after", args.model)):
            predictor = Predictor.load(folder)
            for radiograph, (pixels, fields) in radiographs.items():
                peak, top_three = (inserted_lesion_pointing(predictor, pixels, fields, args.count, among=among)
                                   for among in (1, 3))  # fmt: skip
                print(f"| {name} ({folder}) | {radiograph} | {args.count} | {peak:.0%} | {top_three:.0%} |")


if __name__ == "__main__":
    main()
