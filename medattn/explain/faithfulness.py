"""A per-image faithfulness check: does the model rely on the region its map highlights?

For the map on screen, its hottest region is hidden (set to ``HIDDEN``, as occlusion and deletion hide)
and the finding scored again; so is the same region moved to ``RANDOM_REGIONS`` other places in the image
(same shape and size, never overlapping it). If hiding the highlighted region lowers the finding more than
hiding it anywhere else does, the model relies on it; if some other place lowers it as much, the map has
not shown what the model used. All variants go through the model as one batch: 2 + RANDOM_REGIONS passes.

The region is sized to the map, not fixed: the hottest pixels holding ``REGION_HEAT`` of its heat, between
``REGION_FRACTION`` bounds of the image. A fixed 5% hid a nodule's attention with a grey disc ten times the
nodule's size, which the model read as a nodule (99.95% before and after); the hottest 1% hides the nodule
and the model's call falls to 2%.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np
import torch

from medattn.explain.base import HIDDEN
from medattn.model import calibration
from medattn.model.predictor import Heatmap, Predictor
from medattn.scan import Scan

REGION_HEAT = 0.8
REGION_FRACTION = (0.01, 0.05)  # the smallest and largest region, as shares of the image
RANDOM_REGIONS = 19  # with the highlighted region, 20 places: beating all 19 others is a 1-in-20 event by chance
# A change in probability smaller than this, wherever the region is hidden, is one no reader would see: the
# model has evidence beyond any one region of this size, and the check cannot tell what it relies on.
VISIBLE_CHANGE = 0.05
_PLACEMENT_TRIES = 50  # random shifts drawn per place wanted, before the region is called too large to move


class Verdict(Enum):
    RELIES = "relies"  # hiding the region lowers the finding more than hiding it anywhere else
    DOES_NOT_RELY = "does not rely"  # hiding it raises the finding, or another place lowers it as much
    CANNOT_TELL = "cannot tell"  # no hidden place changes the probability visibly, or the region cannot move


@dataclass(frozen=True)
class Faithfulness:
    """What hiding the map's hottest region did to one finding, against hiding the same region elsewhere.

    Falls are in the finding's calibrated log-odds (its logit over the temperature), the scale on which
    places are compared: a probability near 100% can fall a long way in log-odds before its percentage
    moves. Probabilities are what a reader is told.
    """

    class_name: str
    region_fraction: float  # the hidden region's share of the image
    probability: float  # as scored
    hidden_probability: float  # with the highlighted region hidden
    fall: float  # in log-odds, hiding the highlighted region
    random_falls: np.ndarray  # (places,) hiding the same region at other places; fewer than asked if it is large
    random_probabilities: np.ndarray  # (places,) the finding's probability with each of those hidden
    seconds: float
    hiding: str = "grey"  # how the regions were hidden: a key of HIDINGS

    @property
    def places_as_damaging(self) -> int:
        """How many other places lowered the finding at least as much as the highlighted one."""
        return int((self.random_falls >= self.fall).sum())

    @property
    def verdict(self) -> Verdict:
        changes = np.abs(np.append(self.random_probabilities, self.hidden_probability) - self.probability)
        if len(self.random_falls) < RANDOM_REGIONS or changes.max() < VISIBLE_CHANGE:
            return Verdict.CANNOT_TELL
        if self.fall > 0 and self.places_as_damaging == 0:  # p = 1/20 by chance
            return Verdict.RELIES
        return Verdict.DOES_NOT_RELY


def hottest_region(values: np.ndarray) -> np.ndarray:
    """The hottest pixels of a map holding ``REGION_HEAT`` of its (positive) heat, bounded by ``REGION_FRACTION``
    of the pixels; never a pixel with no heat (ties at zero would be taken from the last rows)."""
    heat = np.clip(values, 0, None).ravel()
    order = np.argsort(heat, kind="stable")[::-1]
    held = np.cumsum(heat[order])
    wanted = int(np.searchsorted(held, REGION_HEAT * held[-1])) + 1 if held[-1] > 0 else 0
    smallest, largest = (max(1, round(share * heat.size)) for share in REGION_FRACTION)
    chosen = order[: min(max(wanted, smallest), largest)]
    region = np.zeros(heat.size, dtype=bool)
    region[chosen[heat[chosen] > 0]] = True
    return region.reshape(values.shape)


def check_faithfulness(
    predictor: Predictor,
    image: Scan | np.ndarray,
    heatmap: Heatmap,
    frame: int = 0,
    random_regions: int = RANDOM_REGIONS,
    seed: int = 0,
    hiding: str = "grey",
) -> Faithfulness:
    """Check ``heatmap`` (any method's, on the image's geometry) for ``heatmap.class_name`` on ``image``, hiding
    regions as ``HIDINGS[hiding]`` does."""
    started = time.perf_counter()
    model_input, letterbox = predictor.prepare(image, frame)  # (1, channels, S, S)
    inner = letterbox.inner
    # The region is a share of the image, not of the padding around it.
    region = hottest_region(letterbox.to_input(heatmap.values)[inner])  # (h', w') bool
    elsewhere = places_elsewhere(region, random_regions, np.random.default_rng(seed))
    masks = np.zeros((2 + len(elsewhere), *model_input.shape[-2:]), dtype=bool)  # nothing hidden first
    masks[1][inner] = region
    for mask, moved in zip(masks[2:], elsewhere, strict=True):
        mask[inner] = moved
    variants = HIDINGS[hiding](model_input, masks)  # (2 + R, channels, S, S)
    class_index = predictor.classes.index(heatmap.class_name)
    with torch.inference_mode():
        logits = predictor.model(variants)[0].numpy()  # (2 + R, C)
    probabilities = calibration.probabilities(logits, predictor.temperature, predictor.card.task)[:, class_index]
    log_odds = logits[:, class_index] / np.broadcast_to(predictor.temperature, logits.shape[1:])[class_index]
    falls = log_odds[0] - log_odds[1:]
    return Faithfulness(
        heatmap.class_name,
        float(region.mean()),
        float(probabilities[0]),
        float(probabilities[1]),
        float(falls[0]),
        falls[1:],
        probabilities[2:],
        time.perf_counter() - started,
        hiding,
    )


def hidden_by_grey(model_input: torch.Tensor, masks: np.ndarray) -> torch.Tensor:
    """``model_input`` (1, channels, S, S) with each of ``masks`` (M, S, S) set to ``HIDDEN``: (M, channels, S, S)."""
    return torch.where(torch.from_numpy(masks)[:, None], HIDDEN, model_input)


def hidden_by_blur(model_input: torch.Tensor, masks: np.ndarray) -> torch.Tensor:
    """Each mask's pixels replaced by the image blurred (Gaussian, SD ``BLUR_SD`` of the side): the region keeps
    its mean brightness and loses its detail, where a grey patch may itself look like a lesion."""
    channels = model_input[0].numpy()
    sigma = BLUR_SD * channels.shape[-1]
    blurred = torch.from_numpy(np.stack([cv2.GaussianBlur(c, (0, 0), sigma) for c in channels]))[None]
    return torch.where(torch.from_numpy(masks)[:, None], blurred, model_input)


def hidden_by_inpainting(model_input: torch.Tensor, masks: np.ndarray) -> torch.Tensor:
    """Each mask's pixels filled in from their surroundings (OpenCV's Telea inpainting), as if nothing were there."""
    channels = model_input[0].numpy()
    filled = [
        np.stack([cv2.inpaint(c, mask.astype(np.uint8), INPAINT_RADIUS, cv2.INPAINT_TELEA) for c in channels])
        for mask in masks
    ]
    return torch.from_numpy(np.stack(filled))


# How a region is hidden. Grey (the training images' mean) is what occlusion, deletion and insertion use; blur
# and inpainting are measured beside it (benchmarks/faithfulness.py) for small findings, where a grey patch
# the size of a nodule may read as one.
HIDINGS = {"grey": hidden_by_grey, "blur": hidden_by_blur, "inpaint": hidden_by_inpainting}
BLUR_SD = 0.04  # of the input's side: 5 px at 128, wider than a nodule
INPAINT_RADIUS = 3


def places_elsewhere(region: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Up to ``count`` copies of ``region`` (same shape and size) shifted to places that do not overlap it: a
    place that covers part of the highlighted region is no control for it."""
    places = []
    for shift in rng.integers(0, region.shape, size=(count * _PLACEMENT_TRIES, 2)):
        moved = np.roll(region, tuple(shift), axis=(0, 1))
        if not (moved & region).any():
            places.append(moved)
            if len(places) == count:
                break
    return places


