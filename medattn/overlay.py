"""Heatmap overlays: pure functions from arrays to arrays (RGB uint8 out)."""

from __future__ import annotations

import cv2
import numpy as np

COLORMAPS = {"jet": cv2.COLORMAP_JET, "inferno": cv2.COLORMAP_INFERNO, "viridis": cv2.COLORMAP_VIRIDIS}


def normalise(heatmap: np.ndarray) -> np.ndarray:
    """Scale a non-negative map to [0, 1] by its maximum (a flat map becomes all zeros)."""
    heatmap = np.nan_to_num(np.asarray(heatmap, dtype=np.float32))
    top = float(heatmap.max(initial=0.0))
    return heatmap / top if top > 0 else np.zeros_like(heatmap)


def blend(
    image: np.ndarray,
    heatmap: np.ndarray,
    opacity: float = 0.45,
    colormap: str = "jet",
    threshold: float = 0.0,
) -> np.ndarray:
    """Lay ``heatmap`` (H x W, any scale) over ``image`` (uint8 H x W grey or H x W x 3 RGB).

    Pixels whose normalised heat is below ``threshold`` stay uncoloured. Returns RGB uint8 H x W x 3.
    """
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.shape[:2] != heatmap.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and heatmap {heatmap.shape[:2]} differ in size")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose from {sorted(COLORMAPS)}")
    rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image
    heat = normalise(heatmap)
    colour = cv2.cvtColor(
        cv2.applyColorMap(np.round(heat * 255).astype(np.uint8), COLORMAPS[colormap]), cv2.COLOR_BGR2RGB
    )
    alpha = (opacity * (heat >= threshold))[..., None]
    return np.round(rgb * (1 - alpha) + colour * alpha).astype(np.uint8)
