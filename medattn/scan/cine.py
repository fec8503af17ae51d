"""Cine loops: every frame of a multi-frame scan, windowed as shown, in one animated WebP the browser plays.

Frames are decoded, windowed, shrunk and encoded one at a time, so a loop of a 120-frame ultrasound costs
one decoded frame of memory, not the whole series.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from PIL import Image

from medattn.scan.frames import Scan
from medattn.scan.resizing import shrink

CINE_SIDE = 512
CINE_RATE = 10.0  # frames per second


def cine_loop(
    scan: Scan,
    window: tuple[float, float] | None = None,
    frames_per_second: float = CINE_RATE,
    max_side: int = CINE_SIDE,
) -> bytes:
    """An animated WebP of every frame, looping, each shown as ``Scan.display`` would show it."""

    def shown() -> Iterator[Image.Image]:
        for index in range(scan.frame_count):
            yield Image.fromarray(shrink(scan.display(index, window), max_side))

    frames = shown()
    buffer = io.BytesIO()
    next(frames).save(
        buffer,
        format="WEBP",
        save_all=True,
        append_images=frames,
        duration=round(1000 / frames_per_second),
        loop=0,
        quality=80,
        method=0,  # the fastest encoder setting: a loop is for looking at, not for archiving
    )
    return buffer.getvalue()
