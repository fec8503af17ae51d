"""Cine loops: every frame of a multi-frame scan, windowed as shown, in one animated WebP the browser plays.

Frames are decoded, windowed, shrunk and encoded one at a time, so a loop of a 120-frame ultrasound costs
one decoded frame of memory, not the whole series.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

from PIL import Image

from medattn.errors import ScanError
from medattn.scan.frames import Scan
from medattn.scan.resizing import shrink

CINE_SIDE = 512
CINE_RATE = 10.0  # frames per second
# Values decoded to build one loop: a 300-slice CT (79 M) or a 120-frame colour ultrasound (111 M) plays;
# 50 frames of 7000 x 7000 (2.45 G, 42 s of decoding from a 17.6 kB file) do not.
MAX_CINE_VALUES = 400_000_000


def cine_loop(
    scan: Scan,
    window: tuple[float, float] | None = None,
    frames_per_second: float = CINE_RATE,
    max_side: int = CINE_SIDE,
) -> bytes:
    """An animated WebP of every frame, looping, each shown as ``Scan.display`` would show it; a ScanError
    where every frame together is more than ``MAX_CINE_VALUES`` to decode."""
    values = scan.frame(0).size * scan.frame_count
    if values > MAX_CINE_VALUES:
        raise ScanError(
            f"Playing every frame would decode {values / 1e6:,.0f} million values, above the "
            f"{MAX_CINE_VALUES / 1e6:,.0f} million a loop may take; step through the frames instead."
        )

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
