"""Occlusion: model-agnostic, forward passes only."""

from __future__ import annotations

import numpy as np
import torch

from medattn.explain.base import HIDDEN, Explainer
from medattn.model.network import AttentionNet


class OcclusionExplainer(Explainer):
    """Occlusion (Zeiler and Fergus, 2014): how far the class logit falls when a patch is hidden.

    A square patch an eighth of the input wide is set to ``HIDDEN`` at ``positions`` x ``positions``
    evenly spaced places; each pixel gets the mean fall over the patches that covered it.
    Model-agnostic: it needs only logits. The variants of one image go through the model as one batch.
    """

    name, title = "occlusion", "Occlusion"

    def __init__(self, patch_fraction: float = 1 / 8, positions: int = 10):
        self.patch_fraction, self.positions = patch_fraction, positions

    def maps(self, model: AttentionNet, inputs: torch.Tensor, class_index: int) -> np.ndarray:
        size = inputs.shape[-1]
        patch = max(1, round(size * self.patch_fraction))
        starts = np.linspace(0, size - patch, self.positions).round().astype(int)
        corners = [(top, left) for top in starts for left in starts]
        result = np.zeros((len(inputs), size, size), dtype=np.float32)
        coverage = np.zeros((size, size), dtype=np.float32)
        for top, left in corners:
            coverage[top : top + patch, left : left + patch] += 1
        with torch.inference_mode():
            reference = model(inputs)[0][:, class_index]  # (B,)
            for b in range(len(inputs)):
                variants = inputs[b].repeat(len(corners), 1, 1, 1)  # (P, channels, S, S)
                for v, (top, left) in enumerate(corners):
                    region = (slice(None), slice(top, top + patch), slice(left, left + patch))
                    variants[v][region] = HIDDEN
                fall = (reference[b] - model(variants)[0][:, class_index]).clamp(min=0).numpy()  # (P,)
                for drop, (top, left) in zip(fall, corners, strict=True):
                    result[b, top : top + patch, left : left + patch] += drop
        return result / coverage
