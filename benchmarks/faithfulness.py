"""Does the per-image faithfulness check tell maps the model relies on from maps it does not?

Run: python benchmarks/faithfulness.py [cases]
On the benchmark's held-out test seed (1000), for every finding present in an image and called present
by the default model, the check (medattn/explain/faithfulness.py) is run on four maps of that finding:
the model's attention and Grad-CAM (candidates), and two that cannot reflect what the trained model uses:
the attention of the same network with every weight re-drawn at random (the model-randomisation test of
Adebayo et al., 2018) and a map of random noise. A useful check says "relies" often for the first two
and seldom (about 1 in 20 by chance) for the controls. Rates are per (image, finding); each finding is
listed on its own, with no averaging across them. Each check is run with every way of hiding a region
(medattn.explain.faithfulness.HIDINGS: grey, blur, inpainting), and the separation of attention from the
controls is given for each. Also the check's time against one forward pass.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.held_out import SEED
from medattn import Predictor
from medattn.benchmark import generate_case
from medattn.explain import EXPLAINERS
from medattn.explain.faithfulness import ATTENTION, CONTROLS, HIDINGS, Verdict, hiding_checks, hiding_separation


def main() -> None:
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    predictor = Predictor.default()
    drawn = [generate_case(SEED, index) for index in range(cases)]
    images, labels = np.stack([c.image for c in drawn]), np.stack([c.labels.astype(bool) for c in drawn])
    one_pass = forward_seconds(predictor, images[0])
    checks = hiding_checks(predictor, images, labels, extra={"Grad-CAM": EXPLAINERS["gradcam"]})
    methods = (ATTENTION, "Grad-CAM", *CONTROLS)
    findings = list(dict.fromkeys(finding for _, finding, _ in checks))
    print(f"held-out seed {SEED}, {cases} cases at 128 px; share of (image, finding) pairs where the check says")
    print("the model relies on the map's hottest region (it beats all 19 other places), and, in brackets, where it")
    print("cannot tell (no hidden place moves the probability visibly); regions hidden by each of the hidings")
    for hiding in HIDINGS:
        print(f"\nhidden by {hiding}")
        print(f"{'finding':<14}{'pairs':>6}" + "".join(f"{method:>28}" for method in methods))
        for finding in findings:
            pairs = len(checks[hiding, finding, ATTENTION])
            shares = [_share([check.verdict for check in checks[hiding, finding, m]]) for m in methods]
            print(f"{finding:<14}{pairs:>6}" + "".join(f"{share:>28}" for share in shares))
        check = statistics.median(c.seconds for (h, _, _), found in checks.items() if h == hiding for c in found)
        print(f"check: median {check * 1000:.0f} ms; one forward pass {one_pass * 1000:.1f} ms", end=" ")
        print(f"({check / one_pass:.0f}x)")
    print("\nseparation: attention's 'relies' less the larger of the two controls', per finding")
    print(f"{'finding':<14}" + "".join(f"{hiding:>10}" for hiding in HIDINGS))
    for finding, separations in hiding_separation(checks).items():
        print(f"{finding:<14}" + "".join(f"{separations[hiding]:>10.1%}" for hiding in HIDINGS))


def forward_seconds(predictor: Predictor, image: np.ndarray, repeats: int = 50) -> float:
    """The median time of one forward pass of the model on ``image``."""
    model_input, _ = predictor.prepare(image)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with torch.inference_mode():
            predictor.model(model_input)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _share(verdicts: list[Verdict]) -> str:
    """The share saying "relies", and in brackets "cannot tell"."""
    relies, cannot_tell = (verdicts.count(v) / len(verdicts) for v in (Verdict.RELIES, Verdict.CANNOT_TELL))
    return f"{relies:.1%} ({cannot_tell:.1%})"


if __name__ == "__main__":
    main()
