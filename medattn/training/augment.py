"""Augmentation of prepared model inputs, batch by batch, for the shifts a model meets off its benchmark.

Each family mirrors one the robustness suite (``medattn.training.robustness``) measures: positioning
(mirroring, rotation, scale, translation), blur where asked, exposure (gamma), film noise, collimation borders,
and hidden regions. A hidden region is set to ``HIDDEN``, the grey that occlusion, deletion and the faithfulness
check hide with, so that hiding part of an image never draws a finding of its own. Labels are unchanged:
none of these moves a finding out of the image or changes what it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.networks.layers.convutils import gaussian_1d
from monai.networks.layers.simplelayers import separable_filtering

from medattn.explain.base import HIDDEN
from medattn.model.preprocessing import Preprocessing


@dataclass(frozen=True)
class Augmentation:
    mirror: float = 0.5  # probability of a left-right flip
    rotation_degrees: float = 12.0
    scale: tuple[float, float] = (0.85, 1.15)
    translation: float = 0.1  # of the image's side, each way
    gamma: tuple[float, float] = (0.4, 2.5)  # drawn log-uniformly
    noise: float = 0.5  # probability of film noise...
    noise_sd: tuple[float, float] = (0.0, 0.1)  # ...of this standard deviation, on the [0, 1] intensity scale
    collimation: float = 0.15  # probability of bright unexposed bands along the edges
    hidden_region: float = 0.25  # probability of each of three hidden rectangles: 58% of images get one or more
    hidden_side: tuple[float, float] = (0.06, 0.3)  # each rectangle's sides, as shares of the image's side
    # Probability of a Gaussian blur (a soft film, a detector's spread) of an SD drawn from ``blur_sigma``, in
    # pixels of the model input. 0 draws no random number, so a recipe without it is drawn exactly as before.
    blur: float = 0.0
    blur_sigma: tuple[float, float] = (0.5, 2.0)


def augment(
    inputs: torch.Tensor,
    recipe: Preprocessing,
    plan: Augmentation,
    generator: torch.Generator,
    masks: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A new batch (B, channels, S, S) of prepared inputs, each drawn through ``plan`` with ``generator``, and
    ``masks`` (B, C, h, w; any grid over the same image) moved with the image's positioning, or None. The masks
    draw no random numbers: a batch without them is drawn exactly as before."""
    batch, _, size, _ = inputs.shape

    def uniform(low: float, high: float, *shape: int) -> torch.Tensor:
        return torch.rand(batch, *shape, generator=generator) * (high - low) + low

    def chosen(probability: float) -> torch.Tensor:
        return torch.rand(batch, generator=generator) < probability

    # Positioning: one affine warp per image (mirror, rotation, scale, translation); edges replicated.
    angle = uniform(-plan.rotation_degrees, plan.rotation_degrees) * math.pi / 180
    scale = uniform(*plan.scale)
    mirror = torch.where(chosen(plan.mirror), -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([
        torch.stack([cos * mirror, -sin, uniform(-plan.translation, plan.translation) * 2], dim=1),
        torch.stack([sin * mirror, cos, uniform(-plan.translation, plan.translation) * 2], dim=1),
    ], dim=1)  # (B, 2, 3), in grid_sample's [-1, 1] coordinates  # fmt: skip
    grid = F.affine_grid(theta, list(inputs.shape), align_corners=False)
    warped = F.grid_sample(inputs, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if masks is not None:  # the same warp on the masks' grid (grid_sample's coordinates are shares of the side)
        mask_grid = F.affine_grid(theta, list(masks.shape), align_corners=False)
        masks = F.grid_sample(masks, mask_grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    if plan.blur:
        sigma, blurred = uniform(*plan.blur_sigma), chosen(plan.blur)
        for index in blurred.nonzero().flatten().tolist():  # a kernel of each image's own width (MONAI's filter)
            kernel = gaussian_1d(sigma[index], truncated=3.0)
            warped[index : index + 1] = separable_filtering(warped[index : index + 1], [kernel, kernel], "replicate")

    # Intensity, on the [0, 1] scale the recipe stretched to: collimation, gamma, then noise.
    intensity = (warped * recipe.std + recipe.mean).clamp(0, 1)
    rows = torch.arange(size).view(1, size, 1)
    columns = torch.arange(size).view(1, 1, size)
    bands = (uniform(0.04, 0.14, 4) * size).long()  # (B, 4): top, bottom, left, right
    edge = (
        (rows < bands[:, 0, None, None])
        | (rows >= size - bands[:, 1, None, None])
        | (columns < bands[:, 2, None, None])
        | (columns >= size - bands[:, 3, None, None])
    ) & chosen(plan.collimation)[:, None, None]  # (B, S, S)
    intensity = torch.where(edge[:, None], uniform(0.85, 1.0, 1, 1, 1), intensity)
    gamma = torch.exp(uniform(math.log(plan.gamma[0]), math.log(plan.gamma[1]), 1, 1, 1))
    intensity = intensity.clamp_min(1e-6) ** gamma
    noise_sd = uniform(*plan.noise_sd, 1, 1, 1) * chosen(plan.noise)[:, None, None, None]
    intensity = intensity + torch.randn(intensity.shape, generator=generator) * noise_sd
    augmented = (intensity.clamp(0, 1) - recipe.mean) / recipe.std

    # Hidden regions, in the model's own grey.
    for _ in range(3):
        sides = (uniform(*plan.hidden_side, 2) * size).long()  # (B, 2): height, width
        corner = (torch.rand(batch, 2, generator=generator) * (size - sides)).long()
        inside = (
            (rows >= corner[:, 0, None, None])
            & (rows < (corner[:, 0] + sides[:, 0])[:, None, None])
            & (columns >= corner[:, 1, None, None])
            & (columns < (corner[:, 1] + sides[:, 1])[:, None, None])
        ) & chosen(plan.hidden_region)[:, None, None]
        augmented = torch.where(inside[:, None], torch.tensor(HIDDEN), augmented)
    return augmented, masks
