"""Explanations: one small interface (``base``), one module per method, their measured quality, overlays.

- ``attention``: the model's own class-query attention (shown first);
- ``hirescam`` and ``gradcam``: gradient-weighted activations of the encoder's last stage (``cam``);
- ``integrated_gradients`` and ``occlusion``: model-agnostic, on the input grid, as Captum computes them;
- ``quality``: localisation, faithfulness and the randomisation sanity check;
- ``overlay``: heatmaps blended over the image, and their legend.

All but attention are baselines beside it, computed on the same model.
"""

from __future__ import annotations

import numpy as np

from medattn.explain.attention import AttentionExplainer
from medattn.explain.base import HIDDEN, Explainer
from medattn.explain.gradcam import GradCAMExplainer
from medattn.explain.hirescam import HiResCAMExplainer
from medattn.explain.integrated_gradients import IntegratedGradientsExplainer
from medattn.explain.occlusion import OcclusionExplainer
from medattn.model.predictor import Heatmap, Prediction, Predictor
from medattn.scan import Scan

EXPLAINERS: dict[str, Explainer] = {
    e.name: e
    for e in (
        AttentionExplainer(),
        HiResCAMExplainer(),
        GradCAMExplainer(),
        IntegratedGradientsExplainer(),
        OcclusionExplainer(),
    )
}


def map_of(
    predictor: Predictor,
    image: Scan | np.ndarray,
    finding: str,
    method: str,
    prediction: Prediction,
    frame: int = 0,
    max_side: int | None = None,
) -> Heatmap:
    """``method``'s map of ``finding``. The attention comes free with ``prediction`` (which must be of the
    same image, frame and ``max_side``); every other method runs on the image."""
    if method == "attention":
        return prediction.attention[finding]
    return predictor.explain(image, finding, EXPLAINERS[method], frame, max_side)


__all__ = [
    "EXPLAINERS",
    "HIDDEN",
    "AttentionExplainer",
    "Explainer",
    "GradCAMExplainer",
    "HiResCAMExplainer",
    "IntegratedGradientsExplainer",
    "OcclusionExplainer",
    "map_of",
]
