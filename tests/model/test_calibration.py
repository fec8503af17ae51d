import numpy as np
import pytest

from medattn.model.calibration import (
    MULTI_CLASS,
    MULTI_LABEL,
    TEMPERATURE_RANGE,
    best_f1_thresholds,
    decisions,
    fit_temperature,
    probabilities,
)


def test_temperature_recovers_a_known_overconfidence():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (20000, 1))
    truth = 1 / (1 + np.exp(-logits / 2.0))  # the truth is twice as soft as the logits claim
    labels = (rng.random((20000, 1)) < truth).astype(np.float32)
    assert fit_temperature(logits, labels)[0] == pytest.approx(2.0, rel=0.05)


def test_softmax_temperature_recovers_a_known_overconfidence():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (20000, 4))
    truth = probabilities(logits, np.array([3.0]), MULTI_CLASS)
    picks = (truth.cumsum(axis=1) > rng.random((20000, 1))).argmax(axis=1)
    labels = np.eye(4)[picks]
    (temperature,) = fit_temperature(logits, labels, MULTI_CLASS)
    assert temperature == pytest.approx(3.0, rel=0.05)


def test_temperature_stays_bounded_when_validation_is_separable():
    logits = np.array([[-3.0], [-2.0], [2.0], [3.0]])
    labels = np.array([[0.0], [0.0], [1.0], [1.0]])
    assert fit_temperature(logits, labels)[0] == pytest.approx(TEMPERATURE_RANGE[0])


def test_threshold_falls_between_separated_groups():
    probs = np.array([[0.1], [0.2], [0.6], [0.9]])
    labels = np.array([[0.0], [0.0], [1.0], [1.0]])
    assert best_f1_thresholds(labels, probs)[0] == pytest.approx(0.4)


def test_decisions_by_task():
    probs = np.array([[0.6, 0.7, 0.1]])
    assert decisions(probs, np.array([0.5, 0.8, 0.05]), MULTI_LABEL).tolist() == [[True, False, True]]
    assert decisions(probs, None, MULTI_CLASS).tolist() == [[False, True, False]]
    softmax = probabilities(np.array([[1.0, 2.0, 3.0]]), np.array([1.0]), MULTI_CLASS)
    assert softmax.sum() == pytest.approx(1.0) and softmax.argmax() == 2
