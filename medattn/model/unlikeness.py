"""Is this scan like the images the model was trained on, and noise-free enough to read? A measured answer.

Two measurements, each with a limit in the model card; beyond either, the app withholds the model's output:

- **unlikeness**: the model's features for an image (the encoder's feature map averaged over space) compared
  with their distribution on the training data: the Mahalanobis distance from a Gaussian fitted to them;
- **relative noise**: the model input's noise as a Gaussian SD (the median absolute Laplacian, which a smooth
  image leaves near 0) over its 1st-99th percentile range, inside the letterbox. Exposure and gamma do not
  change it; film and electronic noise do, and they are what the distance alone cannot tell from exposure
  (medattn.training.robustness measures both).

The limits are the highest ALARM_PERCENTILE-th percentiles over groups of held-out images the model still
calls well (``medattn fit-ood`` chooses the groups by their error: selective prediction's risk), so they
raise few false alarms there by construction. Everything lives in the model card.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np
import torch

from medattn.model.card import UnlikenessStatistics, gate_scores, withholds
from medattn.model.network import AttentionNet
from medattn.model.preprocessing import Letterbox

ALARM_PERCENTILE = 99.5
SHRINKAGE = 1e-3  # added to the covariance's diagonal (relative to its mean variance): keeps it invertible


@torch.inference_mode()
def features(model: AttentionNet, inputs: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """The encoder's feature map averaged over space: (N, Cf)."""
    model.eval()
    return torch.cat([model.encoder(chunk).mean(dim=(2, 3)) for chunk in inputs.split(batch_size)]).numpy()


def relative_noise(image: np.ndarray) -> float:
    """An image's (H, W) noise as a Gaussian SD over its 1st-99th percentile range. The Laplacian of pure
    Gaussian noise of SD s has SD s * sqrt(20); its median absolute value is 0.6745 of that."""
    laplacian = cv2.Laplacian(np.ascontiguousarray(image, dtype=np.float32), cv2.CV_32F)
    low, high = np.percentile(image, [1, 99])
    return float(np.median(np.abs(laplacian)) / 0.6745 / np.sqrt(20) / max(high - low, 1e-6))


def noise_levels(model_inputs: torch.Tensor, letterboxes: Sequence[Letterbox] | None = None) -> np.ndarray:
    """The relative noise (B,) of each model input (B, channels, S, S), measured on its first channel inside
    its letterbox (the padding is flat and would hide the noise); without letterboxes, on the whole input."""
    first = model_inputs[:, 0].numpy()
    if letterboxes is None:
        return np.array([relative_noise(image) for image in first])
    return np.array([relative_noise(image[box.inner]) for image, box in zip(first, letterboxes, strict=True)])


def fit_statistics(
    train_features: np.ndarray, held_out_groups: list[np.ndarray], held_out_noise: list[np.ndarray] | None = None
) -> UnlikenessStatistics:
    """The card's unlikeness statistics: mean, precision matrix and the alarm limits on the distance and, given
    the held-out groups' relative noise, on the noise.

    Each limit is the highest of the groups' ALARM_PERCENTILE-th percentiles, so each kind of held-out image
    (say, each size it was drawn at, or an exposure the model still reads well) raises at most about 0.5%
    false alarms.
    """
    mean = train_features.mean(axis=0)
    covariance = np.cov(train_features, rowvar=False)
    covariance += SHRINKAGE * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
    precision = np.linalg.inv(covariance)
    held_out = [_mahalanobis(group, mean, precision) for group in held_out_groups]
    threshold = float(max(np.percentile(group, ALARM_PERCENTILE) for group in held_out))
    noise_limit = None
    if held_out_noise:
        noise_limit = float(max(np.percentile(group, ALARM_PERCENTILE) for group in held_out_noise))
    statistics = UnlikenessStatistics(
        mean=tuple(mean.tolist()),
        precision=tuple(tuple(row) for row in precision.tolist()),
        threshold=threshold,
        held_out_alarm_rate=0.0,
        noise_limit=noise_limit,
    )
    noise = held_out_noise or [np.zeros(len(group)) for group in held_out]
    gate = gate_scores(np.concatenate(held_out), statistics.threshold, np.concatenate(noise), statistics.noise_limit)
    alarms = withholds(gate)
    return dataclasses.replace(statistics, held_out_alarm_rate=float(alarms.mean()))


def distances(feature_rows: np.ndarray, statistics: UnlikenessStatistics) -> np.ndarray:
    """Mahalanobis distance of each row (N, Cf) from the training features' Gaussian."""
    return _mahalanobis(feature_rows, np.asarray(statistics.mean), np.asarray(statistics.precision))


def _mahalanobis(feature_rows: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    centred = feature_rows - mean
    return np.sqrt(np.einsum("nc,cd,nd->n", centred, precision, centred))
