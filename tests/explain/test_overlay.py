import numpy as np
import pytest

from medattn.explain.overlay import COLORMAPS, CONTOUR_COLOUR, blend, colour_bar


def test_blend_colours_only_where_heat_passes_the_threshold():
    image = np.full((20, 30), 100, dtype=np.uint8)
    heatmap = np.zeros((20, 30), dtype=np.float32)
    heatmap[5:10, 5:10] = 1.0
    out = blend(image, heatmap, opacity=0.6, threshold=0.5)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert (out[0, 0] == 100).all()
    assert not (out[7, 7] == 100).all()


def test_zero_opacity_leaves_the_image_unchanged():
    image = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(blend(image, np.random.default_rng(1).random((8, 8)), opacity=0.0), image)


@pytest.mark.parametrize(
    "image, heatmap, kwargs, message",
    [
        (np.zeros((4, 4)), np.zeros((4, 4)), {}, "must be uint8"),
        (np.zeros((4, 4), np.uint8), np.zeros((5, 4)), {}, "differ in size"),
        (np.zeros((4, 4), np.uint8), np.zeros((4, 4)), {"opacity": 2.0}, "opacity"),
        (np.zeros((4, 4), np.uint8), np.zeros((4, 4)), {"colormap": "rainbow"}, "unknown colormap"),
    ],
)
def test_bad_inputs_are_named(image, heatmap, kwargs, message):
    with pytest.raises(ValueError, match=message):
        blend(image, heatmap, **kwargs)


def test_contour_outlines_the_hottest_region():
    image = np.full((64, 64), 50, dtype=np.uint8)
    heatmap = np.zeros((64, 64), dtype=np.float32)
    heatmap[20:36, 30:46] = 1.0  # 256 pixels: a sixteenth of the image
    out = blend(image, heatmap, opacity=0.0, contour_fraction=256 / 64**2)
    outlined = (out == CONTOUR_COLOUR).all(axis=2)
    rows, cols = np.nonzero(outlined)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (20, 35, 30, 45)
    assert not outlined[24:32, 34:42].any()  # an outline, not a fill
    assert (out[~outlined] == 50).all()


@pytest.mark.parametrize("colormap", sorted(COLORMAPS))
def test_colour_bar_runs_from_the_lowest_to_the_highest_overlay_colour(colormap):
    bar = colour_bar(colormap, width=300, height=40)
    assert bar.shape == (40, 300, 3) and bar.dtype == np.uint8
    ramp = np.linspace(0, 1, 300, dtype=np.float32)[None]
    # The legend's colours are the overlay's own: a pixel at full opacity shows exactly the bar's colour.
    np.testing.assert_array_equal(bar[0], blend(np.zeros((1, 300), np.uint8), ramp, opacity=1.0, colormap=colormap)[0])
    assert (bar[-12:] < 255).any()  # the labels
