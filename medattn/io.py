"""Scan ingestion: DICOM and ordinary image files into one ``Scan``, or a ``ScanError`` that says why not.

The file kind is decided from the content (DICOM preamble, image signatures), never the name.
Grey pixels are kept in modality units (Modality LUT / rescale applied); ``Scan.display``
applies the VOI window and turns MONOCHROME1 the right way up. ``Scan.meta`` is built from an
allow-list of technical attributes, so no patient identifier can reach the page or a log.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import pydicom
from PIL import Image, ImageOps
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import generate_fragments

# The reader behind pydicom's public read_file_meta_info, which only takes a path; we hold bytes.
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.pixels import apply_color_lut, apply_modality_lut
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

# pydicom's validation warnings echo raw attribute values (a patient's name, say), and it logs each
# warning too. Warning filters are process-wide state that ``catch_warnings`` cannot scope to one
# thread (Streamlit runs each session on its own), so this is set once for the process: no value
# validation on read, pydicom's own warnings and log records dropped. Lost data is detected from the
# parsed dataset instead (see ``_check_pixel_data_read``), never from a warning.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
logging.getLogger("pydicom").propagate = False

# Pixel values (rows x columns x frames x samples) accepted before decoding: memory grows with them.
DEFAULT_MAX_VALUES = 50_000_000
DEFLATED = pydicom.uid.DeflatedExplicitVRLittleEndian
UNDEFINED_LENGTH = 0xFFFFFFFF
DISPLAY_BLOCK_ROWS = 128
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
PIXEL_DATA = 0x7FE00010
ENCAPSULATED_ITEM = b"\xfe\xff\x00\xe0"  # the item tag that opens compressed pixel data
SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0"  # and the tag that closes it
J2K_START = b"\xff\x4f\xff\x51"  # JPEG 2000: start of codestream, then the image and tile size marker
# JPEG start-of-frame markers (baseline to lossless, and JPEG-LS's 0xF7); 0xC4, 0xC8 and 0xCC are not frames.
JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE_SIGNATURES = {
    PNG_SIGNATURE: "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"BM": "BMP",
}
# Technical attributes shown to the user. An allow-list, so nothing identifying slips through.
DICOM_DISPLAY_ATTRIBUTES = {
    "Modality": "Modality",
    "BodyPartExamined": "Body part",
    "Manufacturer": "Manufacturer",
    "PhotometricInterpretation": "Photometric interpretation",
    "BitsStored": "Bits stored",
}


class ScanError(ValueError):
    """The upload cannot be shown; the message says what is wrong with this file and what to do."""


@dataclass
class Scan:
    """Pixels in modality units: ``frames`` float32 (n, H, W) grey or (n, H, W, 3) RGB."""

    frames: np.ndarray
    photometric: str
    modality: str
    default_window: tuple[float, float]
    pixel_spacing: tuple[float, float] | None = None
    meta: dict[str, str] = field(default_factory=dict)
    # Only ever hashed into a study key (medattn.store.study_key); never shown, logged or stored.
    instance_uid: str | None = field(default=None, repr=False)

    @property
    def is_colour(self) -> bool:
        return self.frames.ndim == 4

    @property
    def frame_count(self) -> int:
        return self.frames.shape[0]

    def display(self, frame: int = 0, window: tuple[float, float] | None = None) -> np.ndarray:
        """uint8 H x W (grey) or H x W x 3 (RGB) ready to show: windowed, dense tissue bright."""
        pixels = self.frames[frame]
        if self.is_colour:
            top = 255.0 if pixels.max(initial=0) <= 255 else float(pixels.max())
            return np.clip(pixels / top * 255.0, 0, 255).astype(np.uint8)
        centre, width = (float(v) for v in (window or self.default_window))
        width = max(width, 1e-6)
        low, scale = centre - width / 2, 255.0 / width
        alpha, beta = (-scale, 255.0 + low * scale) if self.photometric == "MONOCHROME1" else (scale, -low * scale)
        shown = np.empty(pixels.shape, dtype=np.uint8)
        # In blocks of rows, so no full-size float copy is ever made. Each block is clipped to the window,
        # then one fused OpenCV pass scales, offsets, rounds and saturates it to uint8 (its absolute
        # value is harmless: after clipping, every scaled value lies in [0, 255]).
        for start in range(0, pixels.shape[0], DISPLAY_BLOCK_ROWS):
            block = np.clip(pixels[start : start + DISPLAY_BLOCK_ROWS], low, low + width)
            np.copyto(block, low, where=np.isnan(block))  # NaN shows as the window's floor
            shown[start : start + DISPLAY_BLOCK_ROWS] = cv2.convertScaleAbs(block, alpha=alpha, beta=beta)
        return shown


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
    if kind == "DICOM":
        return _load_dicom(content, max_values)
    if kind is not None:
        return _load_image(content, kind, max_values)
    # DICOM written without its 128-byte preamble still starts with a group 0002 or 0008 tag,
    # little- or big-endian.
    if content[:2] in (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08"):
        return _load_dicom(content, max_values)
    name = f" '{filename}'" if filename else ""
    raise ScanError(
        f"The file{name} is not a DICOM, PNG, JPEG, TIFF or BMP image. Export the scan in one of these formats."
    )


def detect_kind(content: bytes) -> str | None:
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


def _check_size(columns: int, rows: int, frames: int, samples: int, max_values: int) -> None:
    values = columns * rows * frames * samples
    if values > max_values:
        shape = f"{columns}×{rows} pixels" + (f" × {frames} frames" if frames > 1 else "")
        shape += f" × {samples} samples" if samples > 1 else ""
        raise ScanError(
            f"Image is {shape} ({values / 1e6:.1f} million values), above the {max_values / 1e6:g}-million limit. "
            "Downsample it or raise the limit."
        )


def _load_image(content: bytes, kind: str, max_values: int) -> Scan:
    """The trust boundary for image files: a damaged file's decoder error becomes a ScanError."""
    try:
        return _decode_image(content, kind, max_values)
    except ScanError:
        raise
    except BaseException as error:  # Pillow's error types for corrupt data are many; each means "damaged"
        if not _is_decoder_failure(error):
            raise
        raise ScanError(f"The {kind} file is damaged and cannot be decoded ({error}).") from None


