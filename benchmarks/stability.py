"""Does the map-stability check tell maps that hold from maps that do not, and at what cost?

Run: python benchmarks/stability.py [cases]
On the benchmark's held-out test seed (1000), for every finding present in an image and called present by the
default model, the check (medattn/explain/stability.py) is run on the maps of the trained model (attention,
HiResCAM, Grad-CAM) and on the attention of the same network with every weight re-drawn at random (the
model-randomisation control of Adebayo et al., 2018). Per finding, with no averaging across findings: the median
of each map's worst overlap with itself, the share called stable (worst overlap >= STABLE_FROM), and the share
where a change moved the model's answer. Then how well the worst overlap separates the trained attention from
the randomised one (AUC), and the check's time against one forward pass.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.held_out import SEED, called_pairs
from medattn import Predictor
from medattn.benchmark import generate_case
from medattn.explain import EXPLAINERS
from medattn.explain.quality import dilate, pointing_hit
from medattn.explain.stability import (
    CHANGES,
    MEASURED_METHODS,
    RANDOMISED,
    STABLE_FROM,
    stability_checks,
    stability_figures,
)


def main() -> None:
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    predictor = Predictor.default()
    drawn = [generate_case(SEED, index) for index in range(cases)]
    images, labels = np.stack([c.image for c in drawn]), np.stack([c.labels.astype(bool) for c in drawn])
    checks = stability_checks(predictor, images, labels)
    figures = stability_figures(checks)
    columns = (*MEASURED_METHODS, RANDOMISED)
    print(f"held-out seed {SEED}, {cases} cases at 128 px; per (image, finding) called present: median worst overlap")
    print(f"of the map's hottest 5% with itself, [share stable, worst >= {STABLE_FROM}], (share where a change moved")
    print("the model's answer)")
    print(f"{'finding':<14}{'pairs':>6}" + "".join(f"{column:>26}" for column in columns))
    for finding, maps in figures["methods"].items():
        cells = [
            f"{np.nan if maps[c]['median_worst'] is None else maps[c]['median_worst']:.2f} "
            f"[{maps[c]['stable']:.0%}] ({maps[c]['answer_changed']:.0%})"
            for c in columns
        ]
        print(f"{finding:<14}{maps['attention']['pairs']:>6}" + "".join(f"{cell:>26}" for cell in cells))
    print("\nseparation of trained from randomised attention by worst overlap (AUC; 0.5: none)")
    for finding, auc in figures["separation"].items():
        print(f"  {finding:<14}{auc:.3f}")
    # The pairs in the order the checks ran (image by image, finding by finding), for their maps' pointing.
    pairs = list(called_pairs(predictor, cases))
    cell = predictor.model.config.input_size // predictor.model.config.grid_size
    print("\ndoes it say anything of the map? pointing (the map's peak in the finding's mask, dilated by a token)")
    print("of maps called stable, and of those called unstable [how many]")
    print(f"{'finding':<14}" + "".join(f"{column:>26}" for column in MEASURED_METHODS))
    for finding in figures["methods"]:
        mine = [pair for pair in pairs if pair.finding == finding]
        row = []
        for column in MEASURED_METHODS:
            hits = [
                (
                    check.stable,
                    pointing_hit(heat(predictor, pair, column), dilate(pair.case.masks[pair.class_index], cell)),
                )
                for pair, check in zip(mine, checks[finding, column], strict=True)
                if check.stable is not None
            ]
            row.append(_pointing(hits))
        print(f"{finding:<14}" + "".join(f"{cells:>26}" for cells in row))
    print("\nwhich change moved the model's answer, share of (image, finding) pairs")
    for finding in figures["methods"]:
        answered = checks[finding, "attention"]
        shares = [sum(change in r.answer_changed for r in answered) / max(1, len(answered)) for change in CHANGES]
        print(
            f"  {finding:<14}"
            + "".join(f"{change} {share:.0%}   " for change, share in zip(CHANGES, shares, strict=True))
        )
    one_pass = statistics.median(pair.forward_seconds for pair in pairs)
    print(f"\none forward pass {one_pass * 1000:.1f} ms; the check, median:")
    for column in columns:
        check = statistics.median(r.seconds for (_, c), results in checks.items() if c == column for r in results)
        print(f"  {column:<22}{check * 1000:>8.0f} ms ({check / one_pass:.0f}x)")


def heat(predictor: Predictor, pair, method: str) -> np.ndarray:
    return predictor.explain(pair.case.image, pair.finding, EXPLAINERS[method]).values


def _pointing(pairs: list[tuple[bool, bool]]) -> str:
    stable = [hit for is_stable, hit in pairs if is_stable]
    unstable = [hit for is_stable, hit in pairs if not is_stable]
    rate = lambda hits: f"{np.mean(hits):.2f}" if hits else "-"  # noqa: E731
    return f"{rate(stable)} [{len(stable)}] / {rate(unstable)} [{len(unstable)}]"


if __name__ == "__main__":
    main()
