"""Grad-CAM (Selvaraju et al., 2017): channels weighted by their mean gradient."""

from __future__ import annotations

import torch

from medattn.explain.cam import ClassActivationMap


class GradCAMExplainer(ClassActivationMap):
    """Grad-CAM on the encoder's last stage: each channel weighted by its gradient averaged over the grid."""

    name, title = "gradcam", "Grad-CAM"
    # Measured, not assumed: on the default model every sample's nodule map is empty, and the card gives the
    # share of empty maps per finding on the benchmark (issue 30).
    when_empty = (
        "no place has evidence for it that Grad-CAM can see. Grad-CAM weighs each feature by its gradient "
        "averaged over the whole image; this model pools its evidence from a few places, so the average is "
        "often negative and cancels the evidence where it is, a known weakness of Grad-CAM. HiResCAM weighs "
        "each place by its own gradient: choose it to see where the evidence lies."
    )

    @staticmethod
    def combine(gradients: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
        weights = gradients.mean(dim=(2, 3), keepdim=True)  # (B, Cf, 1, 1)
        return (weights * activations).sum(dim=1)  # (B, h, w)
