"""AttentionNet: a CNN encoder whose feature tokens are pooled by one learned query per class.

The attention weights that pool the tokens are returned by ``forward``: they are the app's
first explanation, so they are computed explicitly (a fused attention kernel never returns them).
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from medattn.model import backbones


@dataclass
class ModelConfig:
    """Everything needed to build the network; ``ModelCard.network`` rebuilds it from the card."""

    classes: tuple[str, ...]
    in_channels: int = 1
    input_size: int = 128
    # Output channels of each encoder stage; every stage but the last halves the resolution.
    # Three stages give tokens every 4 px: a 16 px grid never learned to find small nodules.
    widths: tuple[int, ...] = (24, 48, 96)
    embed_dim: int = 96
    heads: int = 4
    # medattn's own encoder (the stages above), or a MONAI network's (medattn.model.backbones)
    backbone: str = backbones.OWN

    @property
    def stride(self) -> int:
        """Input pixels per token, along each side."""
        return 2 ** (len(self.widths) - 1) if self.backbone == backbones.OWN else backbones.MONAI_STRIDE

    @property
    def grid_size(self) -> int:
        return self.input_size // self.stride


def _stage(c_in: int, c_out: int, downsample: bool) -> nn.Sequential:
    """Halve the resolution with a 2x2 stride-2 convolution, then a 3x3 convolution.

    A 2x2 stride-2 kernel keeps output j centred on input pixels 2j..2j+1, exactly where bilinear
    upsampling puts it; a 3x3 stride-2 kernel with padding 1 would centre it half a pixel up-left,
    a shift that compounds to 3.5 input pixels over three stages and moves every heatmap.
    The last stage (no downsampling) is a single 3x3 convolution, to keep each token's receptive
    field local enough that the token holding a finding is the one the attention should pick.
    """
    if not downsample:
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)
        )
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 2, stride=2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def positional_encoding_2d(dim: int, height: int, width: int) -> torch.Tensor:
    """Fixed sine-cosine encoding, half the channels for rows and half for columns: (H*W, dim)."""
    quarter = dim // 4
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(quarter) / quarter)
    rows = torch.arange(height, dtype=torch.float32)[:, None] * frequencies  # (H, dim/4)
    cols = torch.arange(width, dtype=torch.float32)[:, None] * frequencies  # (W, dim/4)
    row_code = torch.cat([rows.sin(), rows.cos()], dim=1)[:, None, :].expand(height, width, -1)
    col_code = torch.cat([cols.sin(), cols.cos()], dim=1)[None, :, :].expand(height, width, -1)
    return torch.cat([row_code, col_code], dim=2).reshape(height * width, dim)


class ClassQueryAttention(nn.Module):
    """Multi-head softmax(QK^T/sqrt(d_k))V pooling with one learned query per class."""

    def __init__(self, num_classes: int, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"embed_dim {dim} is not divisible by heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.queries = nn.Parameter(torch.randn(num_classes, dim) * dim**-0.5)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pooled vectors (B, C, D), head-averaged attention (B, C, N) and token values (B, N, D)."""
        batch, length, dim = tokens.shape  # (B, N, D)
        classes = self.queries.shape[0]
        q = self.queries.view(classes, self.heads, self.head_dim).transpose(0, 1)  # (nh, C, hs)
        k = self.key(tokens).view(batch, length, self.heads, self.head_dim).transpose(1, 2)  # (B, nh, N, hs)
        v = self.value(tokens).view(batch, length, self.heads, self.head_dim).transpose(1, 2)  # (B, nh, N, hs)
        # (nh, C, hs) x (B, nh, hs, N) -> (B, nh, C, N)
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.head_dim), dim=-1)
        # (B, nh, C, N) x (B, nh, N, hs) -> (B, nh, C, hs) -> (B, C, D)
        pooled = (weights @ v).transpose(1, 2).reshape(batch, classes, dim)
        values = v.transpose(1, 2).reshape(batch, length, dim)  # (B, N, D)
        return pooled, weights.mean(dim=1), values


