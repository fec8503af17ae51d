"""The decoded scan: frames in modality units, read one way for eyes and another for the model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medattn.scan import windowing


@dataclass
class Scan:
    """Pixels in modality units (Modality LUT / rescale applied): ``frames`` float32 (n, H, W) grey or
    (n, H, W, 3) RGB. ``meta`` comes from an allow-list of technical attributes, so no patient identifier
    can reach a page or a log."""

    frames: np.ndarray
    photometric: str
    modality: str
    default_window: tuple[float, float]
    pixel_spacing: tuple[float, float] | None = None
    meta: dict[str, str] = field(default_factory=dict)
    # Only ever hashed into a study key (medattn.review.store.study_key); never shown, logged or stored.
    instance_uid: str | None = field(default=None, repr=False)

    @property
    def is_colour(self) -> bool:
        return self.frames.ndim == 4

    @property
    def frame_count(self) -> int:
        return self.frames.shape[0]

    def display(self, frame: int = 0, window: tuple[float, float] | None = None) -> np.ndarray:
        """uint8 H x W (grey) or H x W x 3 (RGB) for eyes: windowed, dense tissue bright."""
        pixels = self.frames[frame]
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
        pixels = self.frames[frame]
        return -pixels if self.photometric == "MONOCHROME1" else pixels

    def window_presets(self, frame: int = 0) -> dict[str, tuple[float, float]]:
        """Named (centre, width) windows for a grey frame (see ``medattn.scan.windowing``)."""
        return windowing.window_presets(self.frames[frame], self.modality, self.photometric, self.default_window)
