"""Evaluation: classification and calibration figures of a model on labelled data, for its card.

The metrics are plain numpy with no model dependency; explanation quality lives in
``medattn.explain.quality``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch

from medattn.errors import DatasetError
from medattn.explain import EXPLAINERS
from medattn.explain.quality import (
    deletion_insertion,
    dilate,
    mass_inside,
    otsu_iou,
    pointing_hit,
    randomisation_check,
    top_region_iou,
)
from medattn.model import calibration
from medattn.model.calibration import MULTI_CLASS, roc_auc
from medattn.model.card import ModelCard
from medattn.model.network import AttentionNet
from medattn.model.preprocessing import Letterbox
from medattn.training.datasets import LabelledImages, for_model
from medattn.training.inputs import ModelInputs
from medattn.training.public import Outline


def reliability(labels: np.ndarray, probabilities: np.ndarray, bins: int = 15) -> list[dict[str, float]]:
    """Equal-width probability bins (empty ones left out): mean predicted probability, observed frequency,
    and the share of predictions in the bin. Every (case, class) pair counts as one prediction."""
    labels, probabilities = np.ravel(labels).astype(float), np.ravel(probabilities)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    return [
        {
            "predicted": float(probabilities[which == b].mean()),
            "observed": float(labels[which == b].mean()),
            "share": float((which == b).mean()),
        }
        for b in range(bins)
        if (which == b).any()
    ]


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = 15) -> float:
    """ECE: the share-weighted gap between predicted and observed frequency over the reliability bins."""
    bins_seen = reliability(labels, probabilities, bins)
    return float(sum(b["share"] * abs(b["predicted"] - b["observed"]) for b in bins_seen))


def roc_curve(labels: np.ndarray, scores: np.ndarray, points: int = 101) -> dict[str, list[float]]:
    """False- and true-positive rates at ``points`` thresholds spread over the scores' quantiles."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=np.float64)
    thresholds = np.unique(np.quantile(scores, np.linspace(0, 1, points)))[::-1]
    predicted = scores[None, :] >= thresholds[:, None]  # (thresholds, cases)
    tpr = (predicted & labels).sum(axis=1) / max(labels.sum(), 1)
    fpr = (predicted & ~labels).sum(axis=1) / max((~labels).sum(), 1)
    return {"fpr": [0.0, *fpr.round(4).tolist(), 1.0], "tpr": [0.0, *tpr.round(4).tolist(), 1.0]}


