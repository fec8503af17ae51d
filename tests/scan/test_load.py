import io
import tracemalloc
from collections import Counter

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.pixels import apply_color_lut, apply_modality_lut

from medattn import ScanError, load_scan
from tests.conftest import PYDICOM_DATA_FILES, PYDICOM_FILES, all_frames, real_dicom_files


def image_bytes(image: Image.Image, kind: str, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **save_args)
    return buffer.getvalue()


def png_bytes(array: np.ndarray) -> bytes:
    return image_bytes(Image.fromarray(array), "PNG")


def test_ct_pixels_are_in_modality_units(ct_file):
    scan = load_scan(ct_file)
    ds = pydicom.dcmread(ct_file)
    np.testing.assert_array_equal(all_frames(scan)[0], apply_modality_lut(ds.pixel_array, ds).astype(np.float32))
    assert scan.modality == "CT"
    # No Window Center/Width in this file: the window spans the 1st..99th percentile of the pixels.
    low, high = np.percentile(all_frames(scan), [1, 99])
    assert scan.default_window == pytest.approx(((low + high) / 2, high - low))
    shown = scan.display()
    assert shown.dtype == np.uint8 and shown.shape == (128, 128)


def test_jpeg2000_radiograph_decodes_like_its_uncompressed_twin(cr_jpeg2000_file):
    compressed = load_scan(cr_jpeg2000_file)
    uncompressed = load_scan(PYDICOM_DATA_FILES / "RG1_UNCR.dcm")
    assert compressed.modality == "CR"
    assert all_frames(compressed).shape == all_frames(uncompressed).shape
    np.testing.assert_array_equal(all_frames(compressed), all_frames(uncompressed))  # J2KR is lossless
    assert compressed.meta["Transfer syntax"] == "JPEG 2000 Image Compression (Lossless Only)"


def test_monochrome1_is_shown_with_dense_tissue_bright():
    path = PYDICOM_DATA_FILES / "RG3_UNCR.dcm"
    scan = load_scan(path)
    assert scan.photometric == "MONOCHROME1"
    stored = all_frames(scan)[0]
    shown = scan.display().astype(float)
    # Higher stored values are darker in MONOCHROME1, so the display must anti-correlate with them.
    assert np.corrcoef(stored.ravel(), shown.ravel())[0, 1] < -0.5


def test_file_kind_comes_from_content_not_name(ct_file):
    scan = load_scan(ct_file.read_bytes(), filename="looks_like_a_photo.jpg")
    assert scan.modality == "CT"
    with pytest.raises(ScanError, match="not a DICOM, PNG, JPEG, TIFF or BMP"):
        load_scan(b"%PDF-1.7 not an image at all", filename="scan.dcm")


def test_missing_transfer_syntax_is_inferred_for_uncompressed_pixels():
    scan = load_scan(PYDICOM_DATA_FILES / "OT-PAL-8-face.dcm")  # palette colour, no Transfer Syntax UID
    assert all_frames(scan).shape == (1, 480, 640, 3) and scan.photometric == "RGB"
    assert scan.meta["Transfer syntax"] == "Implicit VR Little Endian"
    with pytest.raises(ScanError, match=r"pixel data but no image size \(Rows and Columns\)"):
        load_scan(PYDICOM_FILES / "meta_missing_tsyntax.dcm")


def test_compressed_pixels_without_a_transfer_syntax_are_refused_not_guessed():
    ds = pydicom.dcmread(PYDICOM_FILES / "MR_small_RLE.dcm")
    del ds.file_meta.TransferSyntaxUID
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=False, little_endian=True)
    with pytest.raises(ScanError, match="compressed, but the file does not say how"):
        load_scan(buffer.getvalue())


def test_dicom_without_image_is_refused_with_its_kind():
    with pytest.raises(ScanError, match=r"holds no image \(it is an RT Plan\)"):
        load_scan(PYDICOM_FILES / "rtplan.dcm")
    # No preamble, no file meta, big-endian: still recognised as DICOM from its first tag.
    with pytest.raises(ScanError, match=r"holds no image \(it is an RT Ion Plan\)"):
        load_scan(PYDICOM_FILES / "ExplVR_BigEndNoMeta.dcm")


