"""The model's own class-query attention: the explanation shown first, a by-product of the forward pass."""

from __future__ import annotations

import numpy as np
import torch

from medattn.explain.base import Explainer
from medattn.model.network import AttentionNet


class AttentionExplainer(Explainer):
    """The model's own class-query attention: a by-product of the forward pass."""

    name, title = "attention", "Attention"

    def maps(self, model: AttentionNet, inputs: torch.Tensor, class_index: int) -> np.ndarray:
        with torch.inference_mode():
            _, attention = model(inputs)
        return attention[:, class_index].float().numpy()
