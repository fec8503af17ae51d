"""Explanations: one small interface, one class per method.

Each method maps a batch of prepared model inputs (B, channels, S, S) and a class index to
non-negative maps (B, h, w) on a grid aligned with the model input. No method changes the model:
Grad-CAM takes its gradients from features passed in explicitly rather than from hooks, so one
cached model can serve many sessions at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import torch

from medattn.model import AttentionNet


class Explainer(ABC):
    name: ClassVar[str]

    @abstractmethod
    def maps(self, model: AttentionNet, inputs: torch.Tensor, class_index: int) -> np.ndarray:
        """Non-negative float32 maps (B, h, w) for class ``class_index``."""


class AttentionExplainer(Explainer):
    """The model's own class-query attention: a by-product of the forward pass."""

    name = "attention"

    def maps(self, model: AttentionNet, inputs: torch.Tensor, class_index: int) -> np.ndarray:
        with torch.inference_mode():
            _, attention = model(inputs)
        return attention[:, class_index].float().numpy()


class GradCAMExplainer(Explainer):
    """Grad-CAM (Selvaraju et al., 2017) on the encoder's last stage."""

    name = "gradcam"

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


EXPLAINERS: dict[str, Explainer] = {e.name: e for e in (AttentionExplainer(), GradCAMExplainer())}
