"""Ordinary image files (PNG, JPEG, TIFF, BMP) into a Scan, through Pillow."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

from medattn.errors import ScanError
from medattn.scan.frames import Scan
from medattn.scan.guards import (
    MAX_PAGES,
    OUT_OF_MEMORY,
    check_size,
    is_decoder_failure,
    tiff_page_sizes,
    too_many_pages,
)
from medattn.scan.windowing import percentile_window

WIDE_GREY_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
GREY_MODES = (*WIDE_GREY_MODES, "L", "LA", "1")  # held as one sample; every other mode becomes RGB


def load_image(content: bytes, kind: str, max_values: int) -> Scan:
    """The trust boundary for image files: a damaged file's decoder error becomes a ScanError."""
    try:
        return _decode_image(content, kind, max_values)
    except ScanError:
        raise
    except MemoryError:  # a decoder worker's memory limit (medattn.scan.elsewhere)
        raise ScanError(OUT_OF_MEMORY) from None
    except BaseException as error:  # Pillow's error types for corrupt data are many; each means "damaged"
        if not is_decoder_failure(error):
            raise
        raise ScanError(f"The {kind} file is damaged and cannot be decoded ({error}).") from None


def _decode_image(content: bytes, kind: str, max_values: int) -> Scan:
    with Image.open(io.BytesIO(content)) as image:
        # Every page's declared size is checked before any page is decoded: a 1x1 first page can front
        # thousands of 8000x8000 ones. Pages of another size than the first are separate images, not read.
        sizes = _page_sizes(image, content, kind)
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


def _page_sizes(image: Image.Image, content: bytes, kind: str) -> list[tuple[int, int, int]]:
    """(width, height, samples held) of every page, read from the headers without decoding or seeking a page.

    A TIFF's pages are read from its directory chain (Pillow's page count seeks every page, in time that
    grows faster than the count); an animated PNG's frames all share its canvas, and Pillow counts them from
    the header. Samples are counted as held once converted: a palette image becomes three.
    """
    if kind == "TIFF":
        return tiff_page_sizes(content, MAX_PAGES)
    pages = getattr(image, "n_frames", 1)
    if pages > MAX_PAGES:
        raise ScanError(too_many_pages(pages))
    return [(image.width, image.height, _samples_held(image.mode, len(image.getbands())))] * pages


def _samples_held(mode: str, bands: int) -> int:
    return 1 if mode in GREY_MODES else max(bands, 3)


def _image_to_array(image: Image.Image) -> np.ndarray:
    if image.mode in WIDE_GREY_MODES:
        return np.asarray(image, dtype=np.float32)
    if image.mode in GREY_MODES:
        return np.asarray(image.convert("L"))
    return np.asarray(image.convert("RGB"))
