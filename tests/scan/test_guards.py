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
from tests.conftest import PYDICOM_DATA_FILES, PYDICOM_FILES, all_frames

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


def load_source(name: str) -> bytes:
    """A real file from pydicom's test files or pydicom-data."""
    path = PYDICOM_FILES / name
    return (path if path.exists() else PYDICOM_DATA_FILES / name).read_bytes()


def crafted(name: str, header: bytes, at: int, value: bytes, frame: int = 1) -> bytes:
    """The real file ``name`` with ``value`` written ``at`` bytes into the ``header`` of its ``frame``-th codestream."""
    content = bytearray(load_source(name))
    start = content.index(header, content.index(PIXEL_DATA_TAG))
    for _ in range(frame - 1):
        start = content.index(header, start + 1)
    content[start + at : start + at + len(value)] = value
    return bytes(content)


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


def nested_sequences(depth: int) -> bytes:
    """An 8x8 image whose (0008,1140) sequence nests ``depth`` deep; written by hand, as pydicom's writer
    recurses as deeply as its reader."""
    item_start, item_end = b"\xfe\xff\x00\xe0\xff\xff\xff\xff", b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
    sequence_end = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    nested = b""
    for _ in range(depth):
        nested = b"\x08\x00\x40\x11SQ\x00\x00\xff\xff\xff\xff" + item_start + nested + item_end + sequence_end
    content = dicom_bytes()
    at = content.index(PIXEL_DATA_TAG)
    return content[:at] + nested + content[at:]  # (0008,1140) sorts before pixel data


@pytest.mark.parametrize("depth, message", [(33, "more than 32 deep"), (80, "more than 32 deep"),
                                            (300, "too deeply"), (3000, "too deeply")])  # fmt: skip
def test_sequences_nested_deeper_than_a_copy_survives_are_refused(depth, message):
    """80 to 150 levels opened, then the app's cache failed to pickle the header and showed the stack trace,
    and de-identification failed in deepcopy."""
    refused, _ = refuse(nested_sequences(depth))
    assert message in refused


def test_the_deepest_nesting_accepted_survives_pickling_and_deep_copying():
    import copy
    import pickle

    import pydicom

    content = nested_sequences(32)
    assert all_frames(load_scan(content)).shape == (1, 8, 8)
    ds = pydicom.dcmread(io.BytesIO(content))
    assert pickle.loads(pickle.dumps(ds)) == ds and copy.deepcopy(ds) == ds


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


@pytest.mark.parametrize(
    "name, header, at, value, problem",
    [
        # frame 2 of 10 of a real JPEG-LS MR, its SOF55 height set to 0: libjpeg took 2.4 GB in 18 s, and more
        ("emri_small_jpeg_ls_lossless.dcm", b"\xff\xf7", 5, b"\x00\x00", "a frame of 64×0 pixels"),
        ("JPEG2000.dcm", b"\xff\x4f\xff\x51", 40, b"\x04\x00", "1024 components"),  # Csiz: 3.7 kB took 5 GB
        ("JPEG2000.dcm", b"\xff\x4f\xff\x51", 42, b"\x25", "38-bit samples"),  # the first component's Ssiz
        ("JPEG2000.dcm", b"\xff\x4f\xff\x51", 24, b"\0\0\0\1\0\0\0\1", "262,144 tiles"),  # 1-pixel tiles
        ("SC_rgb_jpeg_dcmtk.dcm", b"\xff\xc0", 9, b"\xff", "255 components"),  # SOF0's Nf
    ],
)
def test_a_codestream_declaring_what_the_file_does_not_is_refused_undecoded(name, header, at, value, problem):
    message, peak = refuse(crafted(name, header, at, value, frame=2 if name.startswith("emri") else 1))
    assert problem in message and "refused undecoded" in message
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


def tiff_of_pages(pages: int) -> bytes:
    """A TIFF of ``pages`` 1x1 8-bit grey pages, written directory by directory (Pillow takes minutes to save
    20,000 pages); every page's strip is the same byte."""
    entry_count, pixel_at = 9, 8
    directory_size = 2 + 12 * entry_count + 4
    content = bytearray(b"II*\x00" + struct.pack("<I", 9) + b"\x80")
    for page in range(pages):
        at = len(content)
        following = at + directory_size if page < pages - 1 else 0
        entries = [(256, 3, 1), (257, 3, 1), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, pixel_at),
                   (277, 3, 1), (278, 3, 1), (279, 4, 1)]  # fmt: skip
        content += struct.pack("<H", entry_count)
        content += b"".join(struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in entries)
        content += struct.pack("<I", following)
    return bytes(content)


def test_page_and_frame_floods_are_refused_before_any_page_is_sought():
    """20,000 1x1 TIFF pages took 5.5 s to count through Pillow, and the app decoded them twice; an APNG's
    frames were loaded one by one on seeking. Both are refused from their headers."""
    from PIL import Image

    assert all_frames(load_scan(tiff_of_pages(3))).shape == (3, 1, 1)  # the hand-written file is a real TIFF
    message, peak = refuse(tiff_of_pages(20_000))
    assert "holds more than 1,000 pages or frames" in message and peak < 16 * 2**20
    buffer = io.BytesIO()
    frames = [Image.new("L", (1, 1), value % 250) for value in range(1, 2_000)]
    Image.new("L", (1, 1)).save(buffer, format="PNG", save_all=True, append_images=frames)
    message, peak = refuse(buffer.getvalue())
    assert "holds 2,000 pages or frames" in message and peak < 16 * 2**20


def test_a_palette_image_is_counted_as_the_three_samples_it_becomes():
    """A 6 kB palette PNG of 7071 x 7071 passed the limit counted as one sample, then was held as RGB (1.8 GB)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("P", (7071, 7071)).save(buffer, format="PNG")
    message, peak = refuse(buffer.getvalue())
    assert "7071×7071 pixels × 3 samples" in message and peak < 16 * 2**20
    buffer = io.BytesIO()
    Image.new("P", (64, 48), 5).save(buffer, format="PNG")
    assert all_frames(load_scan(buffer.getvalue())).shape == (1, 48, 64, 3)  # a small one opens, as RGB
