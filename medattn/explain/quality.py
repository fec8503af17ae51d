"""How good an explanation is, measured rather than eyeballed.

- Localisation against a finding's mask: pointing game, heat mass inside the mask, and the IoU of the
  map's top region with the mask (the top region is as large as the mask, so a perfect map scores 1).
- Faithfulness to the model: deletion and insertion AUC (Petsiuk et al., 2018). Pixels are hidden
  (set to mean grey), or revealed on a mean-grey image, in order of saliency while the class
  probability is tracked; a faithful map makes it fall fast (low deletion AUC) and rise fast (high
  insertion AUC).
- The model-randomisation sanity check (Adebayo et al., 2018): re-initialise the model's layers from
  the top down and measure the map's rank correlation with the trained model's map. A map that
  explains the model must change as the model is destroyed; one that survives is an edge detector.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np
import torch

from medattn.explain.base import HIDDEN, Explainer
from medattn.explain.overlay import top_region
from medattn.model import backbones, calibration
from medattn.model.network import AttentionNet

DELETION_STEPS = 16
# Top-down: each step re-initialises one more part of the network, keeping the ones before it random; the
# encoder's parts follow these (``randomisation_cascade``).
ABOVE_THE_ENCODER = (
    ("classifier head", ("head_weight", "head_bias")),
    ("attention pooling", ("pool",)),
    ("token projection", ("project",)),
)


def randomisation_cascade(model: AttentionNet) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(step, parameter or module names) from the classifier head down to the encoder's first part: medattn's
    own stages ("encoder stage 3" to 1), or a MONAI encoder's layers as MONAI names them (a ResNet's layer4 to
    conv1; a DenseNet's norm5 to conv0, inside its one 'features' module)."""
    prefix, parts = "encoder", _learned_children(model.encoder)
    while len(parts) == 1:
        prefix, parts = f"{prefix}.{parts[0][0]}", _learned_children(parts[0][1])
    own = model.config.backbone == backbones.OWN
    encoder = [
        (f"encoder stage {i + 1}" if own else f"encoder {name}", (f"{prefix}.{name}",))
        for i, (name, _) in enumerate(parts)
    ]
    return ABOVE_THE_ENCODER + tuple(reversed(encoder))


