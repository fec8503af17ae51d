"""Is this scan like the images the model was trained on? A measured answer, not a disclaimer.

The model's features for an image (the encoder's feature map averaged over space) are compared with
their distribution on the training data: a Gaussian fitted to them, and the Mahalanobis distance
from it. The alarm threshold is a high percentile of the distances of held-out in-distribution
images, so it raises few false alarms there by construction. Everything lives in the model card.
"""

from __future__ import annotations

import numpy as np
import torch

from medattn.model.card import UnlikenessStatistics
from medattn.model.network import AttentionNet

ALARM_PERCENTILE = 99.5
SHRINKAGE = 1e-3  # added to the covariance's diagonal (relative to its mean variance): keeps it invertible


@torch.inference_mode()
def features(model: AttentionNet, inputs: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """The encoder's feature map averaged over space: (N, Cf)."""
    model.eval()
    return torch.cat([model.encoder(chunk).mean(dim=(2, 3)) for chunk in inputs.split(batch_size)]).numpy()


def fit_statistics(train_features: np.ndarray, held_out_groups: list[np.ndarray]) -> UnlikenessStatistics:
    """The card's unlikeness statistics: mean, precision matrix and the alarm threshold on the distance.

    The threshold is the highest of the groups' ALARM_PERCENTILE-th percentiles, so each kind of
    held-out image (say, each size it was drawn at) raises at most about 0.5% false alarms.
    """
    mean = train_features.mean(axis=0)
    covariance = np.cov(train_features, rowvar=False)
    covariance += SHRINKAGE * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    precision = np.linalg.inv(covariance)
    held_out = [_mahalanobis(group, mean, precision) for group in held_out_groups]
    threshold = float(max(np.percentile(group, ALARM_PERCENTILE) for group in held_out))
    return UnlikenessStatistics(
        mean=tuple(mean.tolist()),
        precision=tuple(tuple(row) for row in precision.tolist()),
        threshold=threshold,
        held_out_alarm_rate=float((np.concatenate(held_out) > threshold).mean()),
    )


def distances(feature_rows: np.ndarray, statistics: UnlikenessStatistics) -> np.ndarray:
    """Mahalanobis distance of each row (N, Cf) from the training features' Gaussian."""
    return _mahalanobis(feature_rows, np.asarray(statistics.mean), np.asarray(statistics.precision))


def _mahalanobis(feature_rows: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    centred = feature_rows - mean
    return np.sqrt(np.einsum("nc,cd,nd->n", centred, precision, centred))
