"""MONAI's DenseNet-121 and ResNets as encoders under medattn's attention pooling, with weights a user supplies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.networks import nets
from safetensors.torch import save_file

from medattn import Predictor
from medattn.errors import ModelError, TrainingError
from medattn.explain import EXPLAINERS
from medattn.model.backbones import MONAI_BACKBONES, load_encoder_weights
from medattn.model.checkpoint import load_model, save_model
from medattn.model.network import AttentionNet, ModelConfig
from medattn.training.datasets import synthetic
from medattn.training.train import TrainConfig, train

CLASSES = ("nodule", "effusion", "cardiomegaly")


@pytest.mark.parametrize("backbone", MONAI_BACKBONES)
def test_a_monai_encoder_is_pooled_by_the_class_queries_and_travels_in_its_card(tmp_path, backbone):
    config = ModelConfig(CLASSES, input_size=96, backbone=backbone)
    model, card = train(TrainConfig(epochs=1, batch_size=8), synthetic(0, 16, 96), synthetic(1, 8, 96), config)
    inputs = torch.randn(2, 1, 96, 96)
    with torch.no_grad():
        logits, attention = model(inputs)
    assert config.grid_size == 3 and attention.shape == (2, 3, 3, 3) and logits.shape == (2, 3)
    torch.testing.assert_close(attention.sum(dim=(2, 3)), torch.ones(2, 3))
    assert card.architecture.backbone == backbone
    save_model(model, card, tmp_path)
    loaded, _ = load_model(tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(inputs)[0], logits)
    predictor = Predictor.load(tmp_path)  # served as any model: its maps on the image's own geometry
    image = np.zeros((90, 120), dtype=np.float32)
    assert predictor.predict(image).attention["nodule"].values.shape == (90, 120)
    assert predictor.explain(image, "nodule", EXPLAINERS["gradcam"]).values.shape == (90, 120)


def test_pretrained_weights_of_a_whole_monai_network_load_into_the_encoder_and_others_are_refused(tmp_path):
    """A DenseNet121's state dict as MONAI saves it (its classifier included) loads into the encoder as it is."""
    torch.manual_seed(1)
    whole = nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=14)
    save_file({name: value.contiguous() for name, value in whole.state_dict().items()}, tmp_path / "dense.safetensors")
    model = AttentionNet(ModelConfig(CLASSES, input_size=64, backbone="densenet121"))
    load_encoder_weights(model.encoder, tmp_path / "dense.safetensors")
    expected = whole.state_dict()
    assert all(torch.equal(value, expected[name]) for name, value in model.encoder.state_dict().items())

    resnet = nets.resnet18(spatial_dims=2, n_input_channels=1, num_classes=1)
    save_file({name: value.contiguous() for name, value in resnet.state_dict().items()}, tmp_path / "res.safetensors")
    with pytest.raises(ModelError, match=r"res.safetensors lacks features\.conv0\.weight .*keyed as MONAI names them"):
        load_encoder_weights(model.encoder, tmp_path / "res.safetensors")
    three = AttentionNet(ModelConfig(CLASSES, in_channels=3, input_size=64, backbone="densenet121"))
    with pytest.raises(ModelError, match=r"holds features\.conv0\.weight as \(64, 1, 7, 7\)"):
        load_encoder_weights(three.encoder, tmp_path / "dense.safetensors")
    (tmp_path / "model.pt").write_bytes(b"\x80\x04pickled")
    with pytest.raises(ModelError, match="is not a readable safetensors file"):
        load_encoder_weights(model.encoder, tmp_path / "model.pt")


def test_an_input_size_the_encoders_tokens_do_not_divide_is_refused_before_training():
    config = ModelConfig(CLASSES, input_size=100, backbone="resnet18")
    with pytest.raises(TrainingError, match="100 px is not a multiple of the resnet18 encoder's 32 px tokens"):
        train(TrainConfig(epochs=1, batch_size=8), synthetic(0, 8, 100), synthetic(1, 8, 100), config)
