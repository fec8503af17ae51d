"""Grad-CAM, hook-free: gradients are taken from features passed in, so the shared model is never changed."""

from __future__ import annotations

import numpy as np
import torch

from medattn.explain.base import Explainer
from medattn.model.network import AttentionNet


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
