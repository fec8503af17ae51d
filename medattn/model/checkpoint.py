"""A model directory is self-describing: ``model.safetensors`` (weights) + ``model.json`` (the card).

Weights load through safetensors only, so a checkpoint can never run code on load (no pickle).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from medattn.errors import ModelError
from medattn.model.card import ModelCard, is_bundle, read_card, write_card
from medattn.model.network import AttentionNet

WEIGHTS_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl")


def save_model(model: AttentionNet, card: ModelCard, directory: Path | str) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, directory / WEIGHTS_FILE)
    write_card(card.with_changes(weights_sha256=weights_digest(directory / WEIGHTS_FILE)), directory)
    return directory


def weights_digest(path: Path) -> str:
    """The SHA-256 of a weights file, as its card records it."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def load_model(directory: Path | str) -> tuple[AttentionNet, ModelCard]:
    """The network in eval mode and its validated card, from a model directory or a MONAI bundle medattn exported
    (medattn.model.bundle: its models/ holds the same two files). Refuses anything but safetensors weights."""
    directory = Path(directory)
    if is_bundle(directory):
        directory = directory / "models"
    if not directory.is_dir():
        raise ModelError(f"{directory} is not a folder: point to a model directory (model.json + model.safetensors).")
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
    digest = weights_digest(weights)
    if card.weights_sha256 != digest:
        said = f"records {card.weights_sha256}" if card.weights_sha256 else "records no 'weights_sha256'"
        raise ModelError(
            f"The model card in {directory} {said}, but {WEIGHTS_FILE} has SHA-256 {digest}: the weights are "
            "not the ones its figures, thresholds and alarm limit describe. Re-export the pair together; if "
            "these are the weights the card was written for, record that SHA-256 in the card."
        )
    try:
        state = load_file(weights)
    except (SafetensorError, OSError) as error:
        raise ModelError(f"{weights} is not a readable safetensors file ({error}).") from None
    weight_classes = state.get("head_bias", torch.empty(0)).shape[0]
    if weight_classes != len(card.classes):
        raise ModelError(
            f"The model card lists {len(card.classes)} 'classes', but the weights in {weights} have "
            f"{weight_classes}. The card belongs to another model: re-export the pair together."
        )
    model = AttentionNet(card.network)
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
