"""medattn: attention-based scan classification with explanations, for research and demonstration.

The public API, stable from version 0.2 on::

    from medattn import load_scan, Scan, ScanError, Predictor, Prediction, Heatmap, MedattnError

    scan = load_scan("chest.dcm")                 # a Scan, or a ScanError saying why not
    prediction = Predictor.default().predict(scan)  # probabilities, decisions, attention Heatmaps

The flow of a scan, one package per step: ``scan`` → ``model`` → ``explain`` → ``review`` (the app) or
``batch`` (archives); ``training`` sits to the side. Names are imported on first use, so
``import medattn.scan`` (or ``python -m medattn --help``) does not load torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

RESEARCH_NOTICE = "Research and demonstration use only — not a medical device, not for diagnosis."

_PUBLIC = {
    "load_scan": "medattn.scan",
    "Scan": "medattn.scan",
    "ScanError": "medattn.errors",
    "MedattnError": "medattn.errors",
    "Predictor": "medattn.model.predictor",
    "Prediction": "medattn.model.predictor",
    "Heatmap": "medattn.model.predictor",
}
__all__ = ["RESEARCH_NOTICE", "Heatmap", "MedattnError", "Prediction", "Predictor", "Scan", "ScanError", "load_scan"]

if TYPE_CHECKING:
    from medattn.errors import MedattnError, ScanError
    from medattn.model.predictor import Heatmap, Prediction, Predictor
    from medattn.scan import Scan, load_scan


def __getattr__(name: str) -> object:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'medattn' has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name]), name)
