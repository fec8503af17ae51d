"""Explanations: one small interface (``base``), one module per method, their measured quality, overlays.

- ``attention``: the model's own class-query attention (shown first);
- ``hirescam`` and ``gradcam``: gradient-weighted activations of the encoder's last stage (``cam``);
- ``integrated_gradients`` and ``occlusion``: model-agnostic, on the input grid, as Captum computes them;
- ``quality``: localisation, faithfulness and the randomisation sanity check;
- ``overlay``: heatmaps blended over the image, and their legend.

All but attention are baselines beside it, computed on the same model.
"""

from medattn.explain.attention import AttentionExplainer
from medattn.explain.base import HIDDEN, Explainer
from medattn.explain.gradcam import GradCAMExplainer
from medattn.explain.hirescam import HiResCAMExplainer
from medattn.explain.integrated_gradients import IntegratedGradientsExplainer
from medattn.explain.occlusion import OcclusionExplainer

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

__all__ = [
    "EXPLAINERS",
    "HIDDEN",
    "AttentionExplainer",
    "Explainer",
    "GradCAMExplainer",
    "HiResCAMExplainer",
    "IntegratedGradientsExplainer",
    "OcclusionExplainer",
]
