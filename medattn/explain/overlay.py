"""Heatmap overlays and their legend: pure functions from arrays to arrays (RGB uint8 out)."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

COLORMAPS = {"jet": cv2.COLORMAP_JET, "inferno": cv2.COLORMAP_INFERNO, "viridis": cv2.COLORMAP_VIRIDIS}
CONTOUR_COLOUR = (255, 255, 255)


def normalise(heatmap: np.ndarray) -> np.ndarray:
    """Scale a non-negative map to [0, 1] by its maximum (a flat map becomes all zeros)."""
    heatmap = np.nan_to_num(np.asarray(heatmap, dtype=np.float32))
    top = float(heatmap.max(initial=0.0))
    return heatmap / top if top > 0 else np.zeros_like(heatmap)


def top_region(heatmap: np.ndarray, fraction: float) -> np.ndarray:
    """The hottest ``fraction`` of the pixels (at least one), as a boolean mask."""
    count = max(1, round(fraction * heatmap.size))
    flat = np.zeros(heatmap.size, dtype=bool)
    flat[np.argsort(heatmap, axis=None, kind="stable")[-count:]] = True
    return flat.reshape(heatmap.shape)


def coloured(heat: np.ndarray, colormap: str) -> np.ndarray:
    """RGB uint8 for heat in [0, 1] through an OpenCV colour map."""
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose from {sorted(COLORMAPS)}")
    levels = np.round(np.clip(heat, 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, COLORMAPS[colormap]), cv2.COLOR_BGR2RGB)


def blend(
    image: np.ndarray,
    heatmap: np.ndarray,
    opacity: float = 0.45,
    colormap: str = "jet",
    threshold: float = 0.0,
    contour_fraction: float = 0.0,
) -> np.ndarray:
    """Lay ``heatmap`` (H x W, any scale) over ``image`` (uint8 H x W grey or H x W x 3 RGB).

    Pixels whose normalised heat is below ``threshold`` stay uncoloured. With ``contour_fraction``,
    the outline of the hottest that share of the image is drawn on top. Returns RGB uint8 H x W x 3.
    """
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.shape[:2] != heatmap.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and heatmap {heatmap.shape[:2]} differ in size")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image
    heat = normalise(heatmap)
    alpha = (opacity * (heat >= threshold))[..., None]
    out = np.round(rgb * (1 - alpha) + coloured(heat, colormap) * alpha).astype(np.uint8)
    if contour_fraction > 0:
        region = top_region(heat, contour_fraction).astype(np.uint8)
        outlines, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        thickness = max(1, round(min(image.shape[:2]) / 256))
        cv2.drawContours(out, outlines, -1, CONTOUR_COLOUR, thickness)
    return out


def colour_bar(colormap: str, width: int = 512, height: int = 44) -> np.ndarray:
    """A horizontal legend for ``colormap``: the ramp from low to high weight, labelled, on white."""
    ramp_height = height // 2
    bar = np.full((height, width, 3), 255, dtype=np.uint8)
    bar[:ramp_height] = coloured(np.linspace(0, 1, width, dtype=np.float32)[None].repeat(ramp_height, 0), colormap)
    label_row, font, scale = height - 6, cv2.FONT_HERSHEY_SIMPLEX, ramp_height / 36
    cv2.putText(bar, "low", (2, label_row), font, scale, (60, 60, 60), 1, cv2.LINE_AA)
    (text_width, _), _ = cv2.getTextSize("high", font, scale, 1)
    cv2.putText(bar, "high", (width - text_width - 2, label_row), font, scale, (60, 60, 60), 1, cv2.LINE_AA)
    return bar


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG of a uint8 image, compressed lightly: at 1024 px it encodes in a few tens of ms."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
