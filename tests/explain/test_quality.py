import itertools

import numpy as np
import pytest

from medattn.explain.quality import (
    dilate,
    mass_inside,
    otsu_iou,
    peaks,
    pointing_hit,
    rank_correlation,
    top_region_iou,
)
from medattn.model.calibration import roc_auc
from medattn.training.evaluate import expected_calibration_error, reliability, roc_curve


def test_auc_equals_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.random(60) < 0.4
    scores = np.round(rng.random(60), 1)  # many ties
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(scores[labels], scores[~labels])]
    assert roc_auc(labels, scores) == pytest.approx(np.mean(pairs))


def test_auc_is_nan_without_both_classes():
    assert np.isnan(roc_auc(np.ones(5), np.arange(5)))


def test_ece_is_zero_for_calibrated_and_large_for_overconfident_predictions():
    rng = np.random.default_rng(1)
    probabilities = rng.random(200_000)
    labels = rng.random(200_000) < probabilities
    assert expected_calibration_error(labels, probabilities) < 0.01
    assert expected_calibration_error(labels, np.where(probabilities > 0.5, 1.0, 0.0)) > 0.2


def test_pointing_and_mass_inside_a_mask():
    heatmap = np.zeros((10, 10))
    heatmap[2, 3], heatmap[8, 8] = 3.0, 1.0
    mask = np.zeros((10, 10), dtype=bool)
    mask[2, 3] = True
    assert pointing_hit(heatmap, mask)
    assert mass_inside(heatmap, mask) == pytest.approx(0.75)
    assert not pointing_hit(heatmap, ~mask)
    grown = dilate(mask, 1)  # a disk of radius 1: the pixel and its four neighbours
    assert grown.sum() == 5 and grown[1, 3] and grown[3, 3] and grown[2, 2] and grown[2, 4]


def test_top_region_iou_is_one_for_a_map_of_the_mask_and_zero_for_its_complement():
    mask = np.zeros((20, 20), dtype=bool)
    mask[3:7, 10:15] = True
    smooth = mask + 0.01 * np.random.default_rng(0).random(mask.shape)
    assert top_region_iou(smooth, mask) == pytest.approx(1.0)
    assert top_region_iou(1.0 - smooth, mask) == 0.0


def test_rank_correlation_ranks_ties_fairly():
    ramp = np.arange(100.0).reshape(10, 10)
    assert rank_correlation(ramp, ramp**3) == pytest.approx(1.0)
    assert rank_correlation(ramp, -ramp) == pytest.approx(-1.0)
    # Two maps that are each half zeros, in opposite halves: raster-order tie-breaking would correlate them.
    first, second = ramp.copy(), ramp.copy()
    first[:5], second[5:] = 0, 0
    assert rank_correlation(first, second) < 0
    assert rank_correlation(ramp, np.zeros_like(ramp)) == 0.0


def test_roc_curve_runs_corner_to_corner_and_matches_the_auc():
    rng = np.random.default_rng(0)
    labels = rng.random(400) < 0.3
    scores = labels + rng.normal(0, 0.8, 400)
    curve = roc_curve(labels, scores, points=401)
    assert (curve["fpr"][0], curve["tpr"][0], curve["fpr"][-1], curve["tpr"][-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(curve["fpr"]) >= 0) and np.all(np.diff(curve["tpr"]) >= 0)
    assert np.trapezoid(curve["tpr"], curve["fpr"]) == pytest.approx(roc_auc(labels, scores), abs=0.01)


def test_reliability_bins_account_for_every_prediction():
    probabilities = np.array([0.05, 0.05, 0.95, 0.95, 0.5])
    labels = np.array([0, 0, 1, 0, 1])
    bins = reliability(labels, probabilities, bins=10)
    assert sum(b["share"] for b in bins) == pytest.approx(1.0)
    top = bins[-1]
    assert top["predicted"] == pytest.approx(0.95) and top["observed"] == pytest.approx(0.5)


def test_peaks_are_the_highest_local_maxima_a_cell_apart_highest_first():
    rows, columns = np.mgrid[0:64, 0:64]
    heat = sum(height * np.exp(-((rows - row) ** 2 + (columns - column) ** 2) / 18.0)
               for row, column, height in ((10, 10, 3.0), (40, 50, 2.0), (50, 12, 1.0), (30, 30, 0.5)))  # fmt: skip
    assert peaks(heat, 3, spacing=4) == [(10, 10), (40, 50), (50, 12)]
    assert peaks(heat, 1, spacing=4) == [np.unravel_index(np.argmax(heat), heat.shape)]  # the pointing game's peak
    assert len(peaks(np.zeros((8, 8)), 3, spacing=2)) == 3  # a flat map: its peaks are anywhere, but apart
    faint = np.zeros((6, 6))
    faint[2, 2] = 0.1 + 1e-12  # float64: compared with its float32 dilation, it would not be its own maximum
    assert peaks(faint, 1, spacing=1) == [(2, 2)]


def test_otsu_iou_cuts_the_map_where_chexlocalize_does_without_being_told_the_findings_size():
    mask = np.zeros((64, 64), dtype=bool)
    mask[20:36, 10:30] = True
    noisy = mask + np.random.default_rng(0).normal(0, 0.1, mask.shape)
    assert otsu_iou(noisy, mask) > 0.9 and otsu_iou(~mask * 1.0, mask) == 0.0
    assert otsu_iou(np.ones((64, 64)), mask) == 0.0 and np.isnan(otsu_iou(noisy, np.zeros_like(mask)))
    wide = np.zeros((64, 64))
    wide[10:50, 5:45] = 1.0  # four times the finding: top_region_iou would cut it to the finding's size
    assert otsu_iou(wide, mask) == pytest.approx(mask.sum() / 1600)
