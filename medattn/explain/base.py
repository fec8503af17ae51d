"""The explanation interface every method implements.

Each method maps a batch of prepared model inputs (B, channels, S, S) and a class index to
non-negative maps (B, h, w) on a grid aligned with the model input (the token grid, or the input
itself). ``Predictor.explain`` carries a map back onto the original image as a ``Heatmap``.

No method changes the model or registers a hook: HiResCAM and Grad-CAM take their gradients from
features passed in explicitly, Integrated Gradients differentiates with respect to the inputs only,
and occlusion only runs forward passes, so one cached model can serve many sessions at once. There
is no attention rollout: the model has no self-attention layers to roll out, only the class-query
pooling that ``attention`` already shows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import torch

from medattn.model.network import AttentionNet

# What a hidden pixel becomes, in occlusion and in deletion and insertion: 0 in the normalised model
# input, the mean grey of the training images. One constant for every method, so none is favoured.
HIDDEN = 0.0


class Explainer(ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    # Why the method's map of a finding can be empty (zero everywhere), in a reader's words: it follows
    # "<title> paints nothing for <finding> on this image:".
    when_empty: ClassVar[str] = "no place raises the model's score for it."

    @abstractmethod
    def maps(self, model: AttentionNet, inputs: torch.Tensor, class_index: int) -> np.ndarray:
        """Non-negative float32 maps (B, h, w) for class ``class_index``."""
