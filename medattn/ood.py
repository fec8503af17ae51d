"""Is this scan like the images the model was trained on? A measured answer, not a disclaimer.

The model's features for an image (the encoder's feature map averaged over space) are compared with
their distribution on the training data: a Gaussian fitted to them, and the Mahalanobis distance
from it. The alarm threshold is a high percentile of the distances of held-out in-distribution
images, so it raises few false alarms there by construction. Everything lives in the model card.
"""

from __future__ import annotations

import numpy as np
import torch

from medattn.model import AttentionNet

ALARM_PERCENTILE = 99.5
SHRINKAGE = 1e-3  # added to the covariance's diagonal (relative to its mean variance): keeps it invertible


@torch.inference_mode()
def features(model: AttentionNet, inputs: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """The encoder's feature map averaged over space: (N, Cf)."""
    model.eval()
    return torch.cat([model.encoder(chunk).mean(dim=(2, 3)) for chunk in inputs.split(batch_size)]).numpy()


def fit(train_features: np.ndarray, held_out_groups: list[np.ndarray]) -> dict:
    """The card's ``ood`` entry: mean, precision matrix and the alarm threshold on the distance.

    The threshold is the highest of the groups' ALARM_PERCENTILE-th percentiles, so each kind of
    held-out image (say, each size it was drawn at) raises at most about 0.5% false alarms.
    """
    mean = train_features.mean(axis=0)
    covariance = np.cov(train_features, rowvar=False)
    covariance += SHRINKAGE * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    entry = {"mean": mean.tolist(), "precision": np.linalg.inv(covariance).tolist()}
    held_out = [distances(group, entry) for group in held_out_groups]
    entry["threshold"] = float(max(np.percentile(group, ALARM_PERCENTILE) for group in held_out))
    entry["held_out_alarm_rate"] = float((np.concatenate(held_out) > entry["threshold"]).mean())
    return entry


def distances(feature_rows: np.ndarray, entry: dict) -> np.ndarray:
    """Mahalanobis distance of each row (N, Cf) from the training features' Gaussian."""
    centred = feature_rows - np.asarray(entry["mean"])
    return np.sqrt(np.einsum("nc,cd,nd->n", centred, np.asarray(entry["precision"]), centred))
