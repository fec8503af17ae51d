"""Explanations: one small interface (``base``), one module per method, their measured quality, overlays.

- ``attention``: the model's own class-query attention (shown first);
- ``gradcam`` and ``occlusion``: beside it for comparison, on the same model;
- ``quality``: localisation, faithfulness and the randomisation sanity check;
- ``overlay``: heatmaps blended over the image, and their legend.
"""

from medattn.explain.attention import AttentionExplainer
from medattn.explain.base import HIDDEN, Explainer
from medattn.explain.gradcam import GradCAMExplainer
from medattn.explain.occlusion import OcclusionExplainer

EXPLAINERS: dict[str, Explainer] = {e.name: e for e in (AttentionExplainer(), GradCAMExplainer(), OcclusionExplainer())}

__all__ = [
    "EXPLAINERS",
    "HIDDEN",
    "AttentionExplainer",
    "Explainer",
    "GradCAMExplainer",
    "Heatmap",
    "OcclusionExplainer",
]
