import numpy as np
import pytest

from medattn.model.preprocessing import Letterbox, Preprocessing

DEFAULT = Preprocessing()


@pytest.mark.parametrize("height, width", [(1955, 1841), (1841, 1955), (300, 1200), (128, 128), (50, 70)])
def test_a_map_on_the_model_input_lands_on_the_same_anatomy(height, width):
    """A bright square drawn on the original must come back onto itself through the letterbox."""
    image = np.zeros((height, width), dtype=np.uint16)
    top, left = int(height * 0.6), int(width * 0.2)
    bottom, right = top + max(4, height // 5), left + max(4, width // 5)
    image[top:bottom, left:right] = 4000
    model_input, box = DEFAULT.prepare(image)
    assert model_input.shape == (1, 128, 128)
    heat = (model_input[0] * DEFAULT.std + DEFAULT.mean > 0.5).astype(np.float32)  # the square, seen by the model
    back = box.to_original(heat) > 0.5
    truth = image > 0
    assert back.shape == truth.shape
    # An offset or scale error moves the region by whole model pixels; allow half of one.
    model_pixel = max(height, width) / 128
    centroid_error = np.abs(np.argwhere(back).mean(axis=0) - np.argwhere(truth).mean(axis=0))
    assert centroid_error.max() < 0.5 * model_pixel
    assert (back & truth).sum() / (back | truth).sum() > 0.7


def test_letterbox_pads_the_short_side_symmetrically():
    box = Letterbox.fit(height=100, width=200, size=128)
    assert (box.inner_height, box.inner_width) == (64, 128)
    assert (box.top, box.left) == (32, 0)


@pytest.mark.parametrize(
    "image",
    [
        np.random.default_rng(0).integers(0, 255, (40, 30), dtype=np.uint8),
        np.random.default_rng(0).normal(100, 20, (40, 30)),
        np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8),
        np.random.default_rng(0).integers(0, 255, (40, 30, 4), dtype=np.uint8),
        np.full((40, 30), 7.0),
    ],
)
def test_any_dtype_and_channel_count_becomes_a_finite_square_input(image):
    for channels in (1, 3):
        model_input, _ = Preprocessing(64, channels).prepare(image)
        assert model_input.shape == (channels, 64, 64) and model_input.dtype == np.float32
        assert np.isfinite(model_input).all()


def test_colour_input_keeps_its_channels_apart():
    image = np.zeros((20, 20, 3), dtype=np.uint8)
    image[..., 0] = 255
    model_input, _ = Preprocessing(20, channels=3).prepare(image)
    assert model_input[0].mean() > model_input[1].mean() == model_input[2].mean()


def test_nan_and_inf_pixels_do_not_poison_the_input():
    image = np.random.default_rng(0).normal(size=(32, 32))
    image[0, :5] = [np.nan, np.inf, -np.inf, np.nan, np.inf]
    assert np.isfinite(Preprocessing(32).prepare(image)[0]).all()


def test_the_recipe_in_the_card_decides_the_intensity_stretch():
    """A model trained with another recipe is fed with that recipe: the percentiles and normalisation move."""
    image = np.arange(10_000, dtype=np.float32).reshape(100, 100)
    default, _ = Preprocessing(100).prepare(image)
    narrow, _ = Preprocessing(100, low_percentile=25, high_percentile=75, mean=0.0, std=1.0).prepare(image)
    assert default.min() == pytest.approx((0 - 0.5) / 0.25) and default.max() == pytest.approx((1 - 0.5) / 0.25)
    assert (narrow == 0.0).mean() == pytest.approx(0.25, abs=0.01)  # the darkest quarter clipped to 0
    assert (narrow == 1.0).mean() == pytest.approx(0.25, abs=0.01)
