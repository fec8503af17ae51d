"""From logits to calibrated probabilities and decisions, for multi-label and multi-class models.

Multi-label: a temperature per class, sigmoid, and a decision threshold per class.
Multi-class: one temperature, softmax, and the most probable class is the label.
The ROC AUC lives here too, below training and the explanations, so both measure with the one rule.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# Bounds on a fitted temperature. On a perfectly separated validation split the log-loss optimum
# is T -> 0, which would turn every probability into exactly 0 or 1; temperature scaling is for
# softening an overconfident network, so it may sharpen at most 2x.
TEMPERATURE_RANGE = (0.5, 10.0)
MULTI_LABEL, MULTI_CLASS = "multi-label", "multi-class"


def probabilities(logits: np.ndarray, temperature: np.ndarray, task: str) -> np.ndarray:
    """Calibrated probabilities (N, C) from logits (N, C)."""
    scaled = np.asarray(logits, dtype=np.float64) / np.asarray(temperature, dtype=np.float64)
    if task == MULTI_CLASS:
        scaled = scaled - scaled.max(axis=1, keepdims=True)
        exp = np.exp(scaled)
        return exp / exp.sum(axis=1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-scaled))


def decisions(probs: np.ndarray, thresholds: np.ndarray | None, task: str) -> np.ndarray:
    """Boolean (N, C): above threshold (multi-label), or the most probable class (multi-class)."""
    if task == MULTI_CLASS:
        return np.eye(probs.shape[1], dtype=bool)[np.argmax(probs, axis=1)]
    return probs >= np.asarray(thresholds)


def fit_temperature(logits: np.ndarray, labels: np.ndarray, task: str = MULTI_LABEL) -> np.ndarray:
    """Temperatures minimising validation log-loss (Guo et al., 2017): one per class, or one for softmax."""
    logits_t, labels_t = torch.from_numpy(np.asarray(logits)).double(), torch.from_numpy(np.asarray(labels)).double()
    log_t = torch.zeros(1 if task == MULTI_CLASS else logits.shape[1], dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        scaled = logits_t / log_t.exp()
        if task == MULTI_CLASS:
            loss = F.cross_entropy(scaled, labels_t.argmax(dim=1))
        else:
            loss = F.binary_cross_entropy_with_logits(scaled, labels_t)
        loss.backward()
        return loss

    optimiser.step(closure)
    # Each multi-label temperature touches only its own class's loss, so clipping each is exact.
    return np.clip(log_t.detach().exp().numpy(), *TEMPERATURE_RANGE)


def best_f1_thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per class, a threshold with the highest F1 on these cases, placed mid-gap below the best cut.

    The best cut is an observed probability; putting the threshold halfway to the next lower one
    keeps it off the edge of the optimal range (for separated classes: between the two groups).
    """
    thresholds = []
    for c in range(labels.shape[1]):
        candidates = np.unique(probs[:, c])
        f1 = [f1_score(labels[:, c], probs[:, c] >= t) for t in candidates]
        best = int(np.argmax(f1))
        below = candidates[best - 1] if best > 0 else 0.0
        thresholds.append(float((candidates[best] + below) / 2))
    return np.array(thresholds)


def f1_score(labels: np.ndarray, predicted: np.ndarray) -> float:
    positive = np.asarray(labels) > 0
    true_pos = float((predicted & positive).sum())
    return 2 * true_pos / max(1.0, float(predicted.sum() + positive.sum()))


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