# The maps the hidings are compared on: the model's attention, and two controls that cannot reflect what the
# trained model uses (the same network with every weight re-drawn, Adebayo et al. 2018; a map of random noise).
ATTENTION, CONTROLS = "attention", ("randomised-model attention", "random noise")


def hiding_checks(
    predictor: Predictor, images: np.ndarray, labels: np.ndarray, extra: dict | None = None
) -> dict[tuple[str, str, str], list[Faithfulness]]:
    """The check, with every hiding of HIDINGS, on every (image, finding) pair the model calls present and the
    labels (N, C) say is: of the attention, of each control, and of each ``extra`` method (name -> an Explainer):
    (hiding, finding, map) -> the checks, pair by pair."""
    from medattn.explain.quality import randomised_copy

    randomised = randomised_copy(predictor.model)
    noise = np.random.default_rng(0)
    checks: dict[tuple[str, str, str], list[Faithfulness]] = {}
    for image, truth in zip(images, labels, strict=True):
        prediction = predictor.predict(image)
        model_input, _ = predictor.prepare(image)
        for c, finding in enumerate(predictor.classes):
            if not (truth[c] and finding in prediction.labels):
                continue
            with torch.inference_mode():
                random_attention = randomised(model_input)[1][0, c].numpy()
            maps = {
                ATTENTION: prediction.attention[finding],
                CONTROLS[0]: Heatmap(random_attention, "attention", finding, 0.0),
                CONTROLS[1]: Heatmap(noise.random((16, 16), dtype=np.float32), "noise", finding, 0.0),
            } | {name: predictor.explain(image, finding, method) for name, method in (extra or {}).items()}
            for name, heatmap in maps.items():
                if heatmap.values.shape != image.shape:  # token-grid maps onto the image first
                    resized = cv2.resize(heatmap.values.astype(np.float32), image.shape[::-1])
                    heatmap = Heatmap(resized, name, finding, 0.0)
                for hiding in HIDINGS:
                    checks.setdefault((hiding, finding, name), []).append(
                        check_faithfulness(predictor, image, heatmap, hiding=hiding)
                    )
    return checks


def hiding_separation(checks: dict[tuple[str, str, str], list[Faithfulness]]) -> dict[str, dict[str, float]]:
    """Per finding and hiding: the share of the attention's checks saying "relies", less the larger of the two
    controls' shares: how well that hiding tells the maps the model relies on from maps it cannot."""

    def relies(key: tuple[str, str, str]) -> float:
        return sum(check.verdict is Verdict.RELIES for check in checks[key]) / max(1, len(checks[key]))

    findings = dict.fromkeys(finding for _, finding, _ in checks)
    return {
        finding: {
            hiding: relies((hiding, finding, ATTENTION)) - max(relies((hiding, finding, c)) for c in CONTROLS)
            for hiding in HIDINGS
        }
        for finding in findings
    }


def best_hidings(separation: dict[str, dict[str, float]]) -> dict[str, str]:
    """Per finding, the hiding that separates best; grey, what occlusion and deletion use, where none beats it."""
    return {
        finding: max(by_hiding, key=lambda hiding: (by_hiding[hiding], hiding == "grey"))
        for finding, by_hiding in separation.items()
    }
