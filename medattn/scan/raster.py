"""Ordinary image files (PNG, JPEG, TIFF, BMP) into a Scan, through Pillow."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

from medattn.errors import ScanError
from medattn.scan.frames import Scan
from medattn.scan.guards import check_size, is_decoder_failure
from medattn.scan.windowing import percentile_window


def load_image(content: bytes, kind: str, max_values: int) -> Scan:
    """The trust boundary for image files: a damaged file's decoder error becomes a ScanError."""
    try:
        return _decode_image(content, kind, max_values)
    except ScanError:
        raise
    except BaseException as error:  # Pillow's error types for corrupt data are many; each means "damaged"
        if not is_decoder_failure(error):
            raise
        raise ScanError(f"The {kind} file is damaged and cannot be decoded ({error}).") from None


def _decode_image(content: bytes, kind: str, max_values: int) -> Scan:
    with Image.open(io.BytesIO(content)) as image:
        frame_count = getattr(image, "n_frames", 1)
        # Every page's declared size is checked before any page is decoded: a 1x1 first page can front
        # thousands of 8000x8000 ones. Pages of another size than the first are separate images, not read.
        sizes = []
        for index in range(frame_count):
            image.seek(index)
            sizes.append((image.width, image.height, len(image.getbands())))
        same = [index for index, size in enumerate(sizes) if size[:2] == sizes[0][:2]]
        check_size(*sizes[0][:2], max(size[2] for size in sizes), max_values, frames=len(same))
        frames = []
        for index in same:
            image.seek(index)
            frames.append(_image_to_array(ImageOps.exif_transpose(image)))
    if len({f.shape for f in frames}) > 1:
        frames = frames[:1]  # pages of one size but different modes (grey and colour): show the first
    stacked = np.stack(frames).astype(np.float32)
    photometric = "RGB" if stacked.ndim == 4 else "MONOCHROME2"
    meta = {"Format": kind, "Size": f"{stacked.shape[2]}×{stacked.shape[1]}", "Frames": str(len(frames))}
    window = (127.5, 255.0) if stacked.max(initial=0) <= 255 else percentile_window(stacked)
    return Scan.of_frames(stacked, photometric, "OT", default_window=window, meta=meta)


def _image_to_array(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return np.asarray(image, dtype=np.float32)
    if image.mode in ("L", "LA", "1"):
        return np.asarray(image.convert("L"))
    return np.asarray(image.convert("RGB"))
