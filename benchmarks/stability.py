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
from medattn.explain import EXPLAINERS
from medattn.explain.quality import dilate, pointing_hit, randomised_copy
from medattn.explain.stability import CHANGES, STABLE_FROM, check_stability

METHODS = ("attention", "hirescam", "gradcam")


def main() -> None:
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    predictor = Predictor.default()
    randomised = randomised_copy(predictor.model)
    columns = (*METHODS, "randomised attention")
    results = {(finding, column): [] for finding in predictor.classes for column in columns}
    hits = {(finding, column): [] for finding in predictor.classes for column in METHODS}  # (stable, pointing hit)
    cell = predictor.model.config.input_size // predictor.model.config.grid_size
    seconds, forward = {column: [] for column in columns}, []
    for pair in called_pairs(predictor, cases):
        forward.append(pair.forward_seconds)
        case, finding = pair.case, pair.finding
        for column in columns:
            method, model = (column, None) if column in METHODS else ("attention", randomised)
            result = check_stability(predictor, case.image, EXPLAINERS[method], finding, model=model)
            results[finding, column].append(result)
            seconds[column].append(result.seconds)
            if column in METHODS and result.stable is not None:
                heat = predictor.explain(case.image, finding, EXPLAINERS[column]).values
                hits[finding, column].append(
                    (result.stable, pointing_hit(heat, dilate(case.masks[pair.class_index], cell)))
                )
    print(f"held-out seed {SEED}, {cases} cases at 128 px; per (image, finding) called present: median worst overlap")
    print(f"of the map's hottest 5% with itself, [share stable, worst >= {STABLE_FROM}], (share where a change moved")
    print("the model's answer)")
    print(f"{'finding':<14}{'pairs':>6}" + "".join(f"{column:>26}" for column in columns))
    for finding in predictor.classes:
        pairs = len(results[finding, columns[0]])
        print(f"{finding:<14}{pairs:>6}" + "".join(f"{_summary(results[finding, c]):>26}" for c in columns))
    print("\nseparation of trained from randomised attention by worst overlap (AUC; 0.5: none)")
    for finding in predictor.classes:
        trained = [r.worst for r in results[finding, "attention"] if r.worst is not None]
        control = [r.worst for r in results[finding, "randomised attention"] if r.worst is not None]
        print(f"  {finding:<14}{_auc(trained, control):.3f}")
    print("\ndoes it say anything of the map? pointing (the map's peak in the finding's mask, dilated by a token)")
    print("of maps called stable, and of those called unstable [how many]")
    print(f"{'finding':<14}" + "".join(f"{column:>26}" for column in METHODS))
    for finding in predictor.classes:
        print(f"{finding:<14}" + "".join(f"{_pointing(hits[finding, c]):>26}" for c in METHODS))
    print("\nwhich change moved the model's answer, share of (image, finding) pairs")
    for finding in predictor.classes:
        answered = results[finding, "attention"]
        shares = [sum(change in r.answer_changed for r in answered) / max(1, len(answered)) for change in CHANGES]
        print(
            f"  {finding:<14}"
            + "".join(f"{change} {share:.0%}   " for change, share in zip(CHANGES, shares, strict=True))
        )
    one_pass = statistics.median(forward)
    print(f"\none forward pass {one_pass * 1000:.1f} ms; the check, median:")
    for column in columns:
        check = statistics.median(seconds[column])
        print(f"  {column:<22}{check * 1000:>8.0f} ms ({check / one_pass:.0f}x)")


def _summary(results: list) -> str:
    worst = [r.worst for r in results if r.worst is not None]
    if not results:
        return "-"
    stable = sum(w >= STABLE_FROM for w in worst) / len(results)
    changed = sum(bool(r.answer_changed) for r in results) / len(results)
    return f"{np.median(worst) if worst else float('nan'):.2f} [{stable:.0%}] ({changed:.0%})"


def _pointing(pairs: list[tuple[bool, bool]]) -> str:
    stable = [hit for is_stable, hit in pairs if is_stable]
    unstable = [hit for is_stable, hit in pairs if not is_stable]
    rate = lambda hits: f"{np.mean(hits):.2f}" if hits else "-"  # noqa: E731
    return f"{rate(stable)} [{len(stable)}] / {rate(unstable)} [{len(unstable)}]"


def _auc(higher: list[float], lower: list[float]) -> float:
    """P(a trained map's worst overlap > a randomised one's), ties counted half."""
    if not higher or not lower:
        return float("nan")
    a, b = np.asarray(higher)[:, None], np.asarray(lower)[None, :]
    return float((a > b).mean() + 0.5 * (a == b).mean())


if __name__ == "__main__":
    main()
