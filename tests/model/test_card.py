"""The model card is validated on load: each missing or impossible field is refused, naming the field."""

import json
import math
import shutil

import pytest

from medattn.assets import DEFAULT_MODEL_DIR
from medattn.errors import MedattnError, ModelError
from medattn.model.card import Architecture, ModelCard, read_card
from medattn.model.checkpoint import count_parameters, load_model
from medattn.model.network import AttentionNet
from medattn.model.predictor import Predictor, gate_probes
from medattn.model.preprocessing import Preprocessing


def card_for(model: AttentionNet, **changes) -> ModelCard:
    """A valid multi-label card for ``model``."""
    config = model.config
    card = ModelCard(
        name="tiny",
        version="1",
        task="multi-label",
        classes=tuple(config.classes),
        display_names={},
        intended_use="Tests only.",
        preprocessing=Preprocessing(config.input_size, config.in_channels),
        architecture=Architecture.of(config),
        temperature=(1.0,) * len(config.classes),
        thresholds=(0.5,) * len(config.classes),
        parameters=count_parameters(model),
    )
    return card.with_changes(**changes)


@pytest.fixture
def default_card() -> dict:
    return json.loads((DEFAULT_MODEL_DIR / "model.json").read_text())


def test_the_default_card_round_trips_and_drives_the_network(default_card):
    card = ModelCard.from_dict(default_card)
    assert ModelCard.from_dict(card.to_dict()) == card
    assert card.network.input_size == card.preprocessing.input_size == 128
    assert card.network.in_channels == card.preprocessing.channels == 1
    assert card.unlikeness is not None and card.unlikeness.threshold > 0
    assert card.metrics.split == "test" and card.metrics.per_class["nodule"].confusion.true_positive > 0
    assert card.robustness.shifts[0].shift == "none" and card.training.history[-1].epoch == card.training.epochs


def set_path(card: dict, path: str, value) -> dict:
    *parents, last = path.split(".")
    node = card
    for part in parents:
        node = node[part]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return card


@pytest.mark.parametrize(
    "path, value, named",
    [
        ("name", KeyError, "'name'"),
        ("classes", KeyError, "'classes'"),
        ("classes", ["nodule", "nodule", "effusion"], "'classes'"),
        ("task", "regression", "'task'"),
        ("display_names", {"fracture": "Fracture"}, "'display_names'"),
        ("temperature", [1.0, 1.0], "'temperature'"),
        ("temperature", [1.0, math.nan, 1.0], "'temperature'"),
        ("temperature", [1.0, 0.0, 1.0], "'temperature'"),
        ("temperature", [1.0, -2.0, 1.0], "'temperature'"),
        ("thresholds", [0.5, 0.5], "'thresholds'"),
        ("thresholds", [0.5, 1.5, 0.5], "'thresholds'"),
        ("thresholds", [0.5, math.nan, 0.5], "'thresholds'"),
        ("preprocessing", KeyError, "'preprocessing'"),
        ("preprocessing.input_size", 100_000, "'preprocessing.input_size'"),
        ("preprocessing.input_size", 0, "'preprocessing.input_size'"),
        ("preprocessing.input_size", "128", "'preprocessing.input_size'"),
        ("preprocessing.input_size", 130, "'architecture.widths'"),  # not a multiple of the encoder's stride
        ("preprocessing.channels", 2, "'preprocessing.channels'"),
        ("preprocessing.std", 0.0, "'preprocessing.std'"),
        ("preprocessing.std", math.inf, "'preprocessing.std'"),
        ("preprocessing.low_percentile", 99.9, "'preprocessing' percentiles"),
        ("architecture.heads", 5, "'architecture.embed_dim'"),
        ("architecture.backbone", "vgg16", "'architecture.backbone' is 'vgg16': this medattn builds medattn, densenet"),
        ("thresholds", [0.5, 0.999999, 0.5], "'thresholds' must lie between 0.01 and 0.99"),  # never calls it
        ("unlikeness.threshold", math.nan, "'unlikeness.threshold'"),
        ("unlikeness.noise_limit", -0.05, "'unlikeness.noise_limit'"),  # would withhold every scan
        ("faithfulness_hiding", {"nodule": "erase"}, "'faithfulness_hiding' maps 'nodule' to 'erase'"),
        ("faithfulness_hiding", {"mass": "grey"}, "'faithfulness_hiding' maps 'mass' to 'grey'"),
        ("display_names.nodule", "[Log in again](http://evil.example)", "holds markup ([ ] ://)"),
        ("intended_use", "Cleared for **clinical** diagnosis.", "holds markup (*)"),
        ("name", "<b>model</b>", "holds markup (< >)"),
        ("unlikeness.precision", [[1.0]], "'unlikeness.precision'"),
        ("unlikeness.mean", [math.nan] * 96, "'unlikeness.mean'"),
        ("metrics.split", KeyError, "'metrics.split'"),
        ("metrics.per_class.nodule.auc", "0.99", "'metrics.per_class.nodule.auc'"),
        ("metrics.explanations.methods.attention.overall", [0.9], "'metrics.explanations.methods.attention.overall'"),
        ("metrics.roc.nodule.fpr", 0.1, "'metrics.roc.nodule.fpr'"),
        ("robustness.shifts", {"shift": "none"}, "'robustness.shifts'"),
        ("robustness.cases_per_shift", True, "'robustness.cases_per_shift'"),
        ("training.history", [{"epoch": "one"}], "'training.history[0].epoch'"),
        ("card_version", 1, "'card_version'"),
    ],
)
def test_a_card_with_a_missing_or_impossible_field_is_refused_naming_it(default_card, path, value, named):
    with pytest.raises(ModelError) as refused:
        ModelCard.from_dict(set_path(default_card, path, value))
    assert named in str(refused.value)
    assert isinstance(refused.value, MedattnError)


