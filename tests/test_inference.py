import numpy as np
import pytest

from medattn.data import FINDINGS, generate_case
from medattn.io import load_scan
from medattn.metrics import dilate, pointing_hit, roc_auc
from medattn.samples import list_samples

FRESH_SEED = 7777  # a benchmark seed used by no training, validation or evaluation run


@pytest.fixture(scope="module")
def fresh_cases():
    return [generate_case(FRESH_SEED, i) for i in range(300)]


def test_default_model_separates_findings_on_unseen_cases(predictor, fresh_cases):
    predictions = [predictor.predict(case.image) for case in fresh_cases]
    labels = np.stack([case.labels for case in fresh_cases])
    for c, name in enumerate(FINDINGS):
        scores = [p.probabilities[name] for p in predictions]
        assert roc_auc(labels[:, c], scores) > 0.9, name


def test_attention_points_at_nodules_far_more_often_than_chance(predictor, fresh_cases):
    cell = 128 // predictor.model.config.grid_size
    hits, chance = [], []
    for case in fresh_cases:
        prediction = predictor.predict(case.image)
        if case.labels[0] and "nodule" in prediction.labels:
            region = dilate(case.masks[0], cell)
            hits.append(pointing_hit(prediction.attention["nodule"], region))
            chance.append(region.mean())  # a uniformly random peak lands inside with this probability
    assert len(hits) >= 20
    assert np.mean(hits) > 10 * np.mean(chance)


def test_attention_is_returned_on_the_input_geometry(predictor, cr_jpeg2000_file):
    scan = load_scan(cr_jpeg2000_file)
    prediction = predictor.predict(scan)
    height, width = scan.frames.shape[1:3]
    assert height != width
    for heatmap in prediction.attention.values():
        assert heatmap.shape == (height, width) and heatmap.dtype == np.float32
        assert heatmap.min() >= 0 and heatmap.sum() == pytest.approx(1.0, rel=1e-3)
    assert set(prediction.probabilities) == set(FINDINGS)
    assert all(0.0 <= p <= 1.0 for p in prediction.probabilities.values())
    assert set(prediction.labels) == {c for c, p in prediction.probabilities.items() if p >= prediction.thresholds[c]}


def test_shipped_samples_are_called_as_their_names_say(predictor):
    samples = list_samples()
    assert len(samples) >= 5
    for name, path in samples.items():
        expected = set() if name == "normal" else set(name.split("-"))
        assert set(predictor.predict(load_scan(path)).labels) == expected, name