def test_invalid_value_in_an_unrelated_attribute_does_not_stop_the_image(ct_file):
    ds = pydicom.dcmread(ct_file)
    ds.InstanceNumber = "11"
    buffer = io.BytesIO()
    ds.save_as(buffer, implicit_vr=False, little_endian=True)
    element = b"\x20\x00\x13\x00IS\x02\x0011"  # (0020,0013) Instance Number, explicit VR, "11"
    content = buffer.getvalue().replace(element, element[:-2] + b"1A")  # pydicom will not write an invalid IS
    assert content != buffer.getvalue()
    scan = load_scan(content)
    np.testing.assert_array_equal(all_frames(scan), all_frames(load_scan(ct_file)))


def test_malformed_frame_count_is_named():
    with pytest.raises(ScanError, match="Number of Frames is not a positive whole number"):
        load_scan(PYDICOM_FILES / "badVR.dcm")  # a real file whose Number of Frames is '1A'


def test_a_stream_no_installed_decoder_reads_is_refused_naming_its_transfer_syntax():
    """pydicom's 12-bit JPEG Extended file: libjpeg finds its scan header invalid for sequential JPEG, Pillow
    does not take 12 bits, and GDCM (not installed for this reason) refuses it too."""
    with pytest.raises(ScanError, match=r"\(JPEG Extended \(Process 2 and 4\)\) cannot be decoded"):
        load_scan(PYDICOM_FILES / "JPEG-lossy.dcm")
    with pytest.raises(RuntimeError, match="exceptions were raised by all available plugins"):
        pydicom.dcmread(PYDICOM_FILES / "JPEG-lossy.dcm").pixel_array  # noqa: B018


def test_compressed_pixel_data_cut_before_its_delimiter_is_called_truncated():
    """pydicom silently drops the whole dataset here, with only a warning: that must not read as 'no image'."""
    content = (PYDICOM_FILES / "MR_small_RLE.dcm").read_bytes()
    with pytest.raises(ScanError, match="truncated: its compressed pixel data ends before its closing delimiter"):
        load_scan(content[: content.rindex(b"\xfe\xff\xdd\xe0")])


def test_whole_number_rescale_in_float32_equals_pydicoms_float64(ct_file):
    ds = pydicom.dcmread(ct_file)
    ds.RescaleSlope, ds.RescaleIntercept = 3, -1024
    buffer = io.BytesIO()
    ds.save_as(buffer)
    expected = apply_modality_lut(ds.pixel_array, ds).astype(np.float32)
    np.testing.assert_array_equal(load_scan(buffer.getvalue()).frame(0), expected)


def test_image_object_without_pixel_data_is_called_damaged(ct_file):
    ds = pydicom.dcmread(ct_file)
    del ds.PixelData
    buffer = io.BytesIO()
    ds.save_as(buffer)
    with pytest.raises(ScanError, match="says it is a CT Image but holds no pixel data"):
        load_scan(buffer.getvalue())


def test_truncated_pixel_data_is_reported_with_its_size(ct_file):
    content = ct_file.read_bytes()
    with pytest.raises(ScanError, match=r"truncated: pixel data has \d+ of 32768 bytes"):
        load_scan(content[:-1000])


