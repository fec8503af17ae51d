"""Does a map stay put when the image changes in ways no reader could see?

Saliency maps of chest radiograph models have been found to change a lot under perturbations a radiologist
cannot see (Zhang et al., 2023, on CheXpert), and no viewer tells its reader how stable the map in front of
them is. This check makes three such changes to the model's input: noise of ``NOISE_SHARE`` of its range, a
one-pixel shift across and down, and JPEG re-encoding at quality ``JPEG_QUALITY``. It computes the map again
for each (the shifted ones shifted back) and measures how much of the map's hottest ``TOP_SHARE`` of the image
stays where it was (the overlap, IoU, of the two top regions). A change that moves the finding's probability by
``SAME_PREDICTION`` or more, or flips its call, is not one that leaves the model's answer alone: it is reported
as such and not counted in the map's stability. All variants go through the method as one batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from medattn.explain.base import Explainer
from medattn.explain.overlay import top_region
from medattn.model import calibration
from medattn.model.predictor import Predictor
from medattn.scan import Scan

NOISE_SHARE = 0.01  # the noise's SD, as a share of the image's range of input values
JPEG_QUALITY = 90
SAME_PREDICTION = 0.05  # a probability change smaller than this leaves the model's answer as it was
TOP_SHARE = 0.05  # the share of the image whose place is compared: the map's hottest 5%
# At or above this overlap at worst the map is called stable; chosen on the benchmark's held-out seed, where
# the trained model's attention reaches it on most called findings (benchmarks/stability.py, docs/model.md).
STABLE_FROM = 0.5
CHANGES = ("noise", "shifted across", "shifted down", "JPEG")


@dataclass(frozen=True)
class Stability:
    """How one finding's map held under each change (``CHANGES``): the overlap of its hottest region with the
    map's own, for the changes that left the finding's probability as it was; those that did not are listed."""

    class_name: str
    overlaps: dict[str, float]  # change -> IoU of the hottest TOP_SHARE, map against itself
    answer_changed: tuple[str, ...]  # changes that moved the finding's probability, or flipped its call
    seconds: float

    @property
    def worst(self) -> float | None:
        """The least overlap over the changes that kept the answer; None where none did."""
        return min(self.overlaps.values()) if self.overlaps else None

    @property
    def stable(self) -> bool | None:
        return None if self.worst is None else self.worst >= STABLE_FROM


def changed_inputs(model_input: torch.Tensor, inner: tuple[slice, slice], seed: int = 0) -> torch.Tensor:
    """``model_input`` (1, channels, S, S) and its ``CHANGES``, one after it each: (1 + 4, channels, S, S). Only
    the image (``inner``, inside the letterbox's padding) is changed."""
    image = model_input[0][(slice(None), *inner)].numpy()  # (channels, h, w)
    low, high = float(image.min()), float(image.max())
    span = max(high - low, 1e-6)
    noise = np.random.default_rng(seed).normal(0.0, NOISE_SHARE * span, image.shape).astype(np.float32)
    across = np.concatenate([image[..., :, :1], image[..., :, :-1]], axis=-1)  # one pixel right, edge repeated
    down = np.concatenate([image[..., :1, :], image[..., :-1, :]], axis=-2)  # one pixel down
    jpeg = np.stack([_jpeg(channel, low, span) for channel in image])
    batch = model_input.repeat(1 + len(CHANGES), 1, 1, 1)
    for index, changed in enumerate((image + noise, across, down, jpeg), start=1):
        batch[index][(slice(None), *inner)] = torch.from_numpy(np.ascontiguousarray(changed))
    return batch


def _jpeg(channel: np.ndarray, low: float, span: float) -> np.ndarray:
    """A channel of the model's input through JPEG at ``JPEG_QUALITY``, as 8 bits over its range and back."""
    grey = np.round((channel - low) / span * 255).astype(np.uint8)
    _, encoded = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255 * span + low


def check_stability(
    predictor: Predictor,
    image: Scan | np.ndarray,
    method: Explainer,
    class_name: str,
    frame: int = 0,
    model: torch.nn.Module | None = None,
) -> Stability:
    """How ``method``'s map of ``class_name`` on ``image`` holds under ``CHANGES``. ``model``: another network
    of the predictor's shape to explain instead (the benchmark's randomised control); the predictor's own by
    default."""
    started = time.perf_counter()
    model = model or predictor.model
    model_input, letterbox = predictor.prepare(image, frame)
    inner = letterbox.inner
    batch = changed_inputs(model_input, inner)
    class_index = predictor.classes.index(class_name)
    with torch.inference_mode():
        logits = model(batch)[0].numpy()  # (1 + changes, classes)
    probabilities = calibration.probabilities(logits, predictor.temperature, predictor.card.task)[:, class_index]
    threshold = predictor.thresholds.get(class_name, 0.5)
    maps = method.maps(model, batch, class_index)  # (1 + changes, h, w) on the input's grid
    size = model_input.shape[-1]
    on_input = [cv2.resize(m.astype(np.float32), (size, size), interpolation=cv2.INTER_LINEAR)[inner] for m in maps]
    original = on_input[0]
    back = {  # each changed map brought back onto the original's pixels, and the pixels both cover
        "noise": (on_input[1], original),
        "shifted across": (on_input[2][:, 1:], original[:, :-1]),
        "shifted down": (on_input[3][1:, :], original[:-1, :]),
        "JPEG": (on_input[4], original),
    }
    overlaps, answer_changed = {}, []
    for index, change in enumerate(CHANGES, start=1):
        moved = abs(probabilities[index] - probabilities[0]) >= SAME_PREDICTION
        flipped = (probabilities[index] >= threshold) != (probabilities[0] >= threshold)
        if moved or flipped:
            answer_changed.append(change)
            continue
        changed, same_pixels = back[change]
        overlaps[change] = _top_overlap(changed, same_pixels)
    return Stability(class_name, overlaps, tuple(answer_changed), time.perf_counter() - started)


def _top_overlap(first: np.ndarray, second: np.ndarray) -> float:
    """IoU of the two maps' hottest TOP_SHARE; 1 where both are flat (nothing to place), 0 where one is."""
    first_flat, second_flat = np.ptp(first) == 0, np.ptp(second) == 0
    if first_flat or second_flat:
        return float(first_flat and second_flat)
    a, b = top_region(first, TOP_SHARE), top_region(second, TOP_SHARE)
    return float((a & b).sum() / (a | b).sum())


# The maps whose stability the card records: the model's own, the two gradient maps nearest it, and the
# randomised model's attention (the control a stable-looking map must beat).
MEASURED_METHODS = ("attention", "hirescam", "gradcam")
RANDOMISED = "randomised attention"


def stability_checks(predictor: Predictor, images: np.ndarray, labels: np.ndarray) -> dict[tuple[str, str], list]:
    """The check on every (image, finding) pair the model calls present and the labels (N, C) say is, image by
    image, for each of ``MEASURED_METHODS`` and for the attention of the same network with every weight re-drawn
    (the randomisation control of Adebayo et al., 2018): (finding, map) -> its Stability per pair, in image order."""
    from medattn.explain import EXPLAINERS
    from medattn.explain.quality import randomised_copy

    randomised = randomised_copy(predictor.model)
    checks: dict[tuple[str, str], list[Stability]] = {}
    for image, truth in zip(images, labels, strict=True):
        called = predictor.predict(image).labels
        for finding in (f for f, present in zip(predictor.classes, truth, strict=True) if present and f in called):
            for column in (*MEASURED_METHODS, RANDOMISED):
                method, model = (column, None) if column != RANDOMISED else ("attention", randomised)
                check = check_stability(predictor, image, EXPLAINERS[method], finding, model=model)
                checks.setdefault((finding, column), []).append(check)
    return checks


def stability_figures(checks: dict[tuple[str, str], list]) -> dict:
    """``stability_checks`` summed up, as the card holds them: per finding and map, the pairs, the median worst
    overlap, the share called stable and the share where a change moved the model's answer; and per finding, how
    well the worst overlap tells the trained attention from the randomised one (AUC, 0.5 for none)."""
    per_finding: dict[str, dict[str, dict]] = {}
    for (finding, column), results in checks.items():
        worst = [r.worst for r in results if r.worst is not None]
        per_finding.setdefault(finding, {})[column] = {
            "pairs": len(results),
            "median_worst": float(np.median(worst)) if worst else None,
            "stable": sum(w >= STABLE_FROM for w in worst) / len(results),
            "answer_changed": sum(bool(r.answer_changed) for r in results) / len(results),
        }
    separation = {
        finding: _separation(
            [r.worst for r in checks[finding, "attention"] if r.worst is not None],
            [r.worst for r in checks[finding, RANDOMISED] if r.worst is not None],
        )
        for finding in per_finding
    }
    return {"methods": per_finding, "separation": separation}


def _separation(higher: list[float], lower: list[float]) -> float | None:
    """P(a value of ``higher`` > one of ``lower``), ties counted half: the AUC; None where either is empty."""
    auc = calibration.roc_auc(np.r_[np.ones(len(higher)), np.zeros(len(lower))], np.r_[higher, lower])
    return None if np.isnan(auc) else auc
