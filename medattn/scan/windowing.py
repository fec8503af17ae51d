"""Windowing: pure functions from modality values to what a reader sees, and the named windows to pick from.

The display window is for eyes only: the model's input never depends on it (``Scan.model_pixels``).
"""

from __future__ import annotations

import cv2
import numpy as np

BLOCK_ROWS = 128
# Window (centre, width) in Hounsfield units for CT.
CT_WINDOWS = {
    "Lung": (-600.0, 1500.0),
    "Mediastinum": (50.0, 350.0),
    "Bone": (400.0, 1800.0),
    "Brain": (40.0, 80.0),
}
# Radiographs carry no calibrated unit, so their presets are ranges of the image's own brightness:
# (low, high) percentiles of how bright a pixel is shown, dark lung fields to dense bone. The lung window
# starts above the darkest 5% (air outside the body and collimation), which would otherwise leave the lung
# fields a flat grey; like CT's lung window, it shows the mediastinum white.
RADIOGRAPH_WINDOWS = {
    "Lung": (5.0, 60.0),
    "Soft tissue": (15.0, 90.0),
    "Bone": (50.0, 99.5),
}
RADIOGRAPHY = ("CR", "DX", "DR", "RG", "MG", "OT")
IMAGE_RANGE = "Image range (1st to 99th percentile)"
# Percentiles are taken from at most about this many evenly spaced pixels: plenty for a window.
PERCENTILE_SAMPLE = 1_000_000


def apply_window(pixels: np.ndarray, window: tuple[float, float], inverted: bool = False) -> np.ndarray:
    """uint8 (H, W) from grey modality values through a (centre, width) window; ``inverted`` for MONOCHROME1.

    Works in blocks of rows, so no full-size float copy is ever made: each block is clipped to the
    window, then one fused OpenCV pass scales, offsets, rounds and saturates it to uint8 (its absolute
    value is harmless: after clipping, every scaled value lies in [0, 255]). NaN shows as the floor.
    """
    centre, width = (float(v) for v in window)
    width = max(width, 1e-6)
    low, scale = centre - width / 2, 255.0 / width
    alpha, beta = (-scale, 255.0 + low * scale) if inverted else (scale, -low * scale)
    shown = np.empty(pixels.shape, dtype=np.uint8)
    for start in range(0, pixels.shape[0], BLOCK_ROWS):
        block = np.clip(pixels[start : start + BLOCK_ROWS], low, low + width)
        np.copyto(block, low, where=np.isnan(block))
        shown[start : start + BLOCK_ROWS] = cv2.convertScaleAbs(block, alpha=alpha, beta=beta)
    return shown


def scale_colour(pixels: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) from RGB values: 8-bit values as they are, deeper ones scaled by their maximum."""
    top = 255.0 if pixels.max(initial=0) <= 255 else float(pixels.max())
    return np.clip(pixels / top * 255.0, 0, 255).astype(np.uint8)


def _finite_sample(pixels: np.ndarray) -> np.ndarray:
    sample = pixels.ravel()[:: max(1, pixels.size // PERCENTILE_SAMPLE)]
    return sample[np.isfinite(sample)]


def percentile_window(pixels: np.ndarray, low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
    """(centre, width) spanning the ``low``..``high`` percentiles of the finite pixels; (0, 1) if none."""
    finite = _finite_sample(pixels)
    if finite.size == 0:
        return 0.0, 1.0
    start, end = np.percentile(finite, [low, high])
    return float((start + end) / 2), float(max(end - start, 1e-3))


def window_presets(
    pixels: np.ndarray, modality: str, photometric: str, file_window: tuple[float, float]
) -> dict[str, tuple[float, float]]:
    """Named (centre, width) windows for one grey frame: the file's own, the full range, and per modality. The
    first is the one a scan opens in: the file's own, unless it spans the whole image and more, which shows
    nothing the full range does not (pydicom-data's chest CR says 15000/30000 for values from 874 to 26479,
    and looked washed out); then the image's own range, its 1st to 99th percentile, comes first. Every frame of a
    scan gets the same names, so that the reader's choice stays on the list from one frame to the next."""
    finite = pixels[np.isfinite(pixels)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    own, full = {"File default": file_window}, {"Full range": ((low + high) / 2, max(high - low, 1e-3))}
    image_range = {IMAGE_RANGE: percentile_window(pixels)}
    centre, width = file_window
    washed_out = centre - width / 2 <= low and high <= centre + width / 2
    presets = image_range | own | full if washed_out else own | full | image_range
    if modality == "CT":
        return presets | CT_WINDOWS
    if modality in RADIOGRAPHY:
        for name, (dark, bright) in RADIOGRAPH_WINDOWS.items():
            if photometric == "MONOCHROME1":  # high stored values are shown dark
                dark, bright = 100 - bright, 100 - dark
            presets[name] = percentile_window(pixels, dark, bright)
    return presets
