"""A model directory is self-describing: ``model.safetensors`` (weights) + ``model.json`` (the card).

Weights load through safetensors only, so a checkpoint can never run code on load (no pickle).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from medattn.model import AttentionNet, ModelConfig

WEIGHTS_FILE, CARD_FILE = "model.safetensors", "model.json"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl")


class ModelError(ValueError):
    """A model directory that cannot be loaded; the message says why and what to do."""


def save_model(model: AttentionNet, card: dict, directory: Path | str) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    card = {**card, "config": model.config.to_dict()}
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, directory / WEIGHTS_FILE)
    write_card(card, directory)
    return directory


def write_card(card: dict, directory: Path | str) -> None:
    """Replace the card of a model directory (its weights are left alone)."""
    (Path(directory) / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")


def read_card(directory: Path | str) -> dict:
    path = Path(directory) / CARD_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{directory} holds no {CARD_FILE}: it is not a medattn model directory.") from None
    except json.JSONDecodeError as error:
        raise ModelError(f"{path} is not valid JSON ({error}); re-export the model.") from None


def load_model(directory: Path | str) -> tuple[AttentionNet, dict]:
    """The network in eval mode and its card. Refuses anything but safetensors weights."""
    directory = Path(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.exists():
        pickled = sorted(p.name for p in directory.glob("*") if p.suffix in PICKLE_SUFFIXES)
        hint = (
            f" It holds {', '.join(pickled)}: pickled checkpoints are refused, as loading them can run code."
            if pickled
            else ""
        )
        raise ModelError(f"{directory} holds no {WEIGHTS_FILE}.{hint} Convert the weights to safetensors.")
    card = read_card(directory)
    model = AttentionNet(ModelConfig.from_dict(card["config"]))
    try:
        state = load_file(weights)
    except SafetensorError as error:
        raise ModelError(f"{weights} is not a readable safetensors file ({error}).") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise ModelError(
            f"The weights in {weights} do not fit the network its card describes ({first}); "
            "the model was probably written by another version of medattn. Retrain or re-export it."
        ) from None
    model.eval()
    return model, card


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
