"""Explanations: one small interface, one class per method.

Each method maps a batch of prepared model inputs (B, channels, S, S) and a class index to
non-negative maps (B, h, w) on a grid aligned with the model input (the token grid, or the input
itself). ``Predictor.explain`` carries a map back onto the original image as a ``Heatmap``.

No method changes the model or registers a hook: Grad-CAM takes its gradients from features passed
in explicitly, and occlusion only runs forward passes, so one cached model can serve many sessions
at once. There is no attention rollout: the model has no self-attention layers to roll out, only
the class-query pooling that ``attention`` already shows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import torch

from medattn.model import AttentionNet
from medattn.overlay import shrink

# What a hidden pixel becomes, in occlusion and in deletion and insertion: 0 in the normalised model
# input, the mean grey of the training images. One constant for every method, so none is favoured.
HIDDEN = 0.0


@dataclass(frozen=True)
class Heatmap:
    """float32 (H, W) in [0, 1] on the original image's pixel grid, scaled by its maximum."""

    values: np.ndarray
    method: str
    class_name: str
    seconds: float

    def shrunk(self, max_side: int) -> Heatmap:
        """The same map at most ``max_side`` pixels on its long side, same aspect: light to cache and send.

        Attention and Grad-CAM maps are 32 x 32 and occlusion 128 x 128 at source, so nothing is lost.
        """
        return replace(self, values=shrink(self.values, max_side))


class Explainer(ABC):
    name: ClassVar[str]
    title: ClassVar[str]

    @abstractmethod
    def maps(self, model: AttentionNet, inputs: torch.Tensor, class_index: int) -> np.ndarray:
        """Non-negative float32 maps (B, h, w) for class ``class_index``."""


class AttentionExplainer(Explainer):
    """The model's own class-query attention: a by-product of the forward pass."""

    name, title = "attention", "Attention"

    def maps(self, model: AttentionNet, inputs: torch.Tensor, class_index: int) -> np.ndarray:
        with torch.inference_mode():
            _, attention = model(inputs)
        return attention[:, class_index].float().numpy()


class GradCAMExplainer(Explainer):
    """Grad-CAM (Selvaraju et al., 2017) on the encoder's last stage."""

    name, title = "gradcam", "Grad-CAM"

    def maps(self, model: AttentionNet, inputs: torch.Tensor, class_index: int) -> np.ndarray:
        with torch.inference_mode():
            features = model.encoder(inputs)  # (B, Cf, h, w)
        with torch.enable_grad():
            features = features.clone().requires_grad_(True)
            logits, _ = model.classify(features)
            (gradients,) = torch.autograd.grad(logits[:, class_index].sum(), features)
        weights = gradients.mean(dim=(2, 3), keepdim=True)  # (B, Cf, 1, 1)
        cam = torch.relu((weights * features.detach()).sum(dim=1))  # (B, h, w)
        return cam.float().numpy()


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


EXPLAINERS: dict[str, Explainer] = {e.name: e for e in (AttentionExplainer(), GradCAMExplainer(), OcclusionExplainer())}
