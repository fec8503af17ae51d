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
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.held_out import SEED, called_pairs
from medattn import Predictor
from medattn.explain import EXPLAINERS
from medattn.explain.faithfulness import HIDINGS, Verdict, check_faithfulness
from medattn.explain.quality import randomised_copy
from medattn.model.predictor import Heatmap


def main() -> None:
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    predictor = Predictor.default()
    randomised = randomised_copy(predictor.model)
    noise = np.random.default_rng(0)
    methods = ("attention", "Grad-CAM", "randomised-model attention", "random noise")
    verdicts = {(h, finding, method): [] for h in HIDINGS for finding in predictor.classes for method in methods}
    seconds, forward = {hiding: [] for hiding in HIDINGS}, []
    for pair in called_pairs(predictor, cases):
        forward.append(pair.forward_seconds)
        case, finding = pair.case, pair.finding
        with torch.inference_mode():
            random_attention = randomised(pair.model_input)[1][0, pair.class_index].numpy()
        maps = {
            "attention": pair.prediction.attention[finding],
            "Grad-CAM": predictor.explain(case.image, finding, EXPLAINERS["gradcam"]),
            "randomised-model attention": Heatmap(random_attention, "attention", finding, 0.0),
            "random noise": Heatmap(noise.random((16, 16), dtype=np.float32), "noise", finding, 0.0),
        }
        for method, heatmap in maps.items():
            if heatmap.values.shape != case.image.shape:  # token-grid maps onto the image first
                heatmap = Heatmap(_resized(heatmap.values, case.image.shape), method, finding, 0.0)
            for hiding in HIDINGS:
                result = check_faithfulness(predictor, case.image, heatmap, hiding=hiding)
                verdicts[hiding, finding, method].append(result.verdict)
                seconds[hiding].append(result.seconds)
    one_pass = statistics.median(forward)
    print(f"held-out seed {SEED}, {cases} cases at 128 px; share of (image, finding) pairs where the check says")
    print("the model relies on the map's hottest region (it beats all 19 other places), and, in brackets, where it")
    print("cannot tell (no hidden place moves the probability visibly); regions hidden by each of the hidings")
    for hiding in HIDINGS:
        print(f"\nhidden by {hiding}")
        print(f"{'finding':<14}{'pairs':>6}" + "".join(f"{method:>28}" for method in methods))
        for finding in predictor.classes:
            pairs = len(verdicts[hiding, finding, methods[0]])
            shares = [_share(verdicts[hiding, finding, m]) for m in methods]
            print(f"{finding:<14}{pairs:>6}" + "".join(f"{share:>28}" for share in shares))
        check = statistics.median(seconds[hiding])
        print(f"check: median {check * 1000:.0f} ms; one forward pass {one_pass * 1000:.1f} ms", end=" ")
        print(f"({check / one_pass:.0f}x)")
    print("\nseparation: attention's 'relies' less the larger of the two controls', per finding")
    print(f"{'finding':<14}" + "".join(f"{hiding:>10}" for hiding in HIDINGS))
    for finding in predictor.classes:
        separations = []
        for hiding in HIDINGS:
            relies = {m: verdicts[hiding, finding, m].count(Verdict.RELIES) / max(1, len(verdicts[hiding, finding, m]))
                      for m in methods}  # fmt: skip
            separations.append(relies["attention"] - max(relies[m] for m in methods[2:]))
        print(f"{finding:<14}" + "".join(f"{separation:>10.1%}" for separation in separations))


def _share(verdicts: list[Verdict]) -> str:
    """The share saying "relies", and in brackets "cannot tell"."""
    relies, cannot_tell = (verdicts.count(v) / len(verdicts) for v in (Verdict.RELIES, Verdict.CANNOT_TELL))
    return f"{relies:.1%} ({cannot_tell:.1%})"


def _resized(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(values.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


if __name__ == "__main__":
    main()
