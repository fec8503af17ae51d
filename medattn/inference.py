"""Predictor: a loaded model with its card, turning a Scan or an image into a Prediction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from medattn import calibration
from medattn.calibration import MULTI_LABEL
from medattn.checkpoint import load_model
from medattn.io import Scan
from medattn.model import AttentionNet
from medattn.paths import DEFAULT_MODEL_DIR
from medattn.preprocess import prepare


@dataclass(frozen=True)
class Prediction:
    """Calibrated probabilities, the classes above their thresholds, and attention on the input's grid."""

    probabilities: dict[str, float]
    thresholds: dict[str, float]  # empty for multi-class models, which pick the most probable class
    labels: list[str]
    attention: dict[str, np.ndarray]  # class -> float32 (H, W), sums to 1 over the image

    @property
    def top_class(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)


class Predictor:
    """Thread-safe for prediction: the model is only read, under ``torch.inference_mode``."""

    def __init__(self, model: AttentionNet, card: dict):
        self.model, self.card = model, card
        self.classes: list[str] = list(card["classes"])
        self.task: str = card.get("task", MULTI_LABEL)
        self.input_size: int = int(card["preprocessing"]["input_size"])
        self.channels: int = model.config.in_channels
        self.temperature = np.asarray(card.get("temperature", [1.0]), dtype=np.float64)
        # Multi-class models decide by the most probable class and carry no thresholds.
        thresholds = card.get("thresholds") or ([0.5] * len(self.classes) if self.task == MULTI_LABEL else [])
        self.thresholds: dict[str, float] = dict(zip(self.classes, thresholds, strict=True)) if thresholds else {}

    @classmethod
    def load(cls, model_dir: Path | str) -> Predictor:
        return cls(*load_model(model_dir))

    @classmethod
    def default(cls) -> Predictor:
        return cls.load(DEFAULT_MODEL_DIR)

    @property
    def name(self) -> str:
        return f"{self.card.get('name', 'model')} {self.card.get('version', '')}".strip()

    def display_name(self, class_name: str) -> str:
        return self.card.get("display_names", {}).get(class_name, class_name)

    def predict(self, image: Scan | np.ndarray, frame: int = 0) -> Prediction:
        """``image``: a Scan (that frame as displayed) or an H x W or H x W x C array of any dtype."""
        pixels = image.display(frame) if isinstance(image, Scan) else np.asarray(image)
        model_input, letterbox = prepare(pixels, self.input_size, self.channels)
        with torch.inference_mode():
            logits, attention = self.model(torch.from_numpy(model_input)[None])
        probs = calibration.probabilities(logits.numpy(), self.temperature, self.task)
        decided = calibration.decisions(probs, list(self.thresholds.values()), self.task)[0]
        maps = {}
        for c, name in enumerate(self.classes):
            on_image = np.clip(letterbox.to_original(attention[0, c].numpy()), 0, None)
            maps[name] = (on_image / max(float(on_image.sum()), 1e-12)).astype(np.float32)
        return Prediction(
            probabilities={name: float(p) for name, p in zip(self.classes, probs[0], strict=True)},
            thresholds=dict(self.thresholds),
            labels=[name for name, chosen in zip(self.classes, decided, strict=True) if chosen],
            attention=maps,
        )
