"""Predictor: a loaded model with its card, turning a Scan or an image into a Prediction."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from medattn.assets import DEFAULT_MODEL_DIR
from medattn.errors import ModelError
from medattn.model import calibration, unlikeness
from medattn.model.card import ModelCard, gate_scores, withheld, withholds
from medattn.model.checkpoint import load_model
from medattn.model.network import AttentionNet, for_inference
from medattn.model.preprocessing import Letterbox
from medattn.scan import Scan


@dataclass(frozen=True)
class Heatmap:
    """float32 (H, W) in [0, 1] on the original image's geometry (its pixel grid, or that grid scaled down
    to a screen's size, same aspect), scaled by its maximum.

    For the model's attention, ``peak_times_uniform`` is that maximum's weight relative to uniform
    attention (1 = every token weighed alike), so ``values * peak_times_uniform`` puts the map on a scale
    that means the same for every scan. Other methods have no such scale: None.
    """

    values: np.ndarray
    method: str
    class_name: str
    seconds: float
    peak_times_uniform: float | None = None


class SaliencyMethod(Protocol):
    """What ``Predictor.explain`` needs of a method; every ``medattn.explain.Explainer`` is one."""

    name: str

    def maps(self, model: AttentionNet, inputs: torch.Tensor, class_index: int) -> np.ndarray: ...


@dataclass(frozen=True)
class Prediction:
    """Calibrated probabilities, the classes above their thresholds, and each class's attention heatmap."""

    probabilities: dict[str, float]
    thresholds: dict[str, float]  # empty for multi-class models, which pick the most probable class
    labels: list[str]
    attention: dict[str, Heatmap]  # on the original image's geometry
    # How far the image's features lie from the training data's, and how noisy its input is, with their alarm
    # limits (medattn.model.unlikeness); None for a model whose card carries no such statistics (no noise limit:
    # a card fitted before there was one).
    unlikeness: float | None = None
    unlikeness_limit: float | None = None
    noise: float | None = None
    noise_limit: float | None = None
    # Per class, the share of the image the attention is spread over: its perplexity (the exponential of
    # its entropy) over the number of tokens; 1 is uniform. See DIFFUSE_SPREAD.
    spread: dict[str, float] = field(default_factory=dict)

    @property
    def top_class(self) -> str:
        return max(self.probabilities, key=self.probabilities.get)

    @property
    def unlike_training_data(self) -> bool:
        """Whether the app withholds this output: the scan is beyond the unlikeness or the noise limit."""
        return withheld(self.unlikeness, self.unlikeness_limit, self.noise, self.noise_limit)

    @property
    def too_noisy(self) -> bool:
        """Withheld for its noise alone, its features within the limit: the warning then says so."""
        return self.unlike_training_data and not withheld(self.unlikeness, self.unlikeness_limit, None, None)

    @property
    def gate_reason(self) -> str | None:
        """Why the output is withheld, in a few words with the figures (a list's line), or None where it is not."""
        if not self.unlike_training_data:
            return None
        if self.too_noisy:
            return f"Noisier than the training images (noise {self.noise:.3f} > {self.noise_limit:.3f})"
        return f"Unlike the training data (unlikeness {self.unlikeness:.0f} > {self.unlikeness_limit:.0f})"

    @property
    def unlikeness_warning(self) -> str | None:
        """The plain-words warning every screen and report carries beside this prediction's numbers: which limit
        the scan is beyond, with its figure (both, where it is beyond both)."""
        if not self.unlike_training_data:
            return None
        reasons = []
        if not self.too_noisy:
            reasons.append(
                f"does not look like the images this model was trained on (unlikeness {self.unlikeness:.0f}; the "
                f"limit is {self.unlikeness_limit:.0f})"
            )
        if withheld(None, None, self.noise, self.noise_limit):
            reasons.append(
                f"is noisier than the images this model was trained on (relative noise {self.noise:.3f}; the limit "
                f"is {self.noise_limit:.3f}), and on such noise the model's calls are often wrong"
            )
        return (
            f"This scan {' and '.join(reasons)}. Its findings, probabilities and heatmaps are not meaningful here, "
            "however confident they look."
        )


