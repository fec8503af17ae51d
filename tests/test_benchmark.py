import numpy as np

from medattn import load_scan
from medattn.assets import SAMPLES_DIR, synthetic_samples
from medattn.benchmark import (
    FINDINGS,
    generate,
    generate_case,
    sample_cases,
    sample_pixels,
    subtle_findings,
)
from medattn.model.calibration import roc_auc


def test_cases_are_deterministic_by_seed_and_index():
    images, masks = generate(seed=3, count=4)
    np.testing.assert_array_equal(generate_case(3, 2).image, images[2])
    np.testing.assert_array_equal(generate(3, 2, start=2)[1], masks[2:])
    assert not np.array_equal(generate_case(4, 2).image, images[2])


def test_a_subtle_share_draws_that_share_of_findings_subtler_and_nothing_else():
    """Training's subtler findings: the same cases and labels, smaller nodules and shallower effusions."""
    count, share = 300, 0.25
    plain_images, plain_masks = generate(seed=5, count=count)
    images, masks = generate(seed=5, count=count, subtle_share=share)
    chosen = [subtle_findings(5, index, share) for index in range(count)]
    drawn_subtler = np.array([[finding in findings for finding in FINDINGS] for findings in chosen])
    assert abs(drawn_subtler.mean() - share) < 0.05
    np.testing.assert_array_equal(masks.any(axis=(2, 3)), plain_masks.any(axis=(2, 3)))
    untouched = ~drawn_subtler.any(axis=1)
    np.testing.assert_array_equal(images[untouched], plain_images[untouched])
    for finding in ("nodule", "effusion"):
        c = FINDINGS.index(finding)
        cases = drawn_subtler[:, c] & plain_masks[:, c].any(axis=(1, 2))
        assert cases.sum() > 10
        assert masks[cases, c].sum() < 0.6 * plain_masks[cases, c].sum(), f"{finding}s are not drawn smaller"
    # Drawing only effusions subtler leaves nodules and hearts as drawn (a subtler heart would move effusions' edges).
    _, effusions_only = generate(seed=5, count=count, subtle_share=share, subtle=("effusion",))
    np.testing.assert_array_equal(effusions_only[:, [0, 2]], plain_masks[:, [0, 2]])
    same_choice = np.array([set(findings) <= {"effusion"} for findings in chosen])
    np.testing.assert_array_equal(effusions_only[same_choice], masks[same_choice])


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
    """The app outlines a sample's true findings from ``sample_cases``: the files must be those very cases.

    Up to one step of 65535 apart: drawn again on another processor, OpenCV's and NumPy's vector code round a
    few hundred of the 262,144 pixels the other way (seen between two x86-64 machines)."""
    cases = sample_cases()
    assert sorted(cases) == sorted(path.name for path in synthetic_samples().values())
    for name, case in cases.items():
        shipped = load_scan((SAMPLES_DIR / name).read_bytes()).model_pixels(0)
        drawn = sample_pixels(case).astype(np.float32)
        assert np.abs(shipped - drawn).max() <= 1 and (shipped != drawn).mean() < 0.005, name
