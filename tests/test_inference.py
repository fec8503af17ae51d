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


def test_attention_points_at_the_findings(predictor, fresh_cases):
    """Pointing game on unseen cases: the attention maximum inside the finding's mask, grown by one token cell."""
    cell = 128 // predictor.model.config.grid_size
    hits = {name: [] for name in FINDINGS}
    for case in fresh_cases:
        prediction = predictor.predict(case.image)
        for c, name in enumerate(FINDINGS):
            if case.labels[c]:
                hits[name].append(pointing_hit(prediction.attention[name], dilate(case.masks[c], cell)))
    assert np.mean(hits["nodule"]) >= 0.9
    assert np.mean([hit for per_class in hits.values() for hit in per_class]) >= 0.85


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


def test_shipped_samples_show_their_named_findings(predictor):
    """Each sample's named findings score far above the normal sample's; nothing unnamed is called."""
    samples = list_samples()
    assert len(samples) >= 5
    baseline = predictor.predict(load_scan(samples["normal"])).probabilities
    assert predictor.predict(load_scan(samples["normal"])).labels == []
    for name, path in samples.items():
        named = set() if name == "normal" else set(name.split("-"))
        prediction = predictor.predict(load_scan(path))
        assert set(prediction.labels) <= named, name
        for finding in named:
            assert prediction.probabilities[finding] > 10 * baseline[finding], (name, finding)
