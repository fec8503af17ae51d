import numpy as np

from medattn import load_scan
from medattn.assets import SAMPLES_DIR, synthetic_samples
from medattn.training.evaluate import roc_auc
from medattn.training.synthetic import FINDINGS, generate, generate_case, sample_cases, sample_pixels


def test_cases_are_deterministic_by_seed_and_index():
    images, masks = generate(seed=3, count=4)
    np.testing.assert_array_equal(generate_case(3, 2).image, images[2])
    np.testing.assert_array_equal(generate(3, 2, start=2)[1], masks[2:])
    assert not np.array_equal(generate_case(4, 2).image, images[2])


def test_images_and_masks_have_the_documented_form():
    case = generate_case(0, 0, size=96)
    assert case.image.dtype == np.float32 and case.image.shape == (96, 96)
    assert case.image.min() >= 0.0 and case.image.max() <= 1.0
    assert case.masks.shape == (len(FINDINGS), 96, 96) and case.masks.dtype == bool


def test_every_finding_occurs_and_labels_come_from_masks():
    _, masks = generate(seed=1, count=200)
    labels = masks.any(axis=(2, 3))
    assert labels.mean(axis=0).min() > 0.15 and labels.mean(axis=0).max() < 0.6
    assert labels.sum(axis=1).max() >= 2, "findings must be able to co-occur"


def test_global_brightness_does_not_give_the_findings_away():
    images, masks = generate(seed=2, count=400)
    labels = masks.any(axis=(2, 3))
    brightness = images.mean(axis=(1, 2))
    for c, name in enumerate(FINDINGS):
        auc = roc_auc(labels[:, c], brightness)
        assert 0.3 < auc < 0.7, f"{name}: mean brightness alone reaches AUC {auc:.2f}"


def test_the_shipped_samples_are_the_cases_their_ground_truth_is_drawn_from():
    """The app outlines a sample's true findings from ``sample_cases``: the files must be those very cases."""
    cases = sample_cases()
    assert sorted(cases) == sorted(path.name for path in synthetic_samples().values())
    for name, case in cases.items():
        assert np.array_equal(load_scan((SAMPLES_DIR / name).read_bytes()).model_pixels(0), sample_pixels(case)), name
