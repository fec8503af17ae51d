"""Grad-CAM (Selvaraju et al., 2017): channels weighted by their mean gradient."""

from __future__ import annotations

import torch

from medattn.explain.cam import ClassActivationMap


class GradCAMExplainer(ClassActivationMap):
    """Grad-CAM on the encoder's last stage: each channel weighted by its gradient averaged over the grid."""

    name, title = "gradcam", "Grad-CAM"

    @staticmethod
    def combine(gradients: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
        weights = gradients.mean(dim=(2, 3), keepdim=True)  # (B, Cf, 1, 1)
        return (weights * activations).sum(dim=1)  # (B, h, w)