@dataclass(frozen=True)
class BatchResult:
    probabilities: np.ndarray  # (B, C), calibrated
    decisions: np.ndarray  # (B, C) bool
    attention: torch.Tensor  # (B, C, h, w)
    unlikeness: np.ndarray | None  # (B,), or None without the card's statistics
    noise: np.ndarray | None = None  # (B,) relative noise, or None without the card's noise limit
    # (B,) each image's nearest approach to withholding (medattn.model.card.gate_scores): above 1 or NaN,
    # the app withholds its output; None without the card's statistics
    gate: np.ndarray | None = None

    @property
    def withheld(self) -> np.ndarray:
        """(B,) bool: the images whose output the app withholds."""
        return np.zeros(len(self.probabilities), bool) if self.gate is None else withholds(self.gate)


def gate_probes(side: int) -> dict[str, np.ndarray]:
    """Images that are plainly no scan, ``side`` px square, which a model's gate must withhold (``Predictor``)."""
    return {
        "uniform noise": np.random.default_rng(0).random((side, side)),
        "a checkerboard": (np.indices((side, side)).sum(axis=0) // max(side // 16, 1) % 2).astype(np.float64),
    }


class Predictor:
    """Thread-safe for prediction: the model is only read, under ``torch.inference_mode``."""

    def __init__(self, model: AttentionNet, card: ModelCard):
        self.model, self.card = model, card
        self.classes: list[str] = list(card.classes)
        self.preprocessing = card.preprocessing
        self.temperature = np.asarray(card.temperature, dtype=np.float64)
        # Multi-class models decide by the most probable class and carry no thresholds.
        self.thresholds: dict[str, float] = (
            dict(zip(self.classes, card.thresholds, strict=True)) if card.thresholds else {}
        )
        self._check_the_gate()

    def _check_the_gate(self) -> None:
        """The card's alarm limit must flag images that are plainly no scan: uniform noise and a checkerboard
        (the shipped model puts them 9 and 33 times past its limit). A limit that lets them through switches
        the gate off (a card edited to 1e12 let a real chest CR show 99% with no warning): it is refused."""
        if not self.card.unlikeness:
            return
        probes = gate_probes(self.preprocessing.input_size)
        inputs = torch.cat([self.prepare(probe)[0] for probe in probes.values()])
        limit = self.card.unlikeness.threshold
        result = self.run(inputs)
        for probe, distance, withheld_probe in zip(probes, result.unlikeness, result.withheld, strict=True):
            if not withheld_probe:
                raise ModelError(
                    f"The model card's alarm limits let {probe} through (its unlikeness is {distance:.0f}, the limit "
                    f"{limit:g}): the gate that withholds scans unlike the training data would not work. Refit the "
                    "limits on held-out images (medattn fit-ood)."
                )

    @classmethod
    def load(cls, model_dir: Path | str) -> Predictor:
        """The model in ``model_dir``, prepared for serving (``for_inference``)."""
        model, card = load_model(model_dir)
        return cls(for_inference(model), card)

    @classmethod
    def default(cls) -> Predictor:
        return cls.load(DEFAULT_MODEL_DIR)

    @property
    def name(self) -> str:
        return self.card.title

    def display_name(self, class_name: str) -> str:
        return self.card.display_name(class_name)

    def prepare(self, image: Scan | np.ndarray, frame: int = 0) -> tuple[torch.Tensor, Letterbox]:
        """The model input (1, channels, S, S) for a Scan's frame (its model pixels: never the display
        window) or an H x W or H x W x C array of any dtype, and the letterbox that placed it."""
        pixels = image.model_pixels(frame) if isinstance(image, Scan) else np.asarray(image)
        model_input, letterbox = self.preprocessing.prepare(pixels)
        return torch.from_numpy(model_input)[None], letterbox

    def predict(self, image: Scan | np.ndarray, frame: int = 0, max_side: int | None = None) -> Prediction:
        """The attention heatmaps come from the same forward pass as the probabilities. They lie on the
        original image's geometry, scaled to at most ``max_side`` pixels on the long side if given (a
        screen's worth: at 4 megapixels, three full-size maps cost more than the model)."""
        started = time.perf_counter()
        model_input, letterbox = self.prepare(image, frame)
        result = self.run(model_input, [letterbox])
        seconds = time.perf_counter() - started
        tokens = result.attention.shape[-2] * result.attention.shape[-1]
        return Prediction(
            probabilities={name: float(p) for name, p in zip(self.classes, result.probabilities[0], strict=True)},
            thresholds=dict(self.thresholds),
            labels=[name for name, chosen in zip(self.classes, result.decisions[0], strict=True) if chosen],
            attention={
                name: _on_image(result.attention[0, c].numpy(), letterbox, "attention", name, seconds, max_side, tokens)
                for c, name in enumerate(self.classes)
            },
            spread=dict(zip(self.classes, attention_spread(result.attention[0]).tolist(), strict=True)),
            unlikeness=None if result.unlikeness is None else float(result.unlikeness[0]),
            unlikeness_limit=self.card.unlikeness.threshold if self.card.unlikeness else None,
            noise=None if result.noise is None else float(result.noise[0]),
            noise_limit=self.card.unlikeness.noise_limit if self.card.unlikeness else None,
        )

    def run(self, model_inputs: torch.Tensor, letterboxes: Sequence[Letterbox] | None = None) -> BatchResult:
        """A batch of prepared inputs (B, channels, S, S) through the model, once. ``letterboxes``: where each image
        lies in its input, for the noise measurement (None: each fills its input)."""
        device = next(self.model.parameters()).device  # a model moved to a GPU (cluster scoring) reads there
        with torch.inference_mode():
            features = self.model.encoder(model_inputs.to(device))  # (B, Cf, h, w), kept for the unlikeness
            logits, attention = self.model.classify(features)
        features, logits, attention = features.cpu(), logits.cpu(), attention.cpu()
        probs = calibration.probabilities(logits.numpy(), self.temperature, self.card.task)
        decisions = calibration.decisions(probs, list(self.thresholds.values()), self.card.task)
        statistics = self.card.unlikeness
        if not statistics:
            return BatchResult(probs, decisions, attention, None)
        distances = unlikeness.distances(features.mean(dim=(2, 3)).numpy(), statistics)
        noise = None if statistics.noise_limit is None else unlikeness.noise_levels(model_inputs, letterboxes)
        gate = gate_scores(distances, statistics.threshold, noise, statistics.noise_limit)
        return BatchResult(probs, decisions, attention, distances, noise, gate)

    def explain(
        self,
        image: Scan | np.ndarray,
        class_name: str,
        method: SaliencyMethod,
        frame: int = 0,
        max_side: int | None = None,
    ) -> Heatmap:
        """One method's heatmap for one class (see ``medattn.explain.EXPLAINERS``), sized as in ``predict``."""
        started = time.perf_counter()
        model_input, letterbox = self.prepare(image, frame)
        maps = method.maps(self.model, model_input, self.classes.index(class_name))
        return _on_image(maps[0], letterbox, method.name, class_name, time.perf_counter() - started, max_side)


# Attention spread over more than this share of the image is called diffuse: no focal evidence. Validated on
# the benchmark's held-out seed (benchmarks/map_scale.py): no more than a few percent of the default model's
# maps for findings that are present pass it, and about half of those for absent nodules and effusions do.
DIFFUSE_SPREAD = 0.5


def attention_spread(attention: torch.Tensor) -> np.ndarray:
    """Each class's attention perplexity over the number of tokens, (C,) from (C, h, w): the share of the
    image it is spread over, from 1/N (one token) to 1 (uniform)."""
    weights = attention.flatten(1).double()  # (C, N)
    entropy = -(weights * torch.log(weights.clamp_min(1e-30))).sum(dim=1)
    return (torch.exp(entropy) / weights.shape[1]).numpy()


def _on_image(
    square_map: np.ndarray,
    letterbox: Letterbox,
    method: str,
    class_name: str,
    seconds: float,
    max_side: int | None,
    tokens: int | None = None,
) -> Heatmap:
    """The map on the original image (or its scaled copy), scaled to [0, 1] in place: every copy costs.
    ``tokens``, for attention weights: their count, which puts the peak on the relative-to-uniform scale."""
    shape = None
    if max_side and max(letterbox.height, letterbox.width) > max_side:
        scale = max_side / max(letterbox.height, letterbox.width)
        shape = (max(1, round(letterbox.height * scale)), max(1, round(letterbox.width * scale)))
    values = letterbox.to_original(np.clip(square_map, 0, None).astype(np.float32), shape)  # small map: cheap
    top = float(values.max(initial=0.0))
    if top > 0:
        values *= 1 / top
    return Heatmap(values, method, class_name, seconds, top * tokens if tokens else None)