@torch.inference_mode()
def run_model(model: AttentionNet, inputs: ModelInputs | torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Raw logits (N, C) for prepared inputs (a set's, in its own batches; or a stack, ``batch_size`` at a time), on
    whatever device the model is on."""
    model.eval()
    device = next(model.parameters()).device
    chunks = inputs.split(batch_size) if isinstance(inputs, torch.Tensor) else (x for x, _ in inputs.batches())
    return torch.cat([model(chunk.to(device))[0].cpu() for chunk in chunks]).numpy()


def macro_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(np.nanmean([roc_auc(labels[:, c], scores[:, c]) for c in range(labels.shape[1])]))


def evaluate(
    model: AttentionNet,
    card: ModelCard,
    dataset: LabelledImages,
    explain_cases: int = 0,
    workers: int = 0,
    methods: Sequence[str] = tuple(EXPLAINERS),
) -> dict[str, Any]:
    """Classification and calibration figures; with ``explain_cases``, each of the explanation ``methods``' quality
    on up to that many cases per class (``medattn.explain.quality``). Image files are read batch by batch,
    by ``workers`` processes (``medattn.training.inputs``)."""
    task, classes = card.task, card.classes
    dataset = for_model(dataset, classes, card.display_names, task)
    inputs = ModelInputs(dataset.images, card.preprocessing, workers)
    labels = dataset.labels
    logits = run_model(model, inputs)
    raw = calibration.probabilities(logits, np.ones(1), task)
    calibrated = calibration.probabilities(logits, np.asarray(card.temperature), task)
    decided = calibration.decisions(calibrated, np.asarray(card.thresholds), task)
    # The classes the data labels (``datasets.for_model`` leaves the others NaN): every figure is of them alone.
    known = [c for c in range(len(classes)) if not np.isnan(labels[:, c]).any()]
    per_class = {}
    for c in known:
        name, truth = classes[c], labels[:, c] > 0
        per_class[name] = {
            "auc": roc_auc(truth, calibrated[:, c]),
            "accuracy": float((decided[:, c] == truth).mean()),
            "f1": calibration.f1_score(truth, decided[:, c]),
            "confusion": {
                "true_positive": int((decided[:, c] & truth).sum()),
                "false_positive": int((decided[:, c] & ~truth).sum()),
                "false_negative": int((~decided[:, c] & truth).sum()),
                "true_negative": int((~decided[:, c] & ~truth).sum()),
            },
        }
    metrics = {
        "data": dataset.source,
        "split": dataset.split,
        "cases": len(dataset),
        "macro_auc": float(np.nanmean([v["auc"] for v in per_class.values()])),
        "ece_before_calibration": expected_calibration_error(labels[:, known], raw[:, known]),
        "ece_after_calibration": expected_calibration_error(labels[:, known], calibrated[:, known]),
        "per_class": per_class,
        "roc": {classes[c]: roc_curve(labels[:, c] > 0, calibrated[:, c]) for c in known},
        "reliability": {
            "before": reliability(labels[:, known], raw[:, known]),
            "after": reliability(labels[:, known], calibrated[:, known]),
        },
    }
    if task == MULTI_CLASS:
        metrics["accuracy"] = float((decided.argmax(axis=1) == labels.argmax(axis=1)).mean())
    if explain_cases:
        metrics["explanations"] = explanation_quality(model, inputs, dataset, task, explain_cases, methods=methods)
    return metrics


MASK_METRICS = {
    "pointing_game": pointing_hit,
    "mass_in_mask": mass_inside,
    "top_region_iou": top_region_iou,
    "otsu_iou": otsu_iou,  # CheXlocalize's IoU
}


def explanation_quality(
    model: AttentionNet,
    inputs: ModelInputs,
    dataset: LabelledImages,
    task: str,
    cases_per_class: int = 100,
    sanity_cases_per_class: int = 6,
    methods: Sequence[str] = tuple(EXPLAINERS),
) -> dict:
    """Each of ``methods``' localisation (against the dataset's masks, or its boxes), faithfulness, cost and
    sanity, per class and overall, and random-order deletion and insertion beside them.

    Each class is explained on up to ``cases_per_class`` of the cases that have it (with boxes, that have a box
    of it). Masks and boxes are grown by one token cell, the resolution of the attention and Grad-CAM grids.
    """
    size = inputs.recipe.input_size
    cell = size // model.config.grid_size
    regions = _regions_kind(dataset)
    results = {"data": dataset.source, "cases_per_class": cases_per_class, "methods": {}, "regions": regions}
    tallies = {method: {"per_class": {}, "seconds": 0.0, "images": 0, "sanity": []} for method in methods}
    random_order = {}
    for c, name in enumerate(dataset.classes):
        # The cases it is explained on: with a dataset's regions, those that have one of the finding; a class no
        # case has is left out. Read and prepared once for every method (files are decoded when reached).
        cases = np.flatnonzero(dataset.labels[:, c] > 0)  # NaN: a class the data does not label
        if regions in ("boxes", "outlines"):
            cases = np.array([i for i in cases if any(r.finding == name for r in dataset.regions[i])], dtype=int)
        cases = cases[:cases_per_class]
        if not len(cases):
            continue
        cases_inputs, letterboxes = next(inputs.batches(cases, len(cases)))
        found = (
            None
            if regions is None
            else [_region(dataset, i, c, b, cell) for i, b in zip(cases, letterboxes, strict=True)]
        )
        # The reference a faithful map must beat: pixels hidden (or revealed) in random order. A flat map is
        # that order, since deletion_insertion breaks ties at random.
        deletion, insertion = deletion_insertion(model, cases_inputs, np.zeros((len(cases), size, size)), c, task)
        random_order[name] = {"cases": len(cases), "deletion_auc": float(deletion.mean()),
                              "insertion_auc": float(insertion.mean())}  # fmt: skip
        for method, tally in tallies.items():
            explainer = EXPLAINERS[method]
            started = time.perf_counter()
            maps = explainer.maps(model, cases_inputs, c)
            tally["seconds"] += time.perf_counter() - started
            tally["images"] += len(cases)
            on_input = np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR) for m in maps])
            deletion, insertion = deletion_insertion(model, cases_inputs, on_input, c, task)
            # An empty map (no positive value anywhere) paints nothing on screen and misses the pointing game.
            empty = maps.reshape(len(maps), -1).max(axis=1) <= 0
            scores = {"deletion_auc": deletion.mean(), "insertion_auc": insertion.mean(), "empty_maps": empty.mean()}
            if found is not None:
                for key, metric in MASK_METRICS.items():
                    scores[key] = np.mean([metric(m, r) for m, r in zip(on_input, found, strict=True)])
            tally["per_class"][name] = {"cases": len(cases)} | {key: float(value) for key, value in scores.items()}
            tally["sanity"].append(randomisation_check(model, explainer, cases_inputs[:sanity_cases_per_class], c))
    if not random_order:
        raise DatasetError(f"No case of {dataset.source} has a finding of this model to explain (with its region).")
    results["random_order"] = {"overall": _macro_mean(random_order), "per_class": random_order}
    for method, tally in tallies.items():
        results["methods"][method] = {
            "seconds_per_image": tally["seconds"] / max(tally["images"], 1),
            "overall": _macro_mean(tally["per_class"]),
            "per_class": tally["per_class"],
            "randomisation": [
                {"layer": steps[0]["layer"], "rank_correlation": float(np.mean([s["rank_correlation"] for s in steps]))}
                for steps in zip(*tally["sanity"], strict=True)
            ],
        }
    return results


def _region(dataset: LabelledImages, index: int, c: int, letterbox: Letterbox, cell: int) -> np.ndarray:
    """Where finding ``c`` is in image ``index``, on its model input, grown by one token cell: its mask, or the
    dataset's regions of that finding, every reader's united (a finding two readers boxed is where either put it)."""
    if dataset.masks is not None:
        return dilate(dataset.masks[index, c], cell)
    drawn = [region.on_input(letterbox) for region in dataset.regions[index] if region.finding == dataset.classes[c]]
    return dilate(np.logical_or.reduce(drawn), cell)


def _regions_kind(dataset: LabelledImages) -> str | None:
    """What localisation is measured against: the benchmark's "masks", a dataset's "boxes" or "outlines", or
    nothing."""
    if dataset.masks is not None:
        return "masks"
    if dataset.regions is None:
        return None
    return "outlines" if any(isinstance(r, Outline) for regions in dataset.regions for r in regions) else "boxes"


def _macro_mean(per_class: dict[str, dict]) -> dict[str, float]:
    """Each figure's mean over the findings, each finding counting once (the project's one averaging rule)."""
    keys = [key for key in next(iter(per_class.values())) if key != "cases"]
    return {key: float(np.mean([scores[key] for scores in per_class.values()])) for key in keys}
