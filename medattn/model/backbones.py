"""Bigger encoders from MONAI, the field's PyTorch library, under medattn's attention pooling.

MONAI's networks are plain PyTorch (no torchvision), so a research group can train medattn's attention model on a
DenseNet-121 or a ResNet, the encoders of the chest radiograph literature (CheXNet is a DenseNet-121), and the
attention stays the model's own reasoning: only the encoder changes. Nothing is downloaded: pretrained encoder
weights come as a safetensors file the user supplies (``load_encoder_weights``), keyed as MONAI's own network
names them, so the state dict of a whole MONAI DenseNet121 or ResNet loads as it is (its classifier is left out).
The default model keeps medattn's small encoder, whose tokens lie every 4 px; these lie every 32 px.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from medattn.errors import ModelError

if TYPE_CHECKING:  # torch is imported where a network is built, so that the command line's --help needs none
    from torch import nn

OWN = "medattn"  # medattn's own small encoder (medattn.model.network)
MONAI_BACKBONES = ("densenet121", "resnet18", "resnet50")
BACKBONES = (OWN, *MONAI_BACKBONES)
MONAI_STRIDE = 32  # input pixels per token of every MONAI backbone here: a 512 px input gives a 16 x 16 grid


def monai_encoder(name: str, in_channels: int) -> tuple[nn.Module, int]:
    """MONAI's ``name`` network up to its last feature map (B, channels, S/32, S/32), and its channels."""
    from monai.networks import nets  # imported only for these backbones: MONAI takes a second to import
    from torch import nn

    if name == "densenet121":
        network = nets.DenseNet121(spatial_dims=2, in_channels=in_channels, out_channels=1)
        # Its features end with a batch norm; the classifier it leaves out would apply the ReLU next.
        return nn.Sequential(OrderedDict(features=network.features, relu=nn.ReLU())), 1024
    if name in ("resnet18", "resnet50"):
        # A stride-2 first convolution, as in the papers (MONAI's default keeps it at 1).
        network = getattr(nets, name)(spatial_dims=2, n_input_channels=in_channels, conv1_t_stride=2, num_classes=1)
        parts = ("conv1", "bn1", "act", "maxpool", "layer1", "layer2", "layer3", "layer4")
        channels = 512 if name == "resnet18" else 2048
        return nn.Sequential(OrderedDict((part, getattr(network, part)) for part in parts)), channels
    raise ModelError(f"Unknown backbone {name!r}: choose from {', '.join(BACKBONES)}.")


def load_encoder_weights(encoder: nn.Module, path: Path) -> None:
    """Load ``path`` (safetensors, keyed as MONAI names the network's parameters) into ``encoder``; keys beyond
    the encoder (a classifier) are left out. A file that lacks a parameter, or holds one of another shape, is a
    ModelError that names it."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        weights = load_file(path)
    except (SafetensorError, OSError) as error:
        raise ModelError(f"{path} is not a readable safetensors file ({error}).") from None
    wanted = encoder.state_dict()
    missing = [name for name in wanted if name not in weights]
    wrong = [name for name in wanted if name in weights and weights[name].shape != wanted[name].shape]
    if missing or wrong:
        said = f"lacks {missing[0]}" if missing else f"holds {wrong[0]} as {tuple(weights[wrong[0]].shape)}"
        raise ModelError(
            f"{path} {said} ({len(missing)} missing, {len(wrong)} of another shape): give the weights of the same "
            "network, with as many input channels, keyed as MONAI names them."
        )
    with torch.no_grad():
        encoder.load_state_dict({name: weights[name] for name in wanted})
