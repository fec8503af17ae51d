"""What the reading viewer is handed (``pages/viewer``): a frame's stored values, losslessly and compactly, and
the overlay layer the report is made from. Decided here, without Streamlit, so it is tested in milliseconds.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from medattn.explain.overlay import Layers
from medattn.review.marks import POINT_RADIUS, Mark
from medattn.scan.frames import Scan, exact_values

UNITS = {"CT": "HU"}
# The most a scan's frames may take for the viewer to get them all, and scroll through them without asking the
# server: pydicom-data's 10-frame MR takes 160 kB at most, its 2-frame ultrasound 2.9 MB; a long cine gets its
# frames one at a time, from the page's frame slider.
STACK_BYTES = 16 * 2**20


def _little_endian(array: np.ndarray) -> bytes:
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def _deflated(array: np.ndarray) -> bytes:
    """Deflated little-endian bytes (zlib's format, which browsers inflate natively): for the overlay layer,
    mostly transparent, which level 1 shrinks a hundredfold. A radiograph's own noisy 16-bit values it shrank by
    13% in 200 ms (pydicom-data's RG1_J2KR), so those travel as they are."""
    return zlib.compress(_little_endian(array), 1)


@dataclass(frozen=True)
class Marking:
    """A reader's marks, drawn over the scan with their findings' names, and the finding a mark drawn next is for
    (``target``, named ``target_label``): the viewer's Point, Box and Outline tools draw it and hand it to the page,
    in the scan's pixels (``medattn.review.marks``)."""

    target: str
    target_label: str
    marks: tuple[tuple[str, Mark], ...] = ()  # (the finding's name, its mark)

    def arguments(self, scan_shape: tuple[int, int]) -> dict:
        return {
            "for": self.target,
            "label": self.target_label,
            "marks": [{"finding": m.finding, "label": label, **m.as_json()} for label, m in self.marks],
            "radius": POINT_RADIUS * min(scan_shape),  # a point stands for a disc this wide, in scan pixels
        }


@dataclass(frozen=True)
class ViewerImage:
    """A scan as the viewer gets it: ``count`` frames from ``first`` (every frame where they fit in STACK_BYTES, so
    the reader scrolls through them in the browser; else the one shown), their values as bytes (``dtype``,
    ``shape``: (count, H, W) stored values, or (count, H, W, 3) RGB uint8), the ``frame`` shown first and the one
    the ``overlay`` belongs to (stretched over the whole image), the ``opacity`` its heat starts at (the reader
    changes it in the viewer), and the ``window`` (centre, width) to start from."""

    scan_id: str
    packed: bytes = field(repr=False)
    dtype: str
    shape: tuple[int, ...]
    first: int
    window: tuple[float, float]
    modality: str
    inverted: bool
    spacing: tuple[float, float] | None
    frame: int = 0
    overlay: Layers | None = field(default=None, repr=False)
    opacity: float = 0.45
    marking: Marking | None = None  # None: the page takes no marks here

    @staticmethod
    def holds_every_frame(scan: Scan, frame: int) -> bool:
        """Whether the viewer gets every frame of ``scan``: its frames fit STACK_BYTES, at their largest (4 bytes a
        grey value, should they need float32). Sized from ``frame``, the one decoded already."""
        return scan.frame(frame).size * (1 if scan.is_colour else 4) * scan.frame_count <= STACK_BYTES

    @classmethod
    def of(cls, scan: Scan, frame: int, scan_id: str) -> ViewerImage:
        """``scan``'s frames for the viewer, showing ``frame``, with no overlay: every frame if they fit, else
        ``frame`` alone; ``scan_id`` names them (no identifier: a content key)."""
        held = range(scan.frame_count) if cls.holds_every_frame(scan, frame) else range(frame, frame + 1)
        if scan.is_colour:
            values = np.stack([scan.display(index) for index in held])
        else:
            values = exact_values(np.stack([scan.frame(index) for index in held]))
        return cls(
            scan_id=scan_id if len(held) > 1 else f"{scan_id}-{frame}",
            packed=_little_endian(values),
            dtype=values.dtype.name,
            shape=values.shape,
            first=held.start,
            # Colour goes as the app shows it (uint8, medattn.scan.windowing.scale_colour): 0 to 255, as it is.
            window=(127.5, 255.0) if scan.is_colour else tuple(float(v) for v in scan.default_window),
            modality=scan.modality,
            inverted=scan.photometric == "MONOCHROME1",
            spacing=scan.pixel_spacing,
            frame=frame,
        )

    @classmethod
    def of_picture(cls, picture: np.ndarray, scan_id: str) -> ViewerImage:
        """A grey uint8 picture (a reader study's case, as its set holds it), shown as it is: 0 black, 255 white."""
        return cls(
            scan_id=scan_id,
            packed=_little_endian(picture[None]),
            dtype=picture.dtype.name,
            shape=(1, *picture.shape),
            first=0,
            window=(127.5, 255.0),
            modality="OT",
            inverted=False,
            spacing=None,
        )

    def arguments(self, held: str | None = None) -> dict:
        """The component's arguments: JSON values, and bytes, which Streamlit sends as binary. The overlay's
        checksum is among the JSON values: Streamlit sends the viewer new arguments only when those change.

        ``held``: the scan whose values the viewer holds already; where it is this one, they are not sent again.
        Otherwise every rerun of the page (a click, a verdict) serialised and sent a 2k radiograph's
        7 MB anew: 170 ms of an opacity change, on the server's one interpreter lock."""
        overlay = lines = None
        if self.overlay is not None:
            overlay = _deflated(self.overlay.heat)
            lines = _deflated(self.overlay.lines) if self.overlay.lines.any() else None
        return {
            "scan": self.scan_id,
            "pixels": None if held == self.scan_id else self.packed,
            "dtype": self.dtype,
            "frames": self.shape[0],
            "first": self.first,
            "frame": self.frame,
            "rows": self.shape[1],
            "columns": self.shape[2],
            "colour": len(self.shape) == 4,
            "window": list(self.window),
            "inverted": self.inverted,
            "modality": self.modality,
            "unit": UNITS.get(self.modality, ""),
            "spacing": list(self.spacing) if self.spacing else None,
            "overlay": overlay,
            "lines": lines,
            "overlay_shape": None if self.overlay is None else list(self.overlay.heat.shape[:2]),
            "overlay_checksum": None if overlay is None else zlib.crc32(lines or b"", zlib.crc32(overlay)),
            "opacity": self.opacity,
            "marking": None if self.marking is None else self.marking.arguments(self.shape[1:3]),
        }


def said_opacity(message: object) -> float | None:
    """The overlay opacity a viewer's message (``{"opacity": x, ...}``) tells, or None where it tells none. The
    message comes from the browser: anything but a number from 0 to 1 is refused."""
    value = message.get("opacity") if isinstance(message, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        return None
    return float(value)
