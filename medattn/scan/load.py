"""``load_scan``: DICOM and ordinary image files into one ``Scan``, or a ``ScanError`` that says why not.

The file kind is decided from the content (DICOM preamble, image signatures), never the name.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import BinaryIO

from medattn.errors import ScanError
from medattn.scan import dicom, raster
from medattn.scan.frames import Scan

# Pixel values (rows x columns x frames x samples) accepted before decoding: memory grows with them.
DEFAULT_MAX_VALUES = 50_000_000
IMAGE_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"BM": "BMP",
}
# DICOM written without its 128-byte preamble still starts with a group 0002 or 0008 tag, either endian.
HEADERLESS_DICOM_STARTS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


def load_scan(
    source: str | PathLike | bytes | BinaryIO,
    filename: str | None = None,
    max_values: int = DEFAULT_MAX_VALUES,
) -> Scan:
    """Read a DICOM, PNG, JPEG, TIFF or BMP file from a path, bytes or a binary file object."""
    content = _read_bytes(source)
    if not content:
        raise ScanError("The file is empty.")
    kind = detect_kind(content)
    if kind == "DICOM" or (kind is None and content[:2] in HEADERLESS_DICOM_STARTS):
        return dicom.load_dicom(content, max_values)
    if kind is not None:
        return raster.load_image(content, kind, max_values)
    name = f" '{filename}'" if filename else ""
    raise ScanError(
        f"The file{name} is not a DICOM, PNG, JPEG, TIFF or BMP image. Export the scan in one of these formats."
    )


def detect_kind(content: bytes) -> str | None:
    """ "DICOM", "PNG", "JPEG", "TIFF" or "BMP" from the first bytes; None for anything else."""
    if content[128:132] == b"DICM":
        return "DICOM"
    for signature, kind in IMAGE_SIGNATURES.items():
        if content.startswith(signature):
            return kind
    return None


def _read_bytes(source: str | PathLike | bytes | BinaryIO) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, PathLike)):
        try:
            return Path(source).read_bytes()
        except OSError as error:
            raise ScanError(f"The file could not be read: {error.strerror}.") from None
    if hasattr(source, "getvalue"):
        return bytes(source.getvalue())
    return source.read()
