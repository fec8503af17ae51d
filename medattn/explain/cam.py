"""Class activation maps on the encoder's last stage, hook-free: gradients are taken from features
passed in, so the shared model is never hooked or changed. Each method states only how gradients and
activations combine."""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import torch

from medattn.explain.base import Explainer
from medattn.model.network import AttentionNet


class ClassActivationMap(Explainer):
    """ReLU of ``combine(gradients, activations)`` on the encoder's last stage, on its token grid."""

    def maps(self, model: AttentionNet, inputs: torch.Tensor, class_index: int) -> np.ndarray:
        with torch.inference_mode():
            features = model.encoder(inputs)  # (B, Cf, h, w)
        with torch.enable_grad():
            features = features.clone().requires_grad_(True)
            logits, _ = model.classify(features)
            (gradients,) = torch.autograd.grad(logits[:, class_index].sum(), features)
        return torch.relu(self.combine(gradients, features.detach())).float().numpy()

    @staticmethod
    @abstractmethod
    def combine(gradients: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
        """The map (B, h, w), before the ReLU, from the class logit's gradients and the activations (B, Cf, h, w)."""
