"""A per-image faithfulness check: does the model rely on the region its map highlights?

For the map on screen, the hottest ``REGION_FRACTION`` of the image is hidden (set to ``HIDDEN``, as
occlusion and deletion hide) and the finding's logit is scored again. So is the same region moved to
``RANDOM_REGIONS`` random places in the image (same shape, same size). If hiding the highlighted region
lowers the finding more than hiding it anywhere else does, the model relies on it; if some random place
lowers it as much, the map has not shown what the model used. All variants go through the model as one
batch: 1 + 1 + RANDOM_REGIONS forward passes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from medattn.explain.base import HIDDEN
from medattn.explain.overlay import top_region
from medattn.model import calibration
from medattn.model.predictor import Heatmap, Predictor
from medattn.scan import Scan

REGION_FRACTION = 0.05
RANDOM_REGIONS = 19  # with the highlighted region, 20 places: beating all 19 others is a 1-in-20 event by chance


@dataclass(frozen=True)
class Faithfulness:
    """What hiding the map's hottest region did to one finding, against hiding the same region elsewhere.

    Falls are in the finding's calibrated log-odds (its logit over the temperature): a probability near
    100% can fall a long way in log-odds before its percentage moves.
    """

    class_name: str
    region_fraction: float
    probability: float  # as scored
    hidden_probability: float  # with the highlighted region hidden
    fall: float  # in log-odds, hiding the highlighted region
    random_falls: np.ndarray  # (RANDOM_REGIONS,) hiding the same region at random places
    seconds: float

    @property
    def places_as_damaging(self) -> int:
        """How many random places lowered the finding at least as much as the highlighted one."""
        return int((self.random_falls >= self.fall).sum())

    @property
    def relies_on_region(self) -> bool:
        """The highlighted region lowers the finding more than every random place does (p = 1/20 by chance)."""
        return self.fall > 0 and self.places_as_damaging == 0


def check_faithfulness(
    predictor: Predictor,
    image: Scan | np.ndarray,
    heatmap: Heatmap,
    frame: int = 0,
    region_fraction: float = REGION_FRACTION,
    random_regions: int = RANDOM_REGIONS,
    seed: int = 0,
) -> Faithfulness:
    """Check ``heatmap`` (any method's, on the image's geometry) for ``heatmap.class_name`` on ``image``."""
    started = time.perf_counter()
    model_input, letterbox = predictor.prepare(image, frame)  # (1, channels, S, S)
    inner = (
        slice(letterbox.top, letterbox.top + letterbox.inner_height),
        slice(letterbox.left, letterbox.left + letterbox.inner_width),
    )
    # The region is a share of the image, not of the padding around it.
    region = top_region(letterbox.to_input(heatmap.values)[inner], region_fraction)  # (h', w') bool
    rng = np.random.default_rng(seed)
    shifts = rng.integers(0, region.shape, size=(random_regions, 2))
    masks = np.zeros((2 + random_regions, *model_input.shape[-2:]), dtype=bool)  # nothing hidden first
    masks[1][inner] = region
    for mask, shift in zip(masks[2:], shifts, strict=True):
        mask[inner] = np.roll(region, tuple(shift), axis=(0, 1))  # same shape and size, elsewhere in the image
    variants = torch.where(torch.from_numpy(masks)[:, None], HIDDEN, model_input)  # (2 + R, channels, S, S)
    class_index = predictor.classes.index(heatmap.class_name)
    with torch.inference_mode():
        logits = predictor.model(variants)[0].numpy()  # (2 + R, C)
    probabilities = calibration.probabilities(logits, predictor.temperature, predictor.card.task)[:, class_index]
    log_odds = logits[:, class_index] / np.broadcast_to(predictor.temperature, logits.shape[1:])[class_index]
    falls = log_odds[0] - log_odds[1:]
    return Faithfulness(
        heatmap.class_name,
        region_fraction,
        float(probabilities[0]),
        float(probabilities[1]),
        float(falls[0]),
        falls[1:],
        time.perf_counter() - started,
    )
