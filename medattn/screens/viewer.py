"""What the reading viewer is handed (``pages/viewer``): a frame's stored values, losslessly and compactly, and
the overlay layer the report is made from. Decided here, without Streamlit, so it is tested in milliseconds.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from medattn.scan.frames import Scan

# The narrowest array type that holds every value of a frame exactly, tried in this order; float32 otherwise.
EXACT_TYPES = (np.uint8, np.uint16, np.int16)
UNITS = {"CT": "HU"}


def exact_values(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` (float32 modality values) in the narrowest type that holds each value exactly."""
    if np.isfinite(pixels).all() and np.array_equal(pixels, np.round(pixels)):
        low, high = (pixels.min(), pixels.max()) if pixels.size else (0, 0)
        for kind in EXACT_TYPES:
            limits = np.iinfo(kind)
            if limits.min <= low and high <= limits.max:
                return pixels.astype(kind)
    return pixels.astype(np.float32)


def _little_endian(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def _deflated(array: np.ndarray) -> bytes:
    """Deflated little-endian bytes (zlib's format, which browsers inflate natively): for the overlay layer,
    mostly transparent, which level 1 shrinks a hundredfold. A radiograph's own noisy 16-bit values it shrank by
    13% in 200 ms (pydicom-data's RG1_J2KR), so those travel as they are."""
    return zlib.compress(_little_endian(array), 1)


@dataclass(frozen=True)
class ViewerImage:
    """One frame of a scan as the viewer gets it: its values as bytes (``dtype``, ``shape``: (H, W) stored values,
    or (H, W, 3) RGB uint8), the ``window`` (centre, width) to start from, and the ``overlay`` layer
    ((h, w, 4) RGBA, stretched over the whole image) when the model's output is shown."""

    scan_id: str
    packed: bytes = field(repr=False)
    dtype: str
    shape: tuple[int, ...]
    window: tuple[float, float]
    modality: str
    inverted: bool
    spacing: tuple[float, float] | None
    overlay: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def of(cls, scan: Scan, frame: int, window: tuple[float, float] | None, scan_id: str) -> ViewerImage:
        """Frame ``frame`` of ``scan``, with no overlay; ``scan_id`` names it (no identifier: a content key)."""
        values = scan.display(frame) if scan.is_colour else exact_values(scan.frame(frame))
        return cls(
            scan_id=f"{scan_id}-{frame}",
            packed=_little_endian(values),
            dtype=values.dtype.name,
            shape=values.shape,
            window=tuple(float(v) for v in (window or scan.default_window)),
            modality=scan.modality,
            inverted=scan.photometric == "MONOCHROME1",
            spacing=scan.pixel_spacing,
        )

    def arguments(self) -> dict:
        """The component's arguments: JSON values, and bytes, which Streamlit sends as binary. The overlay's
        checksum is among the JSON values: Streamlit sends the viewer new arguments only when those change."""
        overlay = None if self.overlay is None else _deflated(self.overlay)
        return {
            "scan": self.scan_id,
            "pixels": self.packed,
            "dtype": self.dtype,
            "rows": self.shape[0],
            "columns": self.shape[1],
            "colour": len(self.shape) == 3,
            "window": list(self.window),
            "inverted": self.inverted,
            "modality": self.modality,
            "unit": UNITS.get(self.modality, ""),
            "spacing": list(self.spacing) if self.spacing else None,
            "overlay": overlay,
            "overlay_shape": None if self.overlay is None else list(self.overlay.shape[:2]),
            "overlay_checksum": None if overlay is None else zlib.crc32(overlay),
        }
