"""The per-image faithfulness check on the real default model and a shipped sample."""

import numpy as np
import pytest
import torch

from medattn import load_scan
from medattn.assets import synthetic_samples
from medattn.explain.faithfulness import (
    HIDINGS,
    RANDOM_REGIONS,
    REGION_FRACTION,
    Verdict,
    best_hidings,
    check_faithfulness,
    hottest_region,
    places_elsewhere,
)
from medattn.model.predictor import Heatmap


def test_the_model_relies_on_what_its_attention_highlights_and_not_on_an_empty_corner(predictor):
    scan = load_scan(synthetic_samples()["cardiomegaly"].read_bytes())
    prediction = predictor.predict(scan, max_side=256)
    attended = check_faithfulness(predictor, scan, prediction.attention["cardiomegaly"])
    assert attended.probability == pytest.approx(prediction.probabilities["cardiomegaly"], abs=1e-6)  # batch of 21
    assert attended.verdict is Verdict.RELIES and attended.places_as_damaging == 0
    assert attended.fall > attended.random_falls.max() and len(attended.random_falls) == RANDOM_REGIONS
    corner = np.zeros((256, 256), dtype=np.float32)
    corner[:20, :20] = 1.0  # outside the body: nothing there for the model to use
    elsewhere = check_faithfulness(predictor, scan, Heatmap(corner, "corner", "cardiomegaly", 0.0))
    assert elsewhere.verdict is not Verdict.RELIES
    again = check_faithfulness(predictor, scan, prediction.attention["cardiomegaly"])
    np.testing.assert_array_equal(again.random_falls, attended.random_falls)  # the same places every time


def test_a_nodules_attention_is_checked_on_a_region_its_own_size_and_the_model_relies_on_it(predictor):
    """A fixed 5% region hid the nodule with a grey disc ten times its size, which the model read as a nodule:
    99.95% before and after, and the flagship sample was told its attention was not relied on."""
    scan = load_scan(synthetic_samples()["nodule"].read_bytes())
    prediction = predictor.predict(scan)
    attended = check_faithfulness(predictor, scan, prediction.attention["nodule"])
    assert attended.region_fraction == pytest.approx(REGION_FRACTION[0], abs=0.001)  # 80% of its heat is smaller
    assert attended.verdict is Verdict.RELIES and attended.hidden_probability < 0.1


def test_the_region_is_never_padded_with_pixels_that_have_no_heat_and_controls_never_overlap_it(predictor):
    spot = np.zeros((100, 100), dtype=np.float32)
    spot[40:45, 40:45] = 1.0  # 0.25% of the image: below the smallest region, which takes no cold pixel
    assert (hottest_region(spot) == (spot > 0)).all()
    block = np.zeros((128, 128), dtype=bool)
    block[30:58, 30:58] = True  # 5% of the image, as an occlusion map's region: a short shift overlaps it
    places = places_elsewhere(block, RANDOM_REGIONS, np.random.default_rng(0))
    assert len(places) == RANDOM_REGIONS and not any((place & block).any() for place in places)
    assert all(place.sum() == block.sum() for place in places)
    more_than_half = np.zeros((128, 128), dtype=bool)
    more_than_half[:, :80] = True  # no copy of it fits beside it: the check then says it cannot tell
    assert places_elsewhere(more_than_half, RANDOM_REGIONS, np.random.default_rng(0)) == []


@pytest.mark.parametrize("hiding", sorted(HIDINGS))
def test_every_hiding_changes_only_the_region_and_takes_a_bright_spot_away(hiding):
    image = np.zeros((1, 1, 64, 64), np.float32)
    image[0, 0, 28:36, 28:36] = 3.0  # a bright nodule-sized spot on a flat background
    masks = np.zeros((2, 64, 64), bool)
    masks[1, 26:38, 26:38] = True  # nothing hidden in the first
    hidden = HIDINGS[hiding](torch.from_numpy(image), masks).numpy()
    assert hidden.shape == (2, 1, 64, 64)
    np.testing.assert_array_equal(hidden[0], image[0])
    np.testing.assert_array_equal(hidden[1, 0][~masks[1]], image[0, 0][~masks[1]])
    assert hidden[1, 0, 28:36, 28:36].mean() < 0.8 * 3.0  # the spot is gone, or faded, whatever hides it


def test_the_best_hiding_per_finding_is_the_one_that_separates_best_and_grey_on_a_tie():
    from medattn.model.card import HIDING_NAMES

    assert tuple(HIDINGS) == HIDING_NAMES  # the card accepts exactly the hidings there are
    chosen = best_hidings({
        "nodule": {"grey": 0.74, "blur": 0.62, "inpaint": 0.92},
        "effusion": {"grey": 0.56, "blur": 0.0, "inpaint": 0.28},
        "cardiomegaly": {"grey": 0.0, "blur": 0.0, "inpaint": 0.0},
    })  # fmt: skip
    assert chosen == {"nodule": "inpaint", "effusion": "grey", "cardiomegaly": "grey"}
