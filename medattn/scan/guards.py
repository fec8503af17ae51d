"""Guards against damaged and hostile files: each check refuses, with a ScanError, before memory is spent.

Sizes are checked against the limit before decoding; a deflated dataset is measured before pydicom
inflates it; declared lengths, truncation and each compressed frame's own header are checked against
what the file says, because decoders allocate what a header declares.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import pydicom
from pydicom.encaps import generate_fragments

# The reader behind pydicom's public read_file_meta_info, which only takes a path; we hold bytes.
from pydicom.filereader import _read_file_meta_info, data_element_generator, read_preamble
from pydicom.pixels.utils import get_expected_length

from medattn.errors import ScanError

DEFLATED = pydicom.uid.DeflatedExplicitVRLittleEndian
UNDEFINED_LENGTH = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
INFLATE_INPUT_CHUNK = 64 * 2**10
# Parsing cost grows with the count of elements and sequence items, not with bytes: 2 million empty items
# in 32 MB took 58 s and 1.35 GB to parse. Real images hold hundreds of elements, and an item per
# compressed frame; these bounds are far above both.
MAX_ITEMS, MAX_ELEMENTS = 100_000, 50_000
# Pages (TIFF) or frames (animated PNG) read from one image file. Seeking costs time that grows faster than
# the count (20,000 1x1 TIFF pages: 5.5 s; 100,000: 59 s) and each page is decoded; a cine or a stack of
# slices saved as one image file holds tens to hundreds. A thousand pages are walked in milliseconds.
MAX_PAGES = 1_000
# Sequence nesting: images nest a handful of levels (per-frame functional groups, code sequences); a dataset
# 32 deep still pickles and deep-copies within Python's default recursion limit, 80 does not.
MAX_SEQUENCE_DEPTH = 32
ITEM_TAGS = (b"\xfe\xff\x00\xe0", b"\xff\xfe\xe0\x00")  # little- and big-endian
SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0"  # the tag that closes compressed pixel data
J2K_START = b"\xff\x4f\xff\x51"  # JPEG 2000: start of codestream, then the image and tile size marker
# JPEG 2000 allows 38-bit samples; no DICOM image holds more than 16 (32 for float data, never compressed).
MAX_CODESTREAM_BITS = 16
MAX_TILES = 65_535  # JPEG 2000's own bound: a tile's index (Isot) is 16 bits
# JPEG start-of-frame markers (baseline to lossless, and JPEG-LS's 0xF7); 0xC4, 0xC8 and 0xCC are not frames.
JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}


def check_size(columns: int, rows: int, samples: int, max_values: int, frames: int = 1) -> None:
    """Refuse, before decoding, what would be held decoded at once: one frame of a DICOM (frames are
    decoded one at a time), or every page of an image file. Each value is held as 4 bytes (float32)."""
    values = columns * rows * samples * frames
    if values > max_values:
        shape = f"{columns}×{rows} pixels" + (f" × {samples} samples" if samples > 1 else "")
        shape += f" × {frames} pages" if frames > 1 else ""
        raise ScanError(
            f"Image is {shape}: {4 * values / 2**20:,.1f} MB decoded, above the {4 * max_values / 2**20:,.1f} MB "
            "limit on what is decoded at once. Open a downsampled or cropped copy instead."
        )


def too_many_pages(pages: int | None = None) -> str:
    """The refusal of an image file with more pages than are read; ``pages`` where the count is known."""
    held = f"{pages:,}" if pages else f"more than {MAX_PAGES:,}"
    return (
        f"This image file holds {held} pages or frames; at most {MAX_PAGES:,} are read from one file. "
        "Save the series as separate files, or as DICOM."
    )


def tiff_page_sizes(content: bytes, max_pages: int) -> list[tuple[int, int, int]]:
    """(width, height, samples held) of each page in a TIFF's directory chain (classic or BigTIFF), read
    straight from the directories: nothing is decoded, and the walk stops at ``max_pages`` or a loop. A page
    with a colour map counts three samples, as Pillow converts it to RGB. A chain that leaves the file ends
    the walk; Pillow then reports the damage."""
    order = "<" if content[:2] == b"II" else ">"
    big = content[2:4] == (b"+\x00" if order == "<" else b"\x00+")
    count_format, entry_size, offset_format = ("Q", 20, "Q") if big else ("H", 12, "I")
    offset = struct.unpack_from(order + offset_format, content, 8 if big else 4)[0]
    pages, seen = [], set()
    while offset and offset not in seen and offset + 8 <= len(content):
        if len(pages) == max_pages:
            raise ScanError(too_many_pages())
        seen.add(offset)
        (entries,) = struct.unpack_from(order + count_format, content, offset)
        start = offset + struct.calcsize(count_format)
        if start + entries * entry_size + struct.calcsize(offset_format) > len(content):
            break
        tags = {}
        for at in range(start, start + entries * entry_size, entry_size):
            tag, kind = struct.unpack_from(order + "HH", content, at)
            if tag in (256, 257, 262, 277):  # width, height, photometric interpretation, samples per pixel
                value_at = at + (12 if big else 8)
                tags[tag] = struct.unpack_from(order + ("H" if kind == 3 else "I"), content, value_at)[0]
        samples = 3 if tags.get(262) == 3 else max(tags.get(277, 1), 1)
        pages.append((tags.get(256, 0), tags.get(257, 0), samples))
        offset = struct.unpack_from(order + offset_format, content, start + entries * entry_size)[0]
    return pages or [(0, 0, 1)]


def check_inflated_size(content: bytes, max_values: int) -> None:
    """pydicom inflates a deflated dataset whole; measure it first, against the size limit, streaming.

    The transfer syntax is read from the file meta by the reader pydicom itself uses, so no layout of the
    file (a padded meta element, say) can hide it. Input is fed 64 kB and output taken 1 MB at a time, so
    neither side is ever held whole.
    """
    stream = io.BytesIO(content)
    try:
        read_preamble(stream, force=True)
        syntax = _read_file_meta_info(stream).get("TransferSyntaxUID")
    except Exception:  # a meta pydicom cannot read: dcmread fails the same way, at the boundary
        return
    if syntax != DEFLATED:
        return
    limit = 4 * max_values + 64 * 2**20  # 32-bit values, plus room for non-pixel attributes
    inflater, compressed, inflated = zlib.decompressobj(-zlib.MAX_WBITS), memoryview(content), 0
    for start in range(stream.tell(), len(content), INFLATE_INPUT_CHUNK):
        pending = compressed[start : start + INFLATE_INPUT_CHUNK]
        while pending and not inflater.eof:
            inflated += len(inflater.decompress(pending, 2**20))
            pending = inflater.unconsumed_tail
            if inflated > limit:
                raise ScanError(
                    f"This deflated DICOM file inflates to more than {limit / 2**20:.0f} MB, above the size "
                    "limit; it is refused unread."
                )
        if inflater.eof:
            return


def check_structure_counts(content: bytes) -> None:
    """Refuse, before pydicom parses anything, a file that holds too many sequence items or elements.

    Items are counted wherever they sit in the file (an item tag hidden in a value only makes the count
    stricter). Top-level elements are counted by pydicom's own element reader, values left unread, until
    the bound. A deflated dataset is measured by ``check_inflated_size`` instead.
    """
    items = sum(content.count(tag) for tag in ITEM_TAGS)
    if items > MAX_ITEMS:
        raise ScanError(
            f"This DICOM file holds {items:,} sequence items, more than the {MAX_ITEMS:,} any image needs; "
            "it is refused unread."
        )
    stream = io.BytesIO(content)
    try:
        read_preamble(stream, force=True)
        syntax = _read_file_meta_info(stream).get("TransferSyntaxUID")
        if syntax is None or syntax == DEFLATED:
            return
        elements = data_element_generator(stream, syntax.is_implicit_VR, syntax.is_little_endian, defer_size=256)
        for count, _ in enumerate(elements, start=1):
            if count > MAX_ELEMENTS:
                raise ScanError(
                    f"This DICOM file holds more than {MAX_ELEMENTS:,} elements, far more than any image; "
                    "it is refused unread."
                )
    except ScanError:
        raise
    except Exception:  # a structure pydicom cannot walk: dcmread meets it too, at the decode boundary
        return


def check_sequence_depth(ds: pydicom.Dataset, limit: int = MAX_SEQUENCE_DEPTH) -> None:
    """Sequences nested deeper than ``limit`` are refused: the file opens, but pickling (the app's caches) and
    deep-copying (de-identification) its dataset recurse once per level and fail far below pydicom's own
    limit (80 levels failed both)."""
    for element in ds:
        if element.VR != "SQ":
            continue
        if limit == 0:
            raise ScanError(
                f"This DICOM file nests sequences more than {MAX_SEQUENCE_DEPTH} deep, deeper than any image "
                "needs: it is refused, damaged or hostile."
            )
        for item in element.value:
            check_sequence_depth(item, limit - 1)


def check_pixel_data_not_cut_off(content: bytes) -> None:
    """pydicom drops compressed pixel data (and any attribute around it) whose closing delimiter is missing."""
    for vr in (b"OB", b"OW"):  # explicit VR, as every compressed transfer syntax is
        start = content.find(b"\xe0\x7f\x10\x00" + vr + b"\x00\x00\xff\xff\xff\xff")
        if start >= 0 and SEQUENCE_DELIMITER not in content[start:]:
            raise ScanError("The file is truncated: its compressed pixel data ends before its closing delimiter.")


def check_declared_lengths(ds: pydicom.Dataset) -> None:
    """A top-level value shorter than its declared length means the file ends early (or lies about it)."""
    for element in ds.elements():  # raw elements: nothing is converted yet
        declared, value = getattr(element, "length", None), getattr(element, "value", None)
        if isinstance(value, bytes) and declared not in (None, UNDEFINED_LENGTH) and len(value) < declared:
            what = "pixel data" if element.tag == PIXEL_DATA else "an element"
            raise ScanError(f"The file is truncated: {what} has {len(value)} of {declared} bytes.")


def check_not_truncated(ds: pydicom.Dataset) -> None:
    """Uncompressed pixel data shorter than its attributes say (YBR 4:2:2 and 1-bit included) was cut off."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if "PixelData" not in ds or (syntax is not None and syntax.is_compressed):
        return
    expected = get_expected_length(ds, unit="bytes")
    present = len(ds["PixelData"].value or b"")
    if present < expected:
        raise ScanError(f"The file is truncated: pixel data has {present} of {expected} bytes.")


@dataclass(frozen=True)
class Codestream:
    """What a compressed frame's own header declares: decoders allocate this, not what the DICOM header says."""

    width: int
    height: int
    components: int
    bits: int
    tiles: int = 1


def check_codestreams(ds: pydicom.Dataset, rows: int, columns: int, samples: int) -> None:
    """Each compressed frame whose own header declares other than what the file's attributes allow is refused.

    A 1 kB file declaring a 60000 x 60000 JPEG 2000 image made OpenJPEG take 6 GB; a JPEG-LS frame of height
    0 made libjpeg allocate without end after CharLS refused it; a 3.7 kB JPEG 2000 codestream declaring
    1,024 components took 5 GB (all found by fuzzing). Bit depth is bounded by the largest any codec writes.
    """
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if "PixelData" not in ds or syntax is None or not syntax.is_encapsulated:
        return
    for fragment in generate_fragments(ds.PixelData):
        declared = codestream_header(fragment)
        if declared is None:
            continue
        problem = None
        if not declared.width or not declared.height:
            problem = f"a frame of {declared.width}×{declared.height} pixels"
        elif declared.width * declared.height > rows * columns:
            problem = f"{declared.width}×{declared.height} pixels, but the file says {columns}×{rows}"
        elif not 0 < declared.components <= samples:
            problem = f"{declared.components} components, but the file says {samples} samples per pixel"
        elif declared.bits > MAX_CODESTREAM_BITS:
            problem = f"{declared.bits}-bit samples"
        elif not 0 < declared.tiles <= MAX_TILES:
            problem = f"{declared.tiles:,} tiles"
        if problem:
            raise ScanError(
                f"The compressed image declares {problem}: it is damaged or hostile, and is refused undecoded."
            )


def codestream_header(fragment: bytes) -> Codestream | None:
    """The header of a JPEG 2000 codestream or a JPEG / JPEG-LS stream, if the fragment starts one."""
    start = fragment.find(J2K_START, 0, 4096)  # a raw codestream, or one inside a JP2 box
    if start >= 0 and len(fragment) >= start + 43:
        # SIZ: image and tile sizes and offsets, then the component count and the first component's depth.
        x, y, x_offset, y_offset, tile_x, tile_y, tile_x_offset, tile_y_offset = struct.unpack(
            ">8I", fragment[start + 8 : start + 40]
        )
        components = int.from_bytes(fragment[start + 40 : start + 42], "big")
        tiles = 0
        if tile_x and tile_y:
            tiles = -(-max(x - tile_x_offset, 0) // tile_x) * -(-max(y - tile_y_offset, 0) // tile_y)
        width, height = max(x - x_offset, 0), max(y - y_offset, 0)
        return Codestream(width, height, components, (fragment[start + 42] & 0x7F) + 1, tiles)
    if not fragment.startswith(b"\xff\xd8"):
        return None
    position = 2
    while position + 10 <= len(fragment):  # walk the marker segments to the frame header (SOF)
        if fragment[position] != 0xFF:
            return None
        marker = fragment[position + 1]
        if marker in JPEG_FRAME_MARKERS:
            bits = fragment[position + 4]
            height, width = struct.unpack(">2H", fragment[position + 5 : position + 9])
            return Codestream(width, height, fragment[position + 9], bits)
        position += 2 + int.from_bytes(fragment[position + 2 : position + 4], "big")
    return None


OUT_OF_MEMORY = (
    "Decoding this file needed more memory than a decoder may use, so it was stopped: it is damaged or hostile, "
    "or too large to show here."
)


def is_decoder_failure(error: BaseException) -> bool:
    """Any Exception, and a Rust decoder's panic (pyo3's PanicException derives from BaseException)."""
    return isinstance(error, Exception) or type(error).__name__ == "PanicException"