def test_weights_changed_under_their_card_are_refused(tmp_path, default_card):
    """Head weights zeroed (same shapes) loaded, and the nodule sample fell from 100% to 0.6% while the Model
    page still showed the card's AUC of 0.993."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model")
    weights = tmp_path / "model" / "model.safetensors"
    state = load_file(weights)
    state["head_bias"] = state["head_bias"] * 0
    save_file(state, weights)
    with pytest.raises(ModelError, match="the weights are not the ones its figures, thresholds and alarm limit"):
        load_model(tmp_path / "model")
    del default_card["weights_sha256"]
    (tmp_path / "model" / "model.json").write_text(json.dumps(default_card))
    with pytest.raises(ModelError, match="records no 'weights_sha256'"):
        load_model(tmp_path / "model")


@pytest.mark.parametrize("past_the_checkerboard", [False, True])
def test_an_alarm_limit_that_lets_noise_through_is_refused(tmp_path, default_card, past_the_checkerboard):
    """A card edited to 1e12 let pydicom-data's real chest CR show 'Pulmonary nodule (99%)' with no warning. A limit
    just past the checkerboard's own unlikeness lets it through too: it has no noise for the other limit to see."""
    shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model")
    limit = 1e12
    if past_the_checkerboard:
        shipped = Predictor.load(DEFAULT_MODEL_DIR)
        checkerboard, _ = shipped.prepare(gate_probes(shipped.preprocessing.input_size)["a checkerboard"])
        limit = float(shipped.run(checkerboard).unlikeness[0]) + 1
    default_card["unlikeness"]["threshold"] = limit
    (tmp_path / "model" / "model.json").write_text(json.dumps(default_card))
    probe = "a checkerboard" if past_the_checkerboard else "(uniform noise|a checkerboard)"
    with pytest.raises(ModelError, match=rf"let {probe} through \(its unlikeness is"):
        Predictor.load(tmp_path / "model")
    # The shipped limit passes, and it is below the least unlike real DICOM file's distance (68.7, docs/model.md).
    assert Predictor.load(DEFAULT_MODEL_DIR).card.unlikeness.threshold < 60


def test_a_card_whose_class_count_does_not_match_the_weights_is_refused(tmp_path, default_card):
    shutil.copytree(DEFAULT_MODEL_DIR, tmp_path / "model")
    card = default_card | {"classes": ["nodule", "effusion"], "temperature": [1.0, 1.0], "thresholds": [0.5, 0.5]}
    card |= {"display_names": {"nodule": "Pulmonary nodule"}, "faithfulness_hiding": {}}
    (tmp_path / "model" / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"lists 2 'classes', but the weights .* have 3"):
        load_model(tmp_path / "model")


@pytest.mark.parametrize(
    "content, message",
    [("{not json", "is not valid JSON"), ("[1, 2]", "holds no JSON object"), (b"\xff\xfe\x00", "cannot be read")],
)
def test_an_unreadable_card_file_is_refused(tmp_path, content, message):
    (tmp_path / "model.json").write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ModelError, match=message):
        read_card(tmp_path)


def test_a_huge_card_is_refused_unread(tmp_path):
    with (tmp_path / "model.json").open("wb") as handle:
        handle.truncate(200 * 2**20)  # sparse: 200 MB that cost nothing to write
    with pytest.raises(ModelError, match="is 200 MB; a model card is a few hundred kB"):
        read_card(tmp_path)


def test_a_folder_that_is_not_a_model_is_refused(tmp_path):
    with pytest.raises(ModelError, match="is not a folder"):
        load_model(tmp_path / "missing")
    with pytest.raises(ModelError, match=r"holds no model\.safetensors"):
        load_model(tmp_path)
