import hashlib
import json

import pytest
import torch

from medattn.assets import DEFAULT_MODEL_DIR
from medattn.benchmark import generate_case
from medattn.errors import ModelError
from medattn.model.card import read_card, write_card
from medattn.model.checkpoint import load_model, save_model
from medattn.model.network import AttentionNet, ModelConfig
from tests.conftest import chest_cr_pixels
from tests.model.test_card import card_for


def tiny_model(**overrides) -> AttentionNet:
    values = {"classes": ("a", "b"), "input_size": 32, "widths": (4, 8, 8), "embed_dim": 8, "heads": 2, **overrides}
    config = ModelConfig(**values)
    return AttentionNet(config)


def test_forward_returns_logits_and_attention_that_sums_to_one_per_class():
    model = tiny_model()
    logits, attention = model(torch.randn(3, 1, 32, 32))
    assert logits.shape == (3, 2)
    assert attention.shape == (3, 2, 8, 8)
    assert (attention >= 0).all()
    torch.testing.assert_close(attention.sum(dim=(2, 3)), torch.ones(3, 2))


def test_logit_is_the_attention_weighted_sum_of_token_scores():
    model = tiny_model(heads=1).eval()
    with torch.no_grad():
        logits, attention, scores = model(torch.randn(4, 1, 32, 32), token_scores=True)
    assert scores.shape == attention.shape == (4, 2, 8, 8)
    torch.testing.assert_close(logits, (attention * scores).sum(dim=(2, 3)))


def test_encoder_peaks_in_the_token_that_contains_a_bright_pixel():
    """With every filter a box sum, an impulse's strongest response must sit in its own token cell.

    A 3x3 stride-2 convolution with padding 1 fails this for pixels in the lower half of a cell
    (it shifts tokens up-left); interior points avoid the zero padding's pull at the border.
    """
    model = AttentionNet(ModelConfig(classes=("a",))).eval()
    cell = model.config.input_size // model.config.grid_size
    with torch.no_grad():
        for conv in (m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)):
            conv.weight.fill_(1.0)
        for row, col in [(23, 31), (71, 103), (47, 63), (87, 55)]:
            image = torch.zeros(1, 1, 128, 128)
            image[..., row, col] = 1.0
            response = model.encoder(image)[0].sum(dim=0)
            assert divmod(int(response.argmax()), response.shape[-1]) == (row // cell, col // cell)


def test_attention_moves_with_the_image_content():
    torch.manual_seed(0)
    model = tiny_model().eval()
    image = torch.zeros(1, 1, 32, 32)
    image[..., 4:8, 4:8] = 5.0
    _, attention = model(image)
    _, shifted_attention = model(torch.roll(image, shifts=(16, 16), dims=(2, 3)))
    assert not torch.allclose(attention, shifted_attention)


def test_colour_input_is_supported():
    logits, _ = tiny_model(in_channels=3)(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 2)


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = tiny_model().eval()
    save_model(model, card_for(model), tmp_path)
    loaded, card = load_model(tmp_path)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert card.architecture.widths == (4, 8, 8) and card.network == model.config


def test_pickled_checkpoint_is_refused(tmp_path):
    torch.save(tiny_model().state_dict(), tmp_path / "model.pt")
    with pytest.raises(ModelError, match="pickled checkpoints are refused"):
        load_model(tmp_path)


def test_weights_of_another_architecture_are_refused(tmp_path):
    model = tiny_model()
    save_model(model, card_for(model), tmp_path)
    card = json.loads((tmp_path / "model.json").read_text())
    card["architecture"]["widths"] = [4, 8, 16]
    (tmp_path / "model.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="do not fit the network its card describes"):
        load_model(tmp_path)


def test_corrupt_weights_are_refused(tmp_path):
    model = tiny_model()
    save_model(model, card_for(model), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="the weights are not the ones"):
        load_model(tmp_path)
    write_card(read_card(tmp_path).with_changes(weights_sha256=hashlib.sha256(b"\x00" * 64).hexdigest()), tmp_path)
    with pytest.raises(ModelError, match="not a readable safetensors file"):  # the card vouches for them
        load_model(tmp_path)


def test_the_served_model_gives_the_trained_models_outputs_within_float_rounding(predictor):
    """for_inference folds BatchNorm into the convolutions and lays the weights out channels-last: the logits,
    attention and encoder features of the default model, on benchmark cases and the real chest CR, stay within
    1e-4 of the model as trained (float32 rounding; the figures on the card were measured on the latter)."""
    trained, _ = load_model(DEFAULT_MODEL_DIR)
    served = predictor.model
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in served.modules())  # folded: none left to run
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in trained.modules())
    images = [generate_case(7, index).image for index in range(16)] + [chest_cr_pixels(256)]
    inputs = torch.cat([predictor.prepare(image)[0] for image in images])
    with torch.inference_mode():
        for expected, got in zip(trained(inputs), served(inputs), strict=True):
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(served.encoder(inputs), trained.encoder(inputs), atol=1e-4, rtol=1e-4)