def _learned_children(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    return [(name, child) for name, child in module.named_children() if any(True for _ in child.parameters())]


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    if pixels <= 0:
        return mask.astype(bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def pointing_hit(heatmap: np.ndarray, mask: np.ndarray) -> bool:
    """Whether the heatmap's maximum falls inside ``mask`` (pass an already dilated mask)."""
    peak = np.unravel_index(np.argmax(heatmap), heatmap.shape)
    return bool(mask[peak])


def peaks(heatmap: np.ndarray, count: int, spacing: int) -> list[tuple[int, int]]:
    """The positions (row, column) of the ``count`` highest local maxima of ``heatmap``, highest first, no two
    within ``spacing`` pixels of each other (one token cell: one peak per bump of an upsampled map)."""
    kernel = np.ones((2 * spacing + 1, 2 * spacing + 1), np.uint8)
    heatmap = heatmap.astype(np.float32)  # as cv2 dilates it: a float64 peak would not equal its dilation
    rows, columns = np.nonzero(heatmap >= cv2.dilate(heatmap, kernel))
    chosen: list[tuple[int, int]] = []
    for index in np.argsort(-heatmap[rows, columns], kind="stable"):
        row, column = int(rows[index]), int(columns[index])
        if all(max(abs(row - r), abs(column - c)) > spacing for r, c in chosen):
            chosen.append((row, column))
            if len(chosen) == count:
                break
    return chosen


def mass_inside(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """Share of the (non-negative) heatmap's total inside ``mask``."""
    heatmap = np.clip(heatmap, 0, None)
    total = heatmap.sum()
    return float(heatmap[mask].sum() / total) if total > 0 else 0.0


def top_region_iou(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """IoU of the map's top region, as large as the mask, with the mask."""
    if not mask.any():
        return float("nan")
    region = top_region(heatmap, mask.mean())
    return float((region & mask).sum() / (region | mask).sum())


def otsu_iou(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """IoU with the mask of the map cut as CheXlocalize cuts saliency maps by default (Saporta et al. 2022): scaled
    to 0-255 and binarised at Otsu's threshold. Unlike ``top_region_iou`` it is not told how large the finding is.
    A flat map, which no threshold cuts, scores 0."""
    if not mask.any():
        return float("nan")
    low, high = float(heatmap.min()), float(heatmap.max())
    if high <= low:
        return 0.0
    scaled = np.round((heatmap - low) / (high - low) * 255).astype(np.uint8)
    region = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1] > 0
    return float((region & mask).sum() / (region | mask).sum())


def rank_correlation(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman's correlation with tied values given their mean rank; 0 where either map is flat."""
    a, b = _ranks(np.ravel(first)), _ranks(np.ravel(second))
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    mean_rank_of_value = np.cumsum(counts) - (counts - 1) / 2
    return mean_rank_of_value[inverse]


def deletion_insertion(
    model: AttentionNet,
    inputs: torch.Tensor,
    saliency: np.ndarray,
    class_index: int,
    task: str = calibration.MULTI_LABEL,
    steps: int = DELETION_STEPS,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion AUC per image (B,), for saliency maps (B, S, S) on the model input.

    At step k of ``steps``, the top k/steps of the pixels (ties broken at random) are hidden
    (deletion), or are the only ones shown (insertion). Each AUC is the trapezoidal mean of the class
    probability over the steps.
    """
    size = inputs.shape[-1]
    hidden = torch.full_like(inputs[:1], HIDDEN)
    rng = np.random.default_rng(seed)
    fractions = np.arange(steps + 1) / steps
    deletion, insertion = np.empty(len(inputs)), np.empty(len(inputs))
    for b in range(len(inputs)):
        order = np.lexsort((rng.random(size * size), -saliency[b].ravel()))  # hottest first
        rank = np.empty(size * size, dtype=np.int64)
        rank[order] = np.arange(size * size)
        chosen = torch.from_numpy(rank[None] < np.round(fractions * size * size)[:, None])  # (steps+1, S*S)
        chosen = chosen.view(steps + 1, 1, size, size)
        image = inputs[b : b + 1]
        curves = [
            _class_probability(model, torch.where(chosen, hidden, image), class_index, task),
            _class_probability(model, torch.where(chosen, image, hidden), class_index, task),
        ]
        deletion[b], insertion[b] = (np.trapezoid(curve, fractions) for curve in curves)
    return deletion, insertion


def _class_probability(model: AttentionNet, inputs: torch.Tensor, class_index: int, task: str) -> np.ndarray:
    with torch.inference_mode():
        logits = model(inputs)[0].numpy()
    return calibration.probabilities(logits, np.ones(1), task)[:, class_index]


def randomisation_check(
    model: AttentionNet, explainer: Explainer, inputs: torch.Tensor, class_index: int, seed: int = 0
) -> list[dict]:
    """Mean rank correlation of the maps with the trained model's, after each cascading re-initialisation.

    Works on a copy: the model passed in is never changed.
    """
    trained = explainer.maps(model, inputs, class_index)
    randomised = copy.deepcopy(model)
    steps = []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for layer, names in randomisation_cascade(model):
            for name in names:
                reinitialise(randomised, name)
            maps = explainer.maps(randomised, inputs, class_index)
            correlation = np.mean([rank_correlation(a, b) for a, b in zip(trained, maps, strict=True)])
            steps.append({"layer": layer, "rank_correlation": float(correlation)})
    return steps


def randomised_copy(model: AttentionNet, seed: int = 0) -> AttentionNet:
    """A copy of ``model`` with every part of its ``randomisation_cascade`` re-drawn: the control whose maps cannot
    reflect what the trained model learned (the benchmarks' randomised-model attention)."""
    randomised = copy.deepcopy(model)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for _, names in randomisation_cascade(model):
            for name in names:
                reinitialise(randomised, name)
    return randomised


@torch.no_grad()
def reinitialise(model: AttentionNet, name: str) -> None:
    """Re-draw a parameter, or every parameter of a module, from a default initialisation."""
    if name in dict(model.named_parameters()):
        parameter = model.get_parameter(name)
        parameter.normal_(0.0, parameter.shape[-1] ** -0.5 if parameter.ndim > 1 else 0.1)
        return
    for module in model.get_submodule(name).modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        else:  # a parameter a module holds directly, such as the class queries
            for parameter in module.parameters(recurse=False):
                parameter.normal_(0.0, parameter.shape[-1] ** -0.5)
