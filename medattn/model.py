"""AttentionNet: a CNN encoder whose feature tokens are pooled by one learned query per class.

The attention weights that pool the tokens are returned by ``forward``: they are the app's
first explanation, so they are computed explicitly (a fused attention kernel never returns them).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class ModelConfig:
    """Everything needed to rebuild the network; stored in the model card."""

    classes: tuple[str, ...]
    in_channels: int = 1
    input_size: int = 128
    # Output channels of each encoder stage; every stage but the last halves the resolution.
    widths: tuple[int, ...] = (24, 48, 96, 128)
    embed_dim: int = 96
    heads: int = 4

    @property
    def grid_size(self) -> int:
        return self.input_size // 2 ** (len(self.widths) - 1)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        values = dict(values)
        for key in ("classes", "widths"):
            values[key] = tuple(values[key])
        return cls(**values)


def _conv_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
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

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, length, dim = tokens.shape  # (B, N, D)
        classes = self.queries.shape[0]
        q = self.queries.view(classes, self.heads, self.head_dim).transpose(0, 1)  # (nh, C, hs)
        k = self.key(tokens).view(batch, length, self.heads, self.head_dim).transpose(1, 2)  # (B, nh, N, hs)
        v = self.value(tokens).view(batch, length, self.heads, self.head_dim).transpose(1, 2)  # (B, nh, N, hs)
        # (nh, C, hs) x (B, nh, hs, N) -> (B, nh, C, N)
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.head_dim), dim=-1)
        # (B, nh, C, N) x (B, nh, N, hs) -> (B, nh, C, hs) -> (B, C, D)
        pooled = (weights @ v).transpose(1, 2).reshape(batch, classes, dim)
        return pooled, weights.mean(dim=1)  # attention (B, C, N), averaged over heads


class AttentionNet(nn.Module):
    """``forward(x)`` returns ``(logits (B, C), attention (B, C, h, w))``; attention sums to 1 per class."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        widths = config.widths
        stages = [_conv_block(config.in_channels, widths[0], stride=2)]
        stages += [
            _conv_block(c_in, c_out, stride=2 if i < len(widths) - 2 else 1)
            for i, (c_in, c_out) in enumerate(itertools.pairwise(widths))
        ]
        self.encoder = nn.Sequential(*stages)
        self.project = nn.Sequential(nn.Linear(widths[-1], config.embed_dim), nn.LayerNorm(config.embed_dim))
        grid = config.grid_size
        self.register_buffer("position", positional_encoding_2d(config.embed_dim, grid, grid), persistent=False)
        num_classes = len(config.classes)
        self.pool = ClassQueryAttention(num_classes, config.embed_dim, config.heads)
        # One linear read-out per class of that class's pooled vector.
        self.head_weight = nn.Parameter(torch.zeros(num_classes, config.embed_dim))
        self.head_bias = nn.Parameter(torch.zeros(num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(x)  # (B, Cf, h, w)
        batch, _, h, w = features.shape
        tokens = self.project(features.flatten(2).transpose(1, 2))  # (B, N, D)
        position = (
            self.position
            if h * w == self.position.shape[0]
            else positional_encoding_2d(tokens.shape[-1], h, w).to(tokens)
        )
        pooled, attention = self.pool(tokens + position)  # (B, C, D), (B, C, N)
        logits = (pooled * self.head_weight).sum(-1) + self.head_bias  # (B, C)
        return logits, attention.view(batch, -1, h, w)
