"""Resizing images for screens, caches and thumbnails: area averaging down, linear up."""

from __future__ import annotations

import cv2
import numpy as np


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` resized to height x width (area averaging down, linear up)."""
    if image.shape[:2] == (height, width):
        return image
    shrinking = height * width < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` at most ``max_side`` pixels on its long side, same aspect: what a screen can show anyway."""
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image
    return resize(image, max(1, round(image.shape[0] * scale)), max(1, round(image.shape[1] * scale)))
