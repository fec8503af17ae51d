"""The decoded scan: frames in modality units, read one way for eyes and another for the model."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from medattn.scan import windowing

# The narrowest array type that holds every value of a frame exactly, tried in this order; float32 otherwise.
EXACT_TYPES = (np.uint8, np.uint16, np.int16)


def exact_values(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` (float32 modality values) in the narrowest type that holds each value exactly."""
    if np.isfinite(pixels).all() and np.array_equal(pixels, np.round(pixels)):
        low, high = (pixels.min(), pixels.max()) if pixels.size else (0, 0)
        for kind in EXACT_TYPES:
            limits = np.iinfo(kind)
            if limits.min <= low and high <= limits.max:
                return pixels.astype(kind)
    return pixels.astype(np.float32, copy=False)  # float32 already, as every frame is: no 14 MB copy


@dataclass
class Scan:
    """A scan's frames in modality units (Modality LUT / rescale applied), decoded one at a time.

    ``frame(i)`` is float32 (H, W) grey or (H, W, 3) RGB. A multi-frame DICOM keeps only its compressed
    data and the last frame asked for, so a 120-frame cine costs one decoded frame, not 120. ``meta``
    comes from an allow-list of technical attributes, so no patient identifier can reach a page or a log.
    """

    frame_count: int
    is_colour: bool
    photometric: str
    modality: str
    default_window: tuple[float, float]
    decode: Callable[[int], np.ndarray] = field(repr=False)  # frame index -> float32 modality values
    pixel_spacing: tuple[float, float] | None = None
    meta: dict[str, str] = field(default_factory=dict)
    # Only ever hashed into a scan key (medattn.installation.scan_key); never shown, logged or stored.
    instance_uid: str | None = field(default=None, repr=False)
    # Text drawn into the pixels may identify the patient (``medattn.scan.metadata.burned_in_text``): True where
    # the file says so, None where it does not say and its modality routinely draws it. Anything made for
    # sharing withholds the pixels unless this is False (or, for None, a reader has looked and found none).
    burned_in_annotation: bool | None = False
    _last: tuple[int, np.ndarray] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def of_frames(cls, frames: np.ndarray, photometric: str, modality: str, **details) -> Scan:
        """A scan whose frames (n, H, W) or (n, H, W, 3) float32 are all decoded already (image files)."""
        window = details.pop("default_window", None) or windowing.percentile_window(frames)
        colour = frames.ndim == 4
        return cls(len(frames), colour, photometric, modality, window, frames.__getitem__, **details)

    def frame(self, index: int = 0) -> np.ndarray:
        """One frame's modality values; the last frame decoded is kept, so a redraw decodes nothing."""
        if not 0 <= index < self.frame_count:
            raise IndexError(f"frame {index} of a {self.frame_count}-frame scan")
        with self._lock:  # a session's reruns and its cached work can ask from two threads at once
            if self._last is None or self._last[0] != index:
                self._last = (index, self.decode(index))
            return self._last[1]

    def display(self, frame: int = 0, window: tuple[float, float] | None = None) -> np.ndarray:
        """uint8 H x W (grey) or H x W x 3 (RGB) for eyes: windowed, dense tissue bright."""
        pixels = self.frame(frame)
        if self.is_colour:
            return windowing.scale_colour(pixels)
        return windowing.apply_window(pixels, window or self.default_window, self.photometric == "MONOCHROME1")

    def model_pixels(self, frame: int = 0) -> np.ndarray:
        """One frame as the model reads it: modality values, dense tissue high, no display window.

        MONOCHROME1 stores dense tissue as low values; it is negated (the model's intensity recipe is
        linear, so this equals inverting). Every caller that feeds a model starts here, so training,
        evaluation, batch scoring and the app give a model the same input for the same file, whatever
        window the file or the reader chose.
        """
        pixels = self.frame(frame)
        return -pixels if self.photometric == "MONOCHROME1" else pixels

    def window_presets(self, frame: int = 0) -> dict[str, tuple[float, float]]:
        """Named (centre, width) windows for a grey frame (see ``medattn.scan.windowing``)."""
        return windowing.window_presets(self.frame(frame), self.modality, self.photometric, self.default_window)
