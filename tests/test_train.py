import numpy as np
import pytest

from medattn.__main__ import main
from medattn.checkpoint import save_model
from medattn.inference import Predictor
from medattn.model import ModelConfig
from medattn.train import TEMPERATURE_RANGE, TrainConfig, best_f1_thresholds, fit_temperature, sigmoid, train


def test_temperature_recovers_a_known_overconfidence():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (20000, 1))
    labels = (rng.random((20000, 1)) < sigmoid(logits / 2.0)).astype(np.float32)  # truth is 2x softer
    assert fit_temperature(logits, labels)[0] == pytest.approx(2.0, rel=0.05)


def test_temperature_stays_bounded_when_validation_is_separable():
    logits = np.array([[-3.0], [-2.0], [2.0], [3.0]])
    labels = np.array([[0.0], [0.0], [1.0], [1.0]])
    assert fit_temperature(logits, labels)[0] == pytest.approx(TEMPERATURE_RANGE[0])


def test_threshold_falls_between_separated_groups():
    probabilities = np.array([[0.1], [0.2], [0.6], [0.9]])
    labels = np.array([[0.0], [0.0], [1.0], [1.0]])
    assert best_f1_thresholds(labels, probabilities)[0] == pytest.approx(0.4)


def test_tiny_training_run_produces_a_loadable_calibrated_model(tmp_path):
    config = TrainConfig(train_size=96, val_size=48, epochs=1, batch_size=32, input_size=64)
    model_config = ModelConfig(classes=("nodule", "effusion", "cardiomegaly"), input_size=64, widths=(4, 8, 8, 8))
    model, card = train(config, model_config)
    assert len(card["thresholds"]) == len(card["temperature"]) == 3
    assert card["training"]["history"][0]["epoch"] == 1

    save_model(model, card, tmp_path)
    prediction = Predictor.load(tmp_path).predict(np.zeros((70, 90), dtype=np.uint8))
    assert set(prediction.probabilities) == {"nodule", "effusion", "cardiomegaly"}
    assert prediction.attention["nodule"].shape == (70, 90)


def test_cli_evaluates_the_default_model(capsys):
    assert main(["evaluate", "--size", "60", "--seed", "4242"]) == 0
    assert '"macro_auc"' in capsys.readouterr().out