class AttentionNet(nn.Module):
    """``forward(x)`` returns ``(logits (B, C), attention (B, C, h, w))``; attention sums to 1 per class.

    A class's logit is the attention-weighted sum of its per-token scores w_c . v_n + b_c, so
    ``forward(x, token_scores=True)`` also returns those scores (B, C, h, w): the score each token
    alone would give. Training asks the best single token to predict the label as well, so the
    evidence sits in one place and the attention has to find it.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        if config.backbone == backbones.OWN:
            widths = config.widths
            stages = [_stage(config.in_channels, widths[0], downsample=True)]
            stages += [
                _stage(c_in, c_out, downsample=i < len(widths) - 2)
                for i, (c_in, c_out) in enumerate(itertools.pairwise(widths))
            ]
            self.encoder, channels = nn.Sequential(*stages), widths[-1]
        else:
            self.encoder, channels = backbones.monai_encoder(config.backbone, config.in_channels)
        self.project = nn.Sequential(nn.Linear(channels, config.embed_dim), nn.LayerNorm(config.embed_dim))
        grid = config.grid_size
        self.register_buffer("position", positional_encoding_2d(config.embed_dim, grid, grid), persistent=False)
        num_classes = len(config.classes)
        self.pool = ClassQueryAttention(num_classes, config.embed_dim, config.heads)
        # One linear read-out per class of that class's pooled vector.
        self.head_weight = nn.Parameter(torch.zeros(num_classes, config.embed_dim))
        self.head_bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x: torch.Tensor, token_scores: bool = False) -> tuple[torch.Tensor, ...]:
        return self.classify(self.encoder(x), token_scores)

    def classify(self, features: torch.Tensor, token_scores: bool = False) -> tuple[torch.Tensor, ...]:
        """Everything after the encoder, from its feature map (B, Cf, h, w); see ``forward``."""
        batch, _, h, w = features.shape
        tokens = self.project(features.flatten(2).transpose(1, 2))  # (B, N, D)
        position = (
            self.position
            if h * w == self.position.shape[0]
            else positional_encoding_2d(tokens.shape[-1], h, w).to(tokens)
        )
        pooled, attention, values = self.pool(tokens + position)  # (B, C, D), (B, C, N), (B, N, D)
        logits = (pooled * self.head_weight).sum(-1) + self.head_bias  # (B, C)
        if not token_scores:
            return logits, attention.view(batch, -1, h, w)
        # (B, N, D) x (D, C) -> (B, N, C) -> (B, C, h, w)
        scores = (values @ self.head_weight.T + self.head_bias).transpose(1, 2).reshape(batch, -1, h, w)
        return logits, attention.view(batch, -1, h, w), scores


def for_inference(model: AttentionNet) -> AttentionNet:
    """A copy of ``model`` (in eval mode) for serving: each BatchNorm folded into the convolution before it, by
    PyTorch's own ``fuse_conv_bn_eval``, and the weights in channels-last memory format, which oneDNN's CPU
    convolutions run without reordering. Outputs equal the model's within float32 rounding (tests/model/
    test_network.py); at batch 16 on 2 cores the forward pass took 0.50 of the eager time
    (benchmarks/inference.py). Training and the card's figures use the model as it is."""
    served = copy.deepcopy(model).eval()
    if model.config.backbone != backbones.OWN:  # MONAI's networks as they are
        return served.to(memory_format=torch.channels_last)
    stages = []
    for stage in served.encoder:
        layers, folded = list(stage), []
        while layers:
            layer = layers.pop(0)
            if isinstance(layer, nn.Conv2d) and layers and isinstance(layers[0], nn.BatchNorm2d):
                layer = fuse_conv_bn_eval(layer, layers.pop(0))
            folded.append(layer)
        stages.append(nn.Sequential(*folded))
    served.encoder = nn.Sequential(*stages)
    return served.to(memory_format=torch.channels_last)
