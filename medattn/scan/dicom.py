"""DICOM files into a Scan through pydicom and its decoder plugins.

Grey pixels are kept in modality units (Modality LUT / rescale applied); windowing is left to
``Scan.display``. The guards in ``medattn.scan.guards`` run before anything is decoded.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from collections.abc import Callable

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000TransferSyntaxes,
)

from medattn.errors import ScanError
from medattn.scan import guards
from medattn.scan.frames import Scan
from medattn.scan.metadata import burned_in_text, dicom_meta, transfer_syntax_name
from medattn.scan.windowing import percentile_window

# pydicom's validation warnings echo raw attribute values (a patient's name, say), and it logs each
# warning too. Warning filters are process-wide state that ``catch_warnings`` cannot scope to one
# thread (Streamlit runs each session on its own), so this is set once for the process: no value
# validation on read, pydicom's own warnings and log records dropped. Lost data is detected from the
# parsed dataset instead (see ``medattn.scan.guards``), never from a warning.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
logging.getLogger("pydicom").propagate = False

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
ENCAPSULATED_ITEM = b"\xfe\xff\x00\xe0"  # the item tag that opens compressed pixel data


def load_dicom(content: bytes, max_values: int) -> Scan:
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
    except MemoryError:  # a decoder worker's memory limit (medattn.scan.elsewhere)
        raise ScanError(guards.OUT_OF_MEMORY) from None
    except BaseException as error:
        if not guards.is_decoder_failure(error):
            raise
        raise ScanError(f"The DICOM file is damaged and cannot be read ({type(error).__name__}).") from None


def _decode_dicom(content: bytes, max_values: int) -> Scan:
    guards.check_inflated_size(content, max_values)
    guards.check_structure_counts(content)
    ds = pydicom.dcmread(io.BytesIO(content), force=True)
    guards.check_declared_lengths(ds)
    guards.check_sequence_depth(ds)
    _infer_missing_transfer_syntax(ds)
    if not any(keyword in ds for keyword in PIXEL_KEYWORDS):
        guards.check_pixel_data_not_cut_off(content)
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
    guards.check_size(columns, rows, samples, max_values)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    guards.check_not_truncated(ds)
    guards.check_codestreams(ds, rows, columns, samples)
    colour = samples > 1 or photometric in ("RGB", "PALETTE COLOR")
    decode = _frame_decoder(ds, photometric, samples, several=frame_count > 1)
    first = decode(0)  # every file's first frame is decoded here, so a file that cannot be shown says so now
    if frame_count == 1:
        for keyword in PIXEL_KEYWORDS:  # decoded: drop the raw bytes (peak memory)
            ds.pop(keyword, None)
    if colour and photometric.startswith("YBR"):
        photometric = "RGB"  # pydicom's decoders convert YBR to RGB by default
    scan = Scan(
        frame_count=frame_count,
        is_colour=colour,
        photometric="RGB" if photometric == "PALETTE COLOR" else photometric,
        modality=str(ds.get("Modality", "OT")),
        default_window=_dicom_window(ds, first),
        # One frame: the decoded array is all there is. Several: the dataset keeps the compressed frames.
        decode=(lambda _: first) if frame_count == 1 else decode,
        pixel_spacing=_pixel_spacing(ds),
        meta=dicom_meta(ds, first, frame_count),
        instance_uid=str(ds.get("SOPInstanceUID", "")).strip() or None,
        burned_in_annotation=burned_in_text(ds),
    )
    scan._last = (0, first)
    return scan


def _frame_decoder(ds: pydicom.Dataset, photometric: str, samples: int, several: bool) -> Callable[[int], np.ndarray]:
    """frame index -> float32 modality values, decoding that frame alone (pydicom's ``index``)."""

    def decode(index: int) -> np.ndarray:
        try:
            pixels = _decoded_pixels(ds, index if several else None)
            if photometric == "PALETTE COLOR":
                pixels = apply_color_lut(pixels, ds)
            elif samples == 1:
                pixels = _modality_units(pixels, ds)
        except MemoryError:
            raise ScanError(guards.OUT_OF_MEMORY) from None
        except BaseException as error:  # a later frame decodes after load_scan's boundary: this is its own
            if not guards.is_decoder_failure(error):
                raise
            syntax, reason = transfer_syntax_name(ds), type(error).__name__
            raise ScanError(f"The image in this DICOM file ({syntax}) cannot be decoded ({reason}).") from None
        return np.asarray(pixels, dtype=np.float32)

    return decode


def _decoded_pixels(ds: pydicom.Dataset, index: int | None) -> np.ndarray:
    """Frame ``index`` of ``ds`` (None: all) as stored. JPEG 2000 first by Pillow's OpenJPEG, which decodes on the
    threads ``OPJ_NUM_THREADS`` asks for (``runtime.decode_on_every_core``), the same values twice as fast on 2
    cores; pylibjpeg-openjpeg, pydicom's first choice, decodes on one. Pillow refuses some streams that
    pylibjpeg-openjpeg reads (GDCM's ``GDCMJ2K_TextGBR.dcm``): those go to pydicom's choice, as anything else."""
    if ds.file_meta.get("TransferSyntaxUID") in JPEG2000TransferSyntaxes:
        try:
            return pixel_array(ds, index=index, decoding_plugin="pillow")
        except MemoryError:
            raise
        except Exception:  # refused by Pillow: pydicom's choice decodes it, or says why it cannot
            pass
    return pixel_array(ds, index=index)


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
        return percentile_window(pixels)
    return (centre, width) if width > 0 else percentile_window(pixels)


def _pixel_spacing(ds: pydicom.Dataset) -> tuple[float, float] | None:
    """(row, column) spacing in mm, or None where the file gives none that is usable: pydicom-data's real chest
    CR (RG1_J2KR) says 0\\0, which would make every length zero."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            rows, columns = (float(v) for v in ds.get(keyword))
        except (TypeError, ValueError):
            continue
        if rows > 0 and columns > 0 and math.isfinite(rows + columns):
            return rows, columns
    return None


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