def test_sixteen_bit_and_colour_pngs():
    grey16 = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20
    scan = load_scan(png_bytes(grey16))
    np.testing.assert_array_equal(all_frames(scan)[0], grey16.astype(np.float32))
    assert scan.display().shape == (48, 64)

    rgba = np.zeros((10, 12, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    colour = load_scan(png_bytes(rgba))
    assert colour.is_colour and colour.display().shape == (10, 12, 3)
    assert colour.display()[0, 0].tolist() == [200, 0, 0]


def test_oversized_image_is_refused_before_decoding():
    big = png_bytes(np.zeros((300, 400), dtype=np.uint8))
    limit = r"400×300 pixels: 0\.5 MB decoded, above the 0\.4 MB limit on what is decoded at once"
    with pytest.raises(ScanError, match=limit):
        load_scan(big, max_values=100_000)
    cine = PYDICOM_DATA_FILES / "color3d_jpeg_baseline.dcm"  # colour ultrasound, 120 frames of 640x480
    with pytest.raises(ScanError, match=r"640×480 pixels × 3 samples: 3\.5 MB decoded, above the 1\.8 MB limit"):
        load_scan(cine, max_values=640 * 480 * 3 // 2)  # one frame is what is held


def test_a_real_cine_opens_holding_one_decoded_frame():
    """pydicom's 120-frame colour ultrasound (110.6 million values in all) opens under the default limit,
    decoding one frame at a time: its peak is the compressed file plus about one frame, not 120."""
    cine = PYDICOM_DATA_FILES / "color3d_jpeg_baseline.dcm"
    tracemalloc.start()
    try:
        scan = load_scan(cine)
        last = scan.frame(119)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    frame_bytes = 480 * 640 * 3 * 4
    assert scan.frame_count == 120 and last.shape == (480, 640, 3) and scan.is_colour
    assert peak < cine.stat().st_size + 6 * frame_bytes  # all 120 frames would be 442 MB
    reference = pydicom.dcmread(cine).pixel_array
    for index in (0, 57, 119):
        np.testing.assert_array_equal(scan.frame(index), reference[index].astype(np.float32))


@pytest.mark.parametrize("kept", [0.1, 0.5, 0.9, 0.99])
def test_truncated_files_raise_scan_error(kept, ct_file):
    noise = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    for content in (png_bytes(noise), ct_file.read_bytes()):
        with pytest.raises(ScanError):
            load_scan(content[: int(len(content) * kept)])


def pydicom_reference(path) -> np.ndarray | None:
    """pydicom's own decoding after the Modality LUT (palette colour through its LUT), or None if it cannot."""
    try:
        ds = pydicom.dcmread(path, force=True)
        if "TransferSyntaxUID" not in ds.file_meta:  # as load_scan does: the encoding it was parsed with
            implicit, little = ds.original_encoding
            ds.file_meta.TransferSyntaxUID = (
                pydicom.uid.ImplicitVRLittleEndian
                if implicit
                else pydicom.uid.ExplicitVRLittleEndian
                if little
                else pydicom.uid.ExplicitVRBigEndian
            )
        pixels = ds.pixel_array
        if str(ds.get("PhotometricInterpretation", "")).strip() == "PALETTE COLOR":
            return apply_color_lut(pixels, ds).astype(np.float32)
        if int(ds.get("SamplesPerPixel", 1) or 1) == 1:
            return apply_modality_lut(pixels, ds).astype(np.float32)
        return pixels.astype(np.float32)
    except Exception:  # any failure means pydicom cannot decode it either
        return None


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_every_real_dicom_file_decodes_like_pydicom_or_is_refused_clearly():
    """pydicom's and pydicom-data's real files, from many vendors: same pixels as pydicom, or a ScanError."""
    outcomes = Counter()
    for path in real_dicom_files():
        reference = pydicom_reference(path)
        try:
            scan = load_scan(path)
        except ScanError as error:
            # The catch-all "damaged and cannot be read (SomeError)" is for hostile input; each real
            # file is refused for a reason the message names.
            assert "cannot be read (" not in str(error), (path.name, str(error))
            if reference is not None:  # pydicom decodes it: only our size limit may refuse it
                assert "limit on what is decoded at once" in str(error), (path.name, str(error))
                outcomes["refused: above the size limit"] += 1
            else:
                outcomes["refused: pydicom cannot decode it either"] += 1
            continue
        assert reference is not None, f"{path.name} opened, but pydicom cannot decode it"
        np.testing.assert_array_equal(all_frames(scan).reshape(reference.shape), reference, err_msg=path.name)
        shown = scan.display(scan.frame_count - 1)
        assert shown.dtype == np.uint8 and shown.shape[:2] == all_frames(scan).shape[1:3], path
        outcomes["opened, pixels equal to pydicom's"] += 1
    print(f"real DICOM files: {dict(outcomes)}")
    assert outcomes["opened, pixels equal to pydicom's"] >= 120


def test_jpeg_exif_orientation_is_applied():
    """A phone photo stored landscape with 'rotate 90' in its EXIF must come out portrait."""
    stored = np.zeros((40, 60, 3), dtype=np.uint8)
    stored[:, :10] = 255  # a white band down the left edge of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    scan = load_scan(image_bytes(Image.fromarray(stored), "JPEG", exif=exif, quality=95))
    shown = scan.display()
    assert shown.shape == (60, 40, 3)
    assert shown[:10].mean() > 200 and shown[-10:].mean() < 50  # the band is now along the top


def test_tiff_pages_become_frames_and_bmp_opens():
    pages = [Image.fromarray(np.full((16, 24), value, dtype=np.uint8)) for value in (10, 20, 30)]
    scan = load_scan(image_bytes(pages[0], "TIFF", save_all=True, append_images=pages[1:]))
    assert all_frames(scan).shape == (3, 16, 24)
    assert all_frames(scan)[:, 0, 0].tolist() == [10, 20, 30]
    bmp = load_scan(image_bytes(Image.fromarray(np.full((5, 7, 3), 90, dtype=np.uint8)), "BMP"))
    assert bmp.is_colour and all_frames(bmp).shape == (1, 5, 7, 3)


def test_palette_png_is_shown_in_its_colours():
    palette_image = Image.fromarray(np.array([[0, 1], [1, 0]], dtype=np.uint8), mode="P")
    palette_image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    shown = load_scan(image_bytes(palette_image, "PNG")).display()
    assert shown[0, 0].tolist() == [255, 0, 0] and shown[0, 1].tolist() == [0, 0, 255]


def test_no_patient_identifier_reaches_metadata_errors_or_logs(ct_file, caplog, capfd, recwarn):
    ds = pydicom.dcmread(ct_file)
    ds.PatientName = "ZZMARK^NAME"
    ds.PatientID = "ZZMARK-ID"
    ds.PatientBirthDate = "ZZMARK-DOB"  # invalid for DA: pydicom's warning would echo it
    ds.InstitutionName = "ZZMARK HOSPITAL"
    ds.OperatorsName = "ZZMARK^OPERATOR"
    ds.ReferringPhysicianName = "ZZMARK^REFERRER"
    ds.AccessionNumber = "ZZMARK-ACC"
    ds.add_new(0x00204000, "LT", "ZZMARK free-text comment")  # Image Comments
    buffer = io.BytesIO()
    ds.save_as(buffer)
    content = buffer.getvalue()
    caplog.clear(), recwarn.clear(), capfd.readouterr()  # building the file warns too; only load_scan counts

    texts = [repr(load_scan(content).meta)]
    cut = content[: content.index(b"\xe0\x7f\x10\x00") + 100]  # the same file, truncated in its pixel data
    with pytest.raises(ScanError) as caught:
        load_scan(cut)
    texts.append(str(caught.value))
    texts += [caplog.text, *capfd.readouterr(), *(str(w.message) for w in recwarn)]
    assert not [text for text in texts if "ZZMARK" in text]


def test_float_pixels_with_nan_and_inf_and_a_zero_window_width_are_handled():
    ds = pydicom.dcmread(PYDICOM_FILES / "CT_small.dcm")
    values = np.linspace(-100, 100, 64, dtype=np.float32).reshape(8, 8)
    values[0, :3] = [np.nan, np.inf, -np.inf]
    del ds.PixelData
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated, ds.SamplesPerPixel = 32, 1
    for keyword in ("BitsStored", "HighBit", "PixelRepresentation", "RescaleSlope", "RescaleIntercept"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.FloatPixelData = values.tobytes()
    ds.WindowCenter, ds.WindowWidth = 0, 0  # a width of 0 is meaningless: a window is taken from the data
    buffer = io.BytesIO()
    ds.save_as(buffer)
    scan = load_scan(buffer.getvalue())
    centre, width = scan.default_window
    assert np.isfinite(centre) and np.isfinite(width) and width > 0
    shown = scan.display()
    assert shown.dtype == np.uint8 and shown.shape == (8, 8)
    assert shown[0, 1] == 255 and shown[0, 2] == 0  # +inf brightest, -inf darkest
    assert shown[-1, -1] > shown[1, 0]  # the ramp survives
