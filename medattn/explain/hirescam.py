"""HiResCAM (Draelos and Carin, 2020): gradient times activation, element by element."""

from __future__ import annotations

import torch

from medattn.explain.cam import ClassActivationMap


class HiResCAMExplainer(ClassActivationMap):
    """HiResCAM on the encoder's last stage: gradient times activation at each place, summed over channels.

    Unlike Grad-CAM, gradients are not averaged over the grid first: each place keeps its own, so a
    channel counts at a place only as far as the class logit responds to it there.
    """

    name, title = "hirescam", "HiResCAM (gradient × activation)"

    @staticmethod
    def combine(gradients: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
        return (gradients * activations).sum(dim=1)  # (B, Cf, h, w) -> (B, h, w)
