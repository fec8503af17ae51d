"""Predictor: a loaded model with its card, turning a Scan or an image into a Prediction."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from medattn import calibration, ood
from medattn.calibration import MULTI_LABEL
from medattn.checkpoint import load_model
from medattn.explain import EXPLAINERS, Heatmap
from medattn.io import Scan
from medattn.model import AttentionNet
from medattn.paths import DEFAULT_MODEL_DIR
from medattn.preprocess import Letterbox, prepare


@dataclass(frozen=True)
class Prediction:
    """Calibrated probabilities, the classes above their thresholds, and each class's attention heatmap."""

    probabilities: dict[str, float]
    thresholds: dict[str, float]  # empty for multi-class models, which pick the most probable class
    labels: list[str]
    attention: dict[str, Heatmap]  # on the original image's geometry
    # How far the image's features lie from the training data's (medattn.ood), and the alarm limit;
    # None for a model whose card carries no such statistics.
    unlikeness: float | None = None
    unlikeness_limit: float | None = None

    @property
    def top_class(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    @property
    def unlike_training_data(self) -> bool:
        return self.unlikeness is not None and self.unlikeness > self.unlikeness_limit


@dataclass(frozen=True)
class BatchResult:
    probabilities: np.ndarray  # (B, C), calibrated
    decisions: np.ndarray  # (B, C) bool
    attention: torch.Tensor  # (B, C, h, w)
    unlikeness: np.ndarray | None  # (B,), or None without the card's statistics


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
        """``image``: a Scan (that frame as displayed) or an H x W or H x W x C array of any dtype.

        The attention heatmaps come from the same forward pass as the probabilities.
        """
        started = time.perf_counter()
        model_input, letterbox = self._prepare(image, frame)
        result = self.run(model_input)
        seconds = time.perf_counter() - started
        return Prediction(
            probabilities={name: float(p) for name, p in zip(self.classes, result.probabilities[0], strict=True)},
            thresholds=dict(self.thresholds),
            labels=[name for name, chosen in zip(self.classes, result.decisions[0], strict=True) if chosen],
            attention={
                name: _on_image(result.attention[0, c].numpy(), letterbox, "attention", name, seconds)
                for c, name in enumerate(self.classes)
            },
            unlikeness=None if result.unlikeness is None else float(result.unlikeness[0]),
            unlikeness_limit=self.card["ood"]["threshold"] if "ood" in self.card else None,
        )

    def run(self, model_inputs: torch.Tensor) -> BatchResult:
        """A batch of prepared inputs (B, channels, S, S) through the model, once."""
        with torch.inference_mode():
            features = self.model.encoder(model_inputs)  # (B, Cf, h, w), kept for the unlikeness
            logits, attention = self.model.classify(features)
        probs = calibration.probabilities(logits.numpy(), self.temperature, self.task)
        unlikeness = None
        if "ood" in self.card:
            unlikeness = ood.distances(features.mean(dim=(2, 3)).numpy(), self.card["ood"])
        return BatchResult(
            probs, calibration.decisions(probs, list(self.thresholds.values()), self.task), attention, unlikeness
        )

    def explain(self, image: Scan | np.ndarray, class_name: str, method: str, frame: int = 0) -> Heatmap:
        """One method's heatmap for one class (see ``medattn.explain.EXPLAINERS``)."""
        started = time.perf_counter()
        model_input, letterbox = self._prepare(image, frame)
        maps = EXPLAINERS[method].maps(self.model, model_input, self.classes.index(class_name))
        return _on_image(maps[0], letterbox, method, class_name, time.perf_counter() - started)

    def _prepare(self, image: Scan | np.ndarray, frame: int) -> tuple[torch.Tensor, Letterbox]:
        pixels = image.display(frame) if isinstance(image, Scan) else np.asarray(image)
        model_input, letterbox = prepare(pixels, self.input_size, self.channels)
        return torch.from_numpy(model_input)[None], letterbox


def _on_image(square_map: np.ndarray, letterbox: Letterbox, method: str, class_name: str, seconds: float) -> Heatmap:
    """The map on the original image, scaled to [0, 1] in place: at 4 megapixels every copy costs."""
    values = letterbox.to_original(np.clip(square_map, 0, None).astype(np.float32))  # small map: cheap to clip
    top = float(values.max(initial=0.0))
    if top > 0:
        values *= 1 / top
    return Heatmap(values, method, class_name, seconds)
