import numpy as np
import pytest

from medattn.explain.overlay import (
    ATTENTION_SCALE_TOP,
    COLORMAPS,
    CONTOUR_COLOUR,
    PAINTED_FROM,
    attention_levels,
    blend,
    colour_bar,
    lay_on,
    layer,
    layer_shape,
    layers,
)


def test_blend_colours_only_where_heat_passes_the_threshold():
    image = np.full((20, 30), 100, dtype=np.uint8)
    heatmap = np.zeros((20, 30), dtype=np.float32)
    heatmap[5:10, 5:10] = 1.0
    out = blend(image, heatmap, opacity=0.6, threshold=0.5)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert (out[0, 0] == 100).all()
    assert not (out[7, 7] == 100).all()


def test_the_faint_heat_of_a_peak_scaled_map_leaves_the_scan_uncoloured():
    """HiResCAM, Integrated Gradients and occlusion painted level 0 dark blue over the whole scan."""
    image = np.full((20, 30), 100, dtype=np.uint8)
    heatmap = np.full((20, 30), 0.01, dtype=np.float32)  # faint heat everywhere, as a gradient map holds
    heatmap[5:10, 5:10] = 1.0
    out = blend(image, heatmap, opacity=0.6)
    assert (out[0, 0] == 100).all() and not (out[7, 7] == 100).all()
    bar = colour_bar("jet")
    assert (bar[0, 5] == 200).all() and not (bar[0, 40] == 200).all()  # the legend greys what is not painted


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


def test_an_outline_wider_than_the_painted_heat_draws_no_false_line():
    """'Outline the hottest 5%' above a threshold once drew a white band along the image's bottom edge: the
    quota was filled with tied zero-level pixels, taken from the last rows by a stable sort."""
    image = np.full((64, 64), 50, dtype=np.uint8)
    heatmap = np.zeros((64, 64), dtype=np.float32)
    heatmap[10:14, 10:14] = 1.0  # 16 pixels painted; the outline asks for 5% (205)
    heatmap[30:34, 40:44] = 0.2  # heat below the threshold: not painted, not outlined
    out = blend(image, heatmap, opacity=0.0, threshold=0.3, contour_fraction=0.05)
    rows, cols = np.nonzero((out == CONTOUR_COLOUR).all(axis=2))
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (10, 13, 10, 13)


@pytest.mark.parametrize("colormap", sorted(COLORMAPS))
def test_colour_bar_runs_from_the_lowest_to_the_highest_overlay_colour(colormap):
    bar = colour_bar(colormap, width=300, height=40)
    assert bar.shape == (40, 300, 3) and bar.dtype == np.uint8
    ramp = np.linspace(0, 1, 300, dtype=np.float32)[None]
    # The legend's colours are the overlay's own: a pixel at full opacity shows exactly the bar's colour.
    overlay = blend(np.zeros((1, 300), np.uint8), ramp, opacity=1.0, colormap=colormap)[0]
    cut = round(PAINTED_FROM * 299)
    np.testing.assert_array_equal(bar[0, cut + 1 :], overlay[cut + 1 :])
    assert (overlay[:cut] == 0).all()  # the faintest levels are left clear on the overlay, and greyed on the bar
    assert (bar[0, : cut - 1] == 200).all()
    assert (bar[-12:] < 255).any()  # the labels


def test_attention_levels_sit_on_one_fixed_log_scale_from_uniform_to_its_top():
    times_uniform = np.array([0.2, 1.0, np.sqrt(ATTENTION_SCALE_TOP), ATTENTION_SCALE_TOP, 5000.0, np.nan])
    np.testing.assert_allclose(attention_levels(times_uniform), [0, 0, 0.5, 1, 1, 0], atol=1e-6)


def test_the_colour_bar_greys_out_what_the_threshold_hides():
    bar = colour_bar("viridis", threshold=0.5, width=200, height=40)
    assert (bar[0, :90] == 200).all()  # hidden: grey
    assert (bar[0, 101:] != 200).any(axis=-1).all()  # shown: the colour map
    assert (bar[0, 99:101] == 0).all()  # the cut


@pytest.mark.parametrize(
    ("image_shape", "expected"),
    [((1955, 1841), (1024, 964)), ((1841, 1955, 3), (964, 1024)), ((512, 512), (512, 512)), ((64, 30), (64, 30))],
)
def test_the_layer_is_the_images_size_up_to_a_bound_with_its_aspect_kept(image_shape, expected):
    assert layer_shape(image_shape) == expected


def test_a_smaller_layer_is_stretched_over_the_image_and_a_transparent_colour_never_tints_the_edge():
    """As the viewer's canvas draws it: bilinear, colours weighted by their opacity."""
    image = np.full((4, 8), 100, np.uint8)
    rgba = np.zeros((2, 4, 4), np.uint8)
    rgba[:, :2] = (255, 0, 0, 255)  # painted red on the left
    rgba[:, 2:] = (0, 0, 255, 0)  # transparent, whatever its colour, on the right
    shown = lay_on(image, rgba)
    assert shown.shape == (4, 8, 3)
    assert (shown[:, :3] == (255, 0, 0)).all() and (shown[:, 5:] == 100).all()
    edge = shown[:, 3:5]
    assert (edge[..., 0] > 100).all() and (edge[..., 2] == edge[..., 1]).all()  # red over grey, no blue in it
    full = np.repeat(np.repeat(rgba, 2, axis=0), 2, axis=1)
    assert (lay_on(image, full)[:, :4] == (255, 0, 0)).all()  # at the image's size, as it always was


def test_the_viewers_two_layers_flatten_to_the_one_layer_reports_lay_on():
    """The viewer lays the heat on at the reader's opacity and the outlines opaque over it; ``at`` does the same."""
    heatmap = np.random.default_rng(2).random((48, 64)).astype(np.float32)
    two = layers(heatmap, "inferno", threshold=0.3, contour_fraction=0.1)
    assert set(np.unique(two.heat[..., 3])) == {0, 255}  # opaque where painted: the viewer applies the opacity
    assert set(np.unique(two.lines[..., 3])) == {0, 255} and (two.lines[two.lines[..., 3] > 0][:, :3] == 255).all()
    for opacity in (0.0, 0.45, 1.0):
        flat = two.at(opacity)
        np.testing.assert_array_equal(flat, layer(heatmap, opacity, "inferno", threshold=0.3, contour_fraction=0.1))
        lined = two.lines[..., 3] > 0
        assert (flat[lined] == two.lines[lined]).all()  # outlines stay opaque at any opacity
        painted = (two.heat[..., 3] > 0) & ~lined
        assert (flat[painted][:, 3] == round(opacity * 255)).all() and (flat[~painted & ~lined][:, 3] == 0).all()
    with pytest.raises(ValueError, match="opacity"):
        two.at(1.2)
