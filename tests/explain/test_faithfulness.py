"""The per-image faithfulness check on the real default model and a shipped sample."""

import numpy as np
import pytest

from medattn import load_scan
from medattn.assets import synthetic_samples
from medattn.explain.faithfulness import RANDOM_REGIONS, check_faithfulness
from medattn.model.predictor import Heatmap


def test_the_model_relies_on_what_its_attention_highlights_and_not_on_an_empty_corner(predictor):
    scan = load_scan(synthetic_samples()["cardiomegaly"].read_bytes())
    prediction = predictor.predict(scan, max_side=256)
    attended = check_faithfulness(predictor, scan, prediction.attention["cardiomegaly"])
    assert attended.probability == pytest.approx(prediction.probabilities["cardiomegaly"], abs=1e-6)  # batch of 21
    assert attended.relies_on_region and attended.places_as_damaging == 0
    assert attended.fall > attended.random_falls.max() and len(attended.random_falls) == RANDOM_REGIONS
    corner = np.zeros((256, 256), dtype=np.float32)
    corner[:20, :20] = 1.0  # outside the body: nothing there for the model to use
    elsewhere = check_faithfulness(predictor, scan, Heatmap(corner, "corner", "cardiomegaly", 0.0))
    assert not elsewhere.relies_on_region and elsewhere.places_as_damaging > 0
    again = check_faithfulness(predictor, scan, prediction.attention["cardiomegaly"])
    np.testing.assert_array_equal(again.random_falls, attended.random_falls)  # the same places every time
