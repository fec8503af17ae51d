"""A training run's progress, written after every epoch, so that a run stopped at any point (a killed job, a
pre-empted GPU) resumes from its last finished epoch and ends with the model one uninterrupted run gives.

One safetensors file: the weights, the best epoch's weights, the optimiser's moments and every random
generator's state as tensors, the rest as JSON in its header. Nothing is unpickled on resuming, as nothing is
when a model loads (``medattn.model.checkpoint``). It is written beside itself and renamed into place, so a kill
while writing leaves the epoch before.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file

from medattn.errors import TrainingError

_HEADER = "medattn-training-progress"


@dataclass
class Progress:
    """Where a run stands after ``epochs_done`` epochs: its best validation AUC and weights so far (None until an
    epoch after warm-up), its history, the seconds it has trained, and its random generators' ``states``."""

    epochs_done: int = 0
    best_auc: float = -1.0
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict] | None = None
    seconds: float = 0.0
    states: dict[str, torch.Tensor] | None = None


def save(
    path: Path,
    run: dict,
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    progress: Progress,
) -> None:
    """Write ``progress`` with the model, optimiser and schedule as they are; ``run`` names the run (its
    configuration, data and model), so that a file from another run is refused, not resumed."""
    tensors = {f"model.{name}": value for name, value in model.state_dict().items()}
    tensors |= {f"best.{name}": value for name, value in (progress.best_state or {}).items()}
    tensors |= {f"random.{name}": value for name, value in (progress.states or {}).items()}
    optimiser_state = optimiser.state_dict()
    for index, moments in optimiser_state["state"].items():
        tensors |= {f"optimiser.{index}.{name}": value for name, value in moments.items()}
    header = {
        "run": run,
        "epochs_done": progress.epochs_done,
        "best_auc": progress.best_auc,
        "history": progress.history or [],
        "seconds": progress.seconds,
        "optimiser_groups": optimiser_state["param_groups"],
        "schedule": schedule.state_dict(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial")
    save_file({name: value.detach().cpu().contiguous() for name, value in tensors.items()}, partial,
              metadata={_HEADER: json.dumps(header)})  # fmt: skip
    os.replace(partial, path)


def resume(
    path: Path,
    run: dict,
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
) -> Progress:
    """Load the progress in ``path`` into the model, optimiser and schedule, and return it; a file of another run,
    or one that is not a progress file, is a TrainingError that says so."""
    try:
        with safe_open(path, "pt") as handle:
            header = json.loads((handle.metadata() or {})[_HEADER])
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, KeyError, ValueError) as error:
        raise TrainingError(
            f"{path} is not a training progress file ({error}): remove it, or give another --checkpoint."
        ) from None
    differs = sorted(key for key in run.keys() | header["run"].keys() if run.get(key) != header["run"].get(key))
    if differs:
        raise TrainingError(
            f"{path} is the progress of another run ({', '.join(differs)} differ): remove it to start this one "
            "afresh, or give another --checkpoint."
        )

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {name.removeprefix(prefix): value for name, value in tensors.items() if name.startswith(prefix)}

    model.load_state_dict(part("model."))
    moments: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in part("optimiser.").items():
        index, moment = name.split(".", 1)
        moments.setdefault(int(index), {})[moment] = value
    groups = header["optimiser_groups"]
    for group in groups:  # JSON made its tuples lists
        group.update({key: tuple(value) for key, value in group.items() if key == "betas"})
    optimiser.load_state_dict({"state": moments, "param_groups": groups})
    schedule.load_state_dict(header["schedule"])
    return Progress(
        epochs_done=header["epochs_done"],
        best_auc=header["best_auc"],
        best_state=part("best.") or None,
        history=header["history"],
        seconds=header["seconds"],
        states=part("random."),
    )
