import numpy as np
import pytest

from medattn import load_scan
from medattn.scan.windowing import CT_WINDOWS, IMAGE_RANGE, apply_window, percentile_window
from tests.conftest import CHEST_CR_LUNG_FIELDS, PYDICOM_DATA_FILES, PYDICOM_FILES, all_frames


def test_window_presets_follow_the_modality_and_photometric_interpretation(ct_file):
    ct = load_scan(ct_file).window_presets()
    assert {"File default", "Full range"} | set(CT_WINDOWS) <= set(ct)
    assert next(iter(ct)) == "File default"  # a CT's own window is narrower than its values: it opens in it
    assert IMAGE_RANGE in ct  # on the list all the same: it was there for some frames of a scan and not others
    hand = load_scan(PYDICOM_DATA_FILES / "RG3_UNCR.dcm")  # MONOCHROME1
    presets = hand.window_presets()
    # Dense bone is shown bright; in MONOCHROME1 that is low stored values, so its window sits lower.
    assert presets["Bone"][0] < presets["Lung"][0]
    shown = hand.display(0, presets["Bone"]).astype(float)
    assert np.corrcoef(all_frames(hand)[0].ravel(), shown.ravel())[0, 1] < 0


def test_the_lung_preset_spreads_the_lung_fields_of_a_real_chest_radiograph_over_the_grey_range(cr_jpeg2000_file):
    """It used to leave the lungs a flat light grey: 1.7x the file window's contrast, mean 160."""
    chest = load_scan(cr_jpeg2000_file)  # MONOCHROME1, collimated corners
    height, width = chest.frame(0).shape
    lung_fields = [
        (slice(int(top * height), int(bottom * height)), slice(int(left * width), int(right * width)))
        for (top, bottom), (left, right) in CHEST_CR_LUNG_FIELDS
    ]

    def lungs(preset: str) -> np.ndarray:
        shown = chest.display(0, chest.window_presets()[preset])
        return np.concatenate([shown[field].ravel() for field in lung_fields]).astype(float)

    lung, default = lungs("Lung"), lungs("File default")
    assert lung.std() > 2.5 * default.std()  # the vessels and nodules stand out
    # It opens in the image's own range (1.45x the contrast in the lung fields), not in the file's 15000/30000,
    # wider than all its values: washed out.
    assert next(iter(chest.window_presets())) == IMAGE_RANGE and lungs(IMAGE_RANGE).std() > 1.4 * default.std()
    assert 64 < lung.mean() < 160  # dark lungs, not a flat light grey
    assert np.isin(lung, (0, 255)).mean() < 0.15  # little of the lung is clipped


def test_monochrome1_reads_dense_tissue_high_for_the_model_as_for_the_eye():
    hand = load_scan(PYDICOM_DATA_FILES / "RG3_UNCR.dcm")
    np.testing.assert_array_equal(hand.model_pixels(0), -all_frames(hand)[0])
    shown = hand.display(0, hand.window_presets()["Full range"]).astype(float)
    assert np.corrcoef(hand.model_pixels(0).ravel(), shown.ravel())[0, 1] > 0.99


def test_a_window_maps_its_range_onto_0_to_255_and_clips_outside_it():
    pixels = np.array([[-10.0, 0.0, 50.0, 100.0, 200.0, np.nan]], dtype=np.float32)
    assert apply_window(pixels, (50.0, 100.0)).tolist() == [[0, 0, 128, 255, 255, 0]]
    assert apply_window(pixels, (50.0, 100.0), inverted=True).tolist() == [[255, 255, 128, 0, 0, 255]]


def test_a_percentile_window_ignores_non_finite_pixels():
    pixels = np.concatenate([np.linspace(0, 100, 1001), [np.nan, np.inf]]).astype(np.float32)
    centre, width = percentile_window(pixels)
    assert (centre, width) == pytest.approx((50.0, 98.0))
    assert percentile_window(np.full(4, np.nan)) == (0.0, 1.0)


def test_every_frame_of_a_scan_offers_the_same_windows():
    """pydicom's RT dose: its own window spans the values of some frames and not others, so "Image range" was on
    the list for some frames only, and a reader's choice of it fell off the list on the next frame."""
    dose = load_scan(PYDICOM_FILES / "rtdose.dcm")
    lists = {tuple(dose.window_presets(frame)) for frame in range(dose.frame_count)}
    assert {names[0] for names in lists} == {"File default", IMAGE_RANGE}  # each frame opens in the best of them
    assert len({frozenset(names) for names in lists}) == 1
