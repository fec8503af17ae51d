"""Heatmap overlays and their legend: pure functions from arrays to arrays (RGB uint8 out)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TypedDict, Unpack

import cv2
import numpy as np
from PIL import Image

from medattn.model.predictor import Heatmap

COLORMAPS = {"jet": cv2.COLORMAP_JET, "inferno": cv2.COLORMAP_INFERNO, "viridis": cv2.COLORMAP_VIRIDIS}
CONTOUR_COLOUR = (255, 255, 255)
TRUTH_COLOUR = (0, 255, 0)  # a synthetic sample's ground-truth outline: unlike any colour-map's white


# The model-wide scale of attention maps: weight relative to uniform attention (1 = every token weighed
# alike), on a log scale from 1x to 512x. Class-query attention is a softmax over tokens, so this scale
# means the same for every scan; the largest token weight seen on the benchmark's held-out seed is 529x.
ATTENTION_SCALE_TOP = 512.0
ATTENTION_TICKS = (1, 4, 16, 64, 512)
PEAK_TICKS = ((0.0, "0"), (0.5, "half the peak"), (1.0, "peak"))


def attention_levels(times_uniform: np.ndarray) -> np.ndarray:
    """Colour levels in [0, 1] for attention given relative to uniform, on the fixed model-wide log scale:
    uniform or less is 0, ATTENTION_SCALE_TOP or more is 1."""
    ratio = np.clip(np.nan_to_num(np.asarray(times_uniform, dtype=np.float32)), 1.0, ATTENTION_SCALE_TOP)
    return np.log(ratio) / np.log(ATTENTION_SCALE_TOP)


# The lowest colour level painted, for every method and scale: 2% of the bar (on the model-wide attention
# scale, 1.13x uniform). Below it the colour maps' darkest shade would tint the whole scan.
PAINTED_FROM = 0.02


def map_levels(heatmap: Heatmap, model_wide: bool = True) -> np.ndarray:
    """A map's colour levels in [0, 1]: on the model-wide attention scale when asked and the map has one
    (attention), else relative to the map's own peak."""
    if model_wide and heatmap.peak_times_uniform is not None:
        return attention_levels(heatmap.values * heatmap.peak_times_uniform)
    return heatmap.values


def attention_ticks() -> list[tuple[float, str]]:
    """The fixed scale's colour bar labels: (level, text)."""
    return [(float(attention_levels(np.float32(t))), f"{t}x") for t in ATTENTION_TICKS]


def top_region(heatmap: np.ndarray, fraction: float) -> np.ndarray:
    """The hottest ``fraction`` of the pixels (at least one), as a boolean mask."""
    count = max(1, round(fraction * heatmap.size))
    flat = np.zeros(heatmap.size, dtype=bool)
    flat[np.argsort(heatmap, axis=None, kind="stable")[-count:]] = True
    return flat.reshape(heatmap.shape)


def coloured(heat: np.ndarray, colormap: str) -> np.ndarray:
    """RGB uint8 for heat in [0, 1] through an OpenCV colour map."""
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}; choose from {sorted(COLORMAPS)}")
    levels = np.round(np.clip(heat, 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, COLORMAPS[colormap]), cv2.COLOR_BGR2RGB)


# The overlay layer is made at most this many pixels on its longer side, and stretched over the scan by the
# viewer and the reports alike: the maps beneath it are 32 or 128 px, and a layer the size of a 2k radiograph
# (14 MB of RGBA) cost each opacity change 40 ms more to make, deflate and draw than one of this size.
LAYER_SIDE = 1024


def layer_shape(image_shape: tuple[int, ...]) -> tuple[int, int]:
    """(rows, columns) of the overlay layer for an image of ``image_shape``: the image's own, shrunk to
    LAYER_SIDE on its longer side where it is larger, its aspect kept."""
    rows, columns = image_shape[:2]
    scale = min(1.0, LAYER_SIDE / max(rows, columns))
    return max(1, round(rows * scale)), max(1, round(columns * scale))


@dataclass(frozen=True)
class Layers:
    """The overlay as the viewer draws it, in two RGBA uint8 layers of one size: ``heat``, the colour-mapped map,
    opaque wherever it is painted, which the viewer lays on at the reader's opacity without asking the page; and
    ``lines``, outlines drawn opaque over it at any opacity. ``at`` flattens them into the one layer reports lay
    on, so what leaves the app shows what the viewer drew."""

    heat: np.ndarray
    lines: np.ndarray

    def at(self, opacity: float) -> np.ndarray:
        """The two layers as one (RGBA uint8), the heat at ``opacity`` and the lines over it."""
        if not 0.0 <= opacity <= 1.0:
            raise ValueError(f"opacity must be in [0, 1], got {opacity}")
        flat = self.heat.copy()
        # Through a table of the 256 alphas: on every run of Review, elementwise arithmetic over a 1024 px layer
        # took most of this method's 19 ms; the table and a masked copy take 11.
        flat[..., 3] = np.round(np.arange(256) * opacity).astype(np.uint8)[flat[..., 3]]
        np.copyto(flat, self.lines, where=self.lines[..., 3:] > 0)
        return flat


