"""Classification and calibration metrics, in numpy, with no model dependency.

Explanation metrics live in ``medattn.explain.metrics``.
"""

from __future__ import annotations

import numpy as np


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with tied scores averaged); NaN if one class is absent."""
    labels = np.asarray(labels).astype(bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = np.asarray(scores)[order]
    ranks = np.empty(len(order), dtype=np.float64)
    # Average the ranks of tied scores.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(first, counts, strict=True):
        ranks[order[start : start + count]] = start + (count + 1) / 2
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


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