def _decode_image(content: bytes, kind: str, max_values: int) -> Scan:
    with Image.open(io.BytesIO(content)) as image:
        frame_count = getattr(image, "n_frames", 1)
        _check_size(image.width, image.height, frame_count, len(image.getbands()), max_values)
        frames = []
        for index in range(frame_count):
            image.seek(index)
            frames.append(_image_to_array(ImageOps.exif_transpose(image)))
    if len({f.shape for f in frames}) > 1:
        frames = frames[:1]  # pages of differing size are separate images: show the first
    stacked = np.stack(frames).astype(np.float32)
    photometric = "RGB" if stacked.ndim == 4 else "MONOCHROME2"
    meta = {"Format": kind, "Size": f"{stacked.shape[2]}×{stacked.shape[1]}", "Frames": str(len(frames))}
    window = (127.5, 255.0) if stacked.max(initial=0) <= 255 else _percentile_window(stacked)
    return Scan(stacked, photometric, "OT", window, None, meta)


def _image_to_array(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return np.asarray(image, dtype=np.float32)
    if image.mode in ("L", "LA", "1"):
        return np.asarray(image.convert("L"))
    return np.asarray(image.convert("RGB"))


def _percentile_window(pixels: np.ndarray) -> tuple[float, float]:
    """1st..99th percentile window, from at most about a million evenly spaced pixels (plenty for a window)."""
    sample = pixels.ravel()[:: max(1, pixels.size // 1_000_000)]
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, [1, 99])
    return float((low + high) / 2), float(max(high - low, 1e-3))


def _load_dicom(content: bytes, max_values: int) -> Scan:
    """The trust boundary for DICOM: whatever a damaged file makes pydicom raise becomes a ScanError.

    pydicom parses lazily, so a corrupt file can raise nearly any exception type wherever an attribute
    is first touched (BytesLengthException, NotImplementedError for an unknown VR, struct errors…);
    here each of them means "this file is damaged". Only the type is reported: pydicom's messages can
    echo raw element bytes, which may be a patient's name.
    """
    try:
        return _decode_dicom(content, max_values)
    except ScanError:
        raise
    except RecursionError:
        raise ScanError("This DICOM file nests sequences too deeply to read; it is damaged or hostile.") from None
    except BaseException as error:
        if not _is_decoder_failure(error):
            raise
        raise ScanError(f"The DICOM file is damaged and cannot be read ({type(error).__name__}).") from None


def _is_decoder_failure(error: BaseException) -> bool:
    """Any Exception, and a Rust decoder's panic (pyo3's PanicException derives from BaseException)."""
    return isinstance(error, Exception) or type(error).__name__ == "PanicException"


def _decode_dicom(content: bytes, max_values: int) -> Scan:
    _check_inflated_size(content, max_values)
    ds = pydicom.dcmread(io.BytesIO(content), force=True)
    _check_declared_lengths(ds)
    _infer_missing_transfer_syntax(ds)
    if not any(keyword in ds for keyword in PIXEL_KEYWORDS):
        _check_pixel_data_not_cut_off(content)
        kind = _describe_sop_class(ds)
        if kind.endswith("Image"):
            raise ScanError(f"This DICOM file says it is {kind} but holds no pixel data: it is probably damaged.")
        raise ScanError(f"This DICOM file holds no image (it is {kind}).")
    rows, columns = _int_attribute(ds, "Rows", 0), _int_attribute(ds, "Columns", 0)
    frame_count = _int_attribute(ds, "NumberOfFrames", 0)
    if not frame_count and ds.get("NumberOfFrames") not in (None, ""):  # an IS of '1A' here is not unrelated
        raise ScanError(
            "This DICOM file's Number of Frames is not a positive whole number, so its frames cannot be laid out."
        )
    frame_count = frame_count or 1
    samples = _int_attribute(ds, "SamplesPerPixel", 1)
    if not rows or not columns:
        raise ScanError("This DICOM file has pixel data but no image size (Rows and Columns): it is damaged.")
    _check_size(columns, rows, frame_count, samples, max_values)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    _check_not_truncated(ds)
    _check_codestream_sizes(ds, rows, columns)
    try:
        pixels = ds.pixel_array
        for keyword in PIXEL_KEYWORDS:  # decoded: drop the raw bytes before the float32 copy (peak memory)
            ds.pop(keyword, None)
        if photometric == "PALETTE COLOR":
            pixels, photometric = apply_color_lut(pixels, ds), "RGB"
        elif samples == 1:
            pixels = _modality_units(pixels, ds)
    except (ValueError, RuntimeError, NotImplementedError, AttributeError, KeyError, TypeError) as error:
        syntax = _transfer_syntax_name(ds)
        reason = type(error).__name__
        raise ScanError(f"The image in this DICOM file ({syntax}) cannot be decoded ({reason}).") from None
    pixels = np.asarray(pixels, dtype=np.float32)
    colour = samples > 1 or photometric == "RGB"
    if (pixels.ndim == 2 and not colour) or (pixels.ndim == 3 and colour):
        pixels = pixels[None]
    if colour and photometric.startswith("YBR"):
        photometric = "RGB"  # pydicom's decoders convert YBR to RGB by default
    return Scan(
        frames=pixels,
        photometric=photometric,
        modality=str(ds.get("Modality", "OT")),
        default_window=_dicom_window(ds, pixels),
        pixel_spacing=_pixel_spacing(ds),
        meta=_dicom_meta(ds, pixels),
        instance_uid=str(ds.get("SOPInstanceUID", "")).strip() or None,
    )


def _check_inflated_size(content: bytes, max_values: int) -> None:
    """pydicom inflates a deflated dataset whole; measure it first, 1 MB at a time, against the size limit."""
    if DEFLATED.encode() not in content[:4096]:  # the transfer syntax UID sits in the file meta
        return
    stream = io.BytesIO(content)
    read_preamble(stream, force=True)
    if _read_file_meta_info(stream).get("TransferSyntaxUID") != DEFLATED:
        return
    limit = 4 * max_values + 64 * 2**20  # 32-bit values, plus room for non-pixel attributes
    inflater, pending, inflated = zlib.decompressobj(-zlib.MAX_WBITS), content[stream.tell() :], 0
    while pending and not inflater.eof:
        inflated += len(inflater.decompress(pending, 2**20))
        pending = inflater.unconsumed_tail
        if inflated > limit:
            raise ScanError(
                f"This deflated DICOM file inflates to more than {limit / 2**20:.0f} MB, above the size limit; "
                "it is refused unread."
            )


def _modality_units(pixels: np.ndarray, ds: pydicom.Dataset) -> np.ndarray:
    """Rescale slope and intercept applied; in float32 in place where that is exact, else by pydicom.

    pydicom rescales in float64, four times the size of 16-bit pixels. Whole-number slopes and
    intercepts on pixels of 16 bits or fewer (CT's usual 1 and -1024) give the same values in float32,
    without that copy. Anything else (fractional slopes, a Modality LUT Sequence) goes through pydicom.
    """
    slope, intercept = ds.get("RescaleSlope", 1), ds.get("RescaleIntercept", 0)
    exact = (
        "ModalityLUTSequence" not in ds
        and pixels.dtype.itemsize <= 2
        and all(isinstance(v, (int, float)) and float(v).is_integer() for v in (slope, intercept))
    )
    if not exact:
        return apply_modality_lut(pixels, ds)
    rescaled = pixels.astype(np.float32)
    if slope != 1:
        rescaled *= slope
    if intercept:
        rescaled += intercept
    return rescaled


def _check_pixel_data_not_cut_off(content: bytes) -> None:
    """pydicom drops compressed pixel data (and any attribute around it) whose closing delimiter is missing."""
    for vr in (b"OB", b"OW"):  # explicit VR, as every compressed transfer syntax is
        start = content.find(b"\xe0\x7f\x10\x00" + vr + b"\x00\x00\xff\xff\xff\xff")
        if start >= 0 and SEQUENCE_DELIMITER not in content[start:]:
            raise ScanError("The file is truncated: its compressed pixel data ends before its closing delimiter.")


def _infer_missing_transfer_syntax(ds: pydicom.Dataset) -> None:
    """No Transfer Syntax UID: use the encoding the dataset was parsed with, for native pixel data only.

    Compressed (encapsulated) pixel data could be any of a dozen codecs, so it is refused, never guessed.
    """
    meta = ds.get("file_meta") or FileMetaDataset()
    if "TransferSyntaxUID" in meta or "PixelData" not in ds:
        return
    if bytes(ds.PixelData[:4]) == ENCAPSULATED_ITEM:
        raise ScanError("The image is compressed, but the file does not say how (it has no Transfer Syntax UID).")
    implicit, little_endian = ds.original_encoding
    meta.TransferSyntaxUID = (
        ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little_endian else ExplicitVRBigEndian
    )
    ds.file_meta = meta


def _check_declared_lengths(ds: pydicom.Dataset) -> None:
    """A top-level value shorter than its declared length means the file ends early (or lies about it)."""
    for element in ds.elements():  # raw elements: nothing is converted yet
        declared, value = getattr(element, "length", None), getattr(element, "value", None)
        if isinstance(value, bytes) and declared not in (None, UNDEFINED_LENGTH) and len(value) < declared:
            what = "pixel data" if element.tag == PIXEL_DATA else "an element"
            raise ScanError(f"The file is truncated: {what} has {len(value)} of {declared} bytes.")


def _check_not_truncated(ds: pydicom.Dataset) -> None:
    """Uncompressed pixel data shorter than its attributes say (YBR 4:2:2 and 1-bit included) was cut off."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if "PixelData" not in ds or (syntax is not None and syntax.is_compressed):
        return
    expected = get_expected_length(ds, unit="bytes")
    present = len(ds["PixelData"].value or b"")
    if present < expected:
        raise ScanError(f"The file is truncated: pixel data has {present} of {expected} bytes.")


def _check_codestream_sizes(ds: pydicom.Dataset, rows: int, columns: int) -> None:
    """A compressed frame whose own header declares more pixels than the file's Rows x Columns is refused.

    Decoders allocate what the codestream's header says, not what the DICOM header says: a 1 kB file
    declaring a 60000 x 60000 JPEG 2000 image made OpenJPEG take 6 GB (found by fuzzing).
    """
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if "PixelData" not in ds or syntax is None or not syntax.is_encapsulated:
        return
    for fragment in generate_fragments(ds.PixelData):
        declared = _codestream_size(fragment)
        if declared and declared[0] * declared[1] > rows * columns:
            raise ScanError(
                f"The compressed image declares {declared[0]}×{declared[1]} pixels, but the file says "
                f"{columns}×{rows}: it is damaged or hostile, and is refused undecoded."
            )


def _codestream_size(fragment: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a JPEG 2000 codestream or a JPEG / JPEG-LS stream, if it starts one."""
    start = fragment.find(J2K_START, 0, 4096)  # a raw codestream, or one inside a JP2 box
    if start >= 0 and len(fragment) >= start + 24:
        x, y, x_offset, y_offset = struct.unpack(">4I", fragment[start + 8 : start + 24])
        return max(x - x_offset, 0), max(y - y_offset, 0)
    if not fragment.startswith(b"\xff\xd8"):
        return None
    position = 2
    while position + 9 <= len(fragment):  # walk the marker segments to the frame header (SOF)
        if fragment[position] != 0xFF:
            return None
        marker = fragment[position + 1]
        if marker in JPEG_FRAME_MARKERS:
            height, width = struct.unpack(">2H", fragment[position + 5 : position + 9])
            return width, height
        position += 2 + int.from_bytes(fragment[position + 2 : position + 4], "big")
    return None


def _int_attribute(ds: pydicom.Dataset, keyword: str, default: int) -> int:
    """An integer attribute, or ``default`` where it is absent, empty or malformed (an IS of '1A')."""
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _dicom_window(ds: pydicom.Dataset, pixels: np.ndarray) -> tuple[float, float]:
    centre, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    try:
        centre = float(centre[0] if isinstance(centre, pydicom.multival.MultiValue) else centre)
        width = float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width)
    except (TypeError, ValueError):
        return _percentile_window(pixels)
    return (centre, width) if width > 0 else _percentile_window(pixels)


def _pixel_spacing(ds: pydicom.Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            rows, columns = (float(v) for v in ds.get(keyword))
            return rows, columns
        except (TypeError, ValueError):
            continue
    return None


def _transfer_syntax_name(ds: pydicom.Dataset) -> str:
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    return syntax.name if syntax else "no transfer syntax"


def _describe_sop_class(ds: pydicom.Dataset) -> str:
    sop_class = ds.get("SOPClassUID") or getattr(ds.get("file_meta"), "MediaStorageSOPClassUID", None)
    name = sop_class.name if isinstance(sop_class, pydicom.uid.UID) and sop_class.is_valid else ""
    name = name.removesuffix(" Storage") if name else ""
    if not name:
        return "not an image object"
    # "an RT Plan", "an Encapsulated PDF", "a Basic Text SR": acronyms are read letter by letter.
    first = name.split()[0]
    vowel_sound = first[0] in "AEIOU" or (first.isupper() and first[0] in "FHLMNRSX")
    return f"{'an' if vowel_sound else 'a'} {name}"


def _dicom_meta(ds: pydicom.Dataset, pixels: np.ndarray) -> dict[str, str]:
    meta = {}
    for keyword, label in DICOM_DISPLAY_ATTRIBUTES.items():
        try:
            value = ds.get(keyword)
        except (ValueError, TypeError):
            continue
        if value not in (None, ""):
            meta[label] = str(value)
    meta["Size"] = f"{pixels.shape[2]}×{pixels.shape[1]}"
    meta["Frames"] = str(pixels.shape[0])
    meta["Transfer syntax"] = _transfer_syntax_name(ds)
    return meta
