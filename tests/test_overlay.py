import numpy as np
import pytest

from medattn.overlay import blend


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
