"""Hostile DICOM files are refused with bounded memory: deflate bombs, lying lengths, deep nesting.

How long each refusal takes is recorded in the documentation (docs/ingestion.md) from measured runs, not asserted here.
"""

import io
import struct
import tracemalloc

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, generate_uid

from medattn import ScanError, load_scan
from tests.conftest import PYDICOM_FILES, all_frames

PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"


def dicom_bytes(syntax=ExplicitVRLittleEndian, **extra) -> bytes:
    """An 8x8 8-bit secondary-capture image, plus any extra elements (tag -> (VR, value))."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Rows = ds.Columns = 8
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 8, 8, 7, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(range(64))
    for tag, (vr, value) in extra.items():
        ds.add_new(int(tag, 16), vr, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def refuse(content: bytes) -> tuple[str, int]:
    """The ScanError message and the peak traced memory in bytes."""
    tracemalloc.start()
    try:
        with pytest.raises(ScanError) as caught:
            load_scan(content)
        return str(caught.value), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_intact_files_open():
    assert all_frames(load_scan(dicom_bytes())).shape == (1, 8, 8)
    assert all_frames(load_scan(dicom_bytes(DeflatedExplicitVRLittleEndian))).shape == (1, 8, 8)


def test_deflate_bomb_is_refused_unread():
    bomb = dicom_bytes(DeflatedExplicitVRLittleEndian, **{"00091010": ("OB", bytes(300 * 2**20))})
    assert len(bomb) < 2**20  # under a megabyte on disk, 300 MB inflated
    message, peak = refuse(bomb)
    assert "inflates to more than" in message
    assert peak < 32 * 2**20  # inflated 1 MB at a time, never held


def test_a_deflate_bomb_behind_a_padded_file_meta_is_refused_too():
    """The transfer syntax UID pushed past the first 4 kB by a 5 kB File Meta Information Version."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.FileMetaInformationVersion = b"\x00\x01" + bytes(5 * 2**10)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.add_new(0x00091010, "OB", bytes(300 * 2**20))
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    bomb = buffer.getvalue()
    assert bomb.find(DeflatedExplicitVRLittleEndian.encode()) > 5 * 2**10 and len(bomb) < 2**20
    message, peak = refuse(bomb)
    assert "inflates to more than" in message
    assert peak < 32 * 2**20


def test_value_length_beyond_the_end_of_the_file_is_refused():
    content = bytearray(dicom_bytes())
    at = content.index(PIXEL_DATA_TAG)
    content[at + 8 : at + 12] = struct.pack("<I", 0x7FFFFFF0)
    message, _ = refuse(bytes(content))
    assert "pixel data has 64 of 2147483632 bytes" in message


@pytest.mark.parametrize("depth", [300, 3000])
def test_sequences_nested_hundreds_deep_are_refused(depth):
    # Written by hand: pydicom's writer recurses as deeply as its reader.
    item_start, item_end = b"\xfe\xff\x00\xe0\xff\xff\xff\xff", b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
    sequence_end = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    nested = b""
    for _ in range(depth):
        nested = b"\x08\x00\x40\x11SQ\x00\x00\xff\xff\xff\xff" + item_start + nested + item_end + sequence_end
    content = dicom_bytes()
    at = content.index(PIXEL_DATA_TAG)
    message, _ = refuse(content[:at] + nested + content[at:])  # (0008,1140) sorts before pixel data
    assert "nests sequences too deeply" in message


@pytest.mark.parametrize(
    "name, header, size_at",
    [
        ("JPEG2000.dcm", b"\xff\x4f\xff\x51", 8),  # JPEG 2000: Xsiz, Ysiz in the SIZ marker
        ("SC_rgb_jpeg_dcmtk.dcm", b"\xff\xc0", 5),  # baseline JPEG: height, width in the SOF0 marker
        ("JPEGLSNearLossless_16.dcm", b"\xff\xf7", 5),  # JPEG-LS: SOF55
    ],
)
def test_a_codestream_declaring_a_huge_image_is_refused_undecoded(name, header, size_at):
    """Found by fuzzing: 1.3 kB declaring a 256 x 4 million JPEG 2000 image took OpenJPEG 6 GB and 14 s."""
    content = bytearray((PYDICOM_FILES / name).read_bytes())
    start = content.index(header, content.index(PIXEL_DATA_TAG))
    content[start + size_at : start + size_at + 4] = b"\xff\xf0\xff\xf0"  # both sides over 60,000 pixels
    message, peak = refuse(bytes(content))
    assert "The compressed image declares" in message and "refused undecoded" in message
    assert peak < 50 * 2**20


def test_a_multi_page_tiff_whose_later_pages_are_huge_decodes_none_of_them():
    """A 1x1 first page fronting 4000x4000 16-bit pages: each page's size is read before any is decoded."""
    from PIL import Image

    pages = [Image.new("I;16", (4000, 4000)) for _ in range(4)]
    buffer = io.BytesIO()
    Image.new("I;16", (1, 1)).save(
        buffer, format="TIFF", save_all=True, append_images=pages, compression="tiff_adobe_deflate"
    )
    del pages
    assert len(buffer.getvalue()) < 2 * 2**20  # 128 MB of pixels, compressed
    tracemalloc.start()
    try:
        scan = load_scan(buffer.getvalue())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert scan.frame_count == 1 and scan.frame(0).shape == (1, 1)
    assert peak < 8 * 2**20


def parse_bomb(kind: str) -> bytes:
    """32 MB of 2 million empty sequence items, or 16 MB of 2 million empty elements, after a valid header."""
    head = dicom_bytes()
    head = head[: head.index(PIXEL_DATA_TAG)]  # keep the header, drop the pixels
    if kind == "items":  # one undefined-length sequence of undefined-length empty items
        item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
        body = b"\x09\x00\x10\x10SQ\x00\x00\xff\xff\xff\xff" + item * 2_000_000 + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    else:  # empty private LO elements, in ascending tag order across 64 odd groups
        body = b"".join(
            struct.pack("<HH2sH", group, element, b"LO", 0)
            for group in range(0x0011, 0x0011 + 2 * 64, 2)
            for element in range(0x0010, 0x0010 + 32768)
        )
    return head + body


@pytest.mark.parametrize("kind, message", [("items", "sequence items"), ("elements", "elements, far more")])
def test_parse_bombs_are_refused_before_parsing(kind, message):
    bomb = parse_bomb(kind)
    assert len(bomb) > 15 * 2**20
    refused, peak = refuse(bomb)
    assert message in refused
    assert peak < 64 * 2**20  # parsing them took 1.3 GB
