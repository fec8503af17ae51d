"""Where the model holds up off its benchmark, against a baseline model measured in the same run.

Run: python benchmarks/robustness.py [--baseline DIR | --commit C] [--cases N]
Each model goes through every shift of ``medattn.training.robustness`` on the same held-out cases (seed
31337, which no training, validation or evaluation run uses). Prints, per shift, each model's macro AUC,
macro attention pointing, share withheld by its gate, error among the images shown and verdict; then each
finding's pointing and the capture rates. Targets (issue 15): no shift fails silently; clean macro AUC >= 0.99,
ECE <= 0.02, flagged <= 2%. Means over findings are macro means.

The baseline defaults to the default model as committed before the robustness training (git history):
``git show 53b10d1:assets/models/default/model.safetensors`` and ``model.json``, extracted to a folder;
``--commit`` names another commit (d673a18: the same weights, with the gate on the unlikeness distance alone;
``PREVIOUS_DEFAULT``, fcc157f: the default model before attention supervision and label smoothing).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medattn import Predictor
from medattn.assets import DEFAULT_MODEL_DIR
from medattn.training.robustness import robustness

ROOT = Path(__file__).resolve().parent.parent
BEFORE_ROBUSTNESS_TRAINING = "53b10d1"
PREVIOUS_DEFAULT = "fcc157f"  # before attention supervision and label smoothing


def committed_model(commit: str, folder: Path) -> Path:
    """The default model's two files as they were at ``commit``. A card committed before cards recorded their
    weights' SHA-256 gets it here: the pair was committed together, so these are the weights it describes."""
    for name in ("model.safetensors", "model.json"):
        blob = subprocess.run(
            ["git", "show", f"{commit}:assets/models/default/{name}"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        (folder / name).write_bytes(blob)
    card = json.loads((folder / "model.json").read_text())
    card.setdefault("weights_sha256", hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest())
    (folder / "model.json").write_text(json.dumps(card))
    return folder


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--baseline", type=Path, help="a model folder (default: the model before this training)")
    arguments.add_argument("--commit", default=BEFORE_ROBUSTNESS_TRAINING, help="the default model at this commit")
    arguments.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    arguments.add_argument("--cases", type=int, default=500)
    args = arguments.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        baseline_dir = args.baseline or committed_model(args.commit, Path(scratch))
        before = robustness(Predictor.load(baseline_dir), args.cases)
        after = robustness(Predictor.load(args.model), args.cases)
    print(f"{args.cases} cases per shift of {after['data']}; baseline {baseline_dir}, model {args.model}\n")
    columns = ("macro AUC", "pointing", "withheld", "error shown", "verdict")
    print("| shift | " + " | ".join(f"{column} before | after" for column in columns) + " |")
    print("|---|" + "---|---|" * len(columns))
    for old, new in zip(before["shifts"], after["shifts"], strict=True):
        print(
            f"| {new['shift']} | {old['macro_auc']:.3f} | **{new['macro_auc']:.3f}** | {old['macro_pointing']:.2f} | "
            f"**{new['macro_pointing']:.2f}** | {old['flagged']:.0%} | **{new['flagged']:.0%}** | "
            f"{shown(old)} | **{shown(new)}** | {old['verdict']} | **{new['verdict']}** |"
        )
    clean_before, clean_after = before["shifts"][0], after["shifts"][0]
    print(f"\nclean ECE: {clean_before['ece']:.4f} before, {clean_after['ece']:.4f} after")
    for name, figures in (("before", before), ("after", after)):
        silent = [s["shift"] for s in figures["shifts"] if s["verdict"] == "fails silently"]
        print(f"{name}: {len(silent)} shifts fail silently: {', '.join(silent) or 'none'}")
        print(f"  clean pointing per finding: {clean_pointing(figures)}")
        print(f"  capture rates: {', '.join(f'{k} {v:.1%}' for k, v in figures['capture_rates'].items())}")


def shown(figures: dict) -> str:
    """The error among the images the gate shows; a dash where it withholds them all."""
    return "—" if figures["error_shown"] is None else f"{figures['error_shown']:.1%}"


def clean_pointing(figures: dict) -> str:
    return ", ".join(f"{finding} {value:.3f}" for finding, value in figures["shifts"][0]["pointing"].items())


if __name__ == "__main__":
    main()