def layers(heatmap: np.ndarray, colormap: str = "jet", threshold: float = 0.0, contour_fraction: float = 0.0) -> Layers:
    """The overlay of ``heatmap`` (H x W colour levels in [0, 1]: a ``Heatmap``'s peak-scaled values, or
    ``attention_levels``) as ``Layers`` of its size.

    Pixels below ``threshold`` or ``PAINTED_FROM`` stay transparent: on the model-wide scale, level 0 is
    attention no stronger than uniform, and a map relative to its peak (every gradient method, occlusion)
    holds faint heat almost everywhere; tinting either would paint the whole image dark blue. With
    ``contour_fraction``, the outline of the hottest that share of the image is drawn, opaque, around painted
    heat only: where less heat is painted than the share, the quota is not filled with tied zero-level pixels
    (which once drew a false band along the image's last rows).
    """
    heat = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0, 1.0)
    painted = heat >= max(threshold, PAINTED_FROM)
    coloured_heat = np.dstack([coloured(heat, colormap), np.where(painted, np.uint8(255), np.uint8(0))])
    lines = np.zeros_like(coloured_heat)
    if contour_fraction > 0:
        outline(lines, top_region(heat, contour_fraction) & painted, CONTOUR_COLOUR)
    return Layers(coloured_heat, lines)


def layer(
    heatmap: np.ndarray,
    opacity: float = 0.45,
    colormap: str = "jet",
    threshold: float = 0.0,
    contour_fraction: float = 0.0,
) -> np.ndarray:
    """The overlay as one layer: RGBA uint8 H x W x 4, ``layers`` flattened at ``opacity``."""
    return layers(heatmap, colormap, threshold, contour_fraction).at(opacity)


class LayerSettings(TypedDict, total=False):
    """``layer``'s settings, by name, for ``blend`` to pass on."""

    opacity: float
    colormap: str
    threshold: float
    contour_fraction: float


def blend(image: np.ndarray, heatmap: np.ndarray, **settings: Unpack[LayerSettings]) -> np.ndarray:
    """``image`` (uint8 H x W grey or H x W x 3 RGB) with ``layer(heatmap, **settings)`` laid over it: RGB uint8."""
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.shape[:2] != heatmap.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and heatmap {heatmap.shape[:2]} differ in size")
    return lay_on(image, layer(heatmap, **settings))


def lay_on(image: np.ndarray, rgba: np.ndarray) -> np.ndarray:
    """``image`` (uint8 H x W grey or H x W x 3 RGB) with a ``layer`` (RGBA) laid over it, stretched over the
    whole image where it is smaller (``layer_shape``) as the viewer's canvas stretches it: bilinear, with its
    colours weighted by their opacity, so that a transparent pixel's colour never tints its painted neighbour's
    edge. RGB uint8, as the reports show the layer the viewer draws."""
    rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image
    alpha = rgba[..., 3:].astype(np.float32) / 255
    weighted = np.concatenate([rgba[..., :3] * alpha, alpha], axis=-1)
    if weighted.shape[:2] != image.shape[:2]:
        weighted = cv2.resize(weighted, image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    colour, alpha = weighted[..., :3], weighted[..., 3:]
    return np.round(rgb * (1 - alpha) + colour).astype(np.uint8)


def outline(image: np.ndarray, region: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """``image`` (RGB or RGBA uint8) with the outline of ``region`` (bool, same size) drawn in ``colour``, opaque,
    in place."""
    outlines, _ = cv2.findContours(region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    opaque = (*colour, 255) if image.shape[-1] == 4 else colour
    cv2.drawContours(image, outlines, -1, opaque, max(1, round(min(image.shape[:2]) / 256)))
    return image


def colour_bar(
    colormap: str,
    ticks: list[tuple[float, str]] | tuple = PEAK_TICKS,
    threshold: float = 0.0,
    width: int = 512,
    height: int = 44,
) -> np.ndarray:
    """A horizontal legend for ``colormap``: the ramp from level 0 to 1 with its ``ticks`` labelled, and
    the part below ``threshold`` or ``PAINTED_FROM`` (left uncoloured on the overlay) greyed out and cut off
    by a line."""
    ramp_height = height // 2
    bar = np.full((height, width, 3), 255, dtype=np.uint8)
    bar[:ramp_height] = coloured(np.linspace(0, 1, width, dtype=np.float32)[None].repeat(ramp_height, 0), colormap)
    cut = round(max(threshold, PAINTED_FROM) * (width - 1))
    if cut > 0:
        bar[:ramp_height, :cut] = 200
        bar[:ramp_height, max(0, cut - 1) : cut + 1] = 0
    label_row, font, scale = height - 6, cv2.FONT_HERSHEY_SIMPLEX, ramp_height / 40
    for level, text in ticks:
        (text_width, _), _ = cv2.getTextSize(text, font, scale, 1)
        x = int(np.clip(round(level * (width - 1)) - text_width // 2, 2, width - text_width - 2))
        bar[ramp_height : ramp_height + 4, round(level * (width - 1))] = (60, 60, 60)
        cv2.putText(bar, text, (x, label_row), font, scale, (60, 60, 60), 1, cv2.LINE_AA)
    return bar


def png_bytes(image: np.ndarray) -> bytes:
    """Lossless PNG of a uint8 image, compressed lightly: at 1024 px it encodes in a few tens of ms."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
