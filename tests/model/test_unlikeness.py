import cv2
import numpy as np
import pytest
import torch

from medattn.benchmark import generate_case
from medattn.model import unlikeness
from medattn.model.card import gate_scores, withheld, withholds
from medattn.model.preprocessing import Letterbox


def test_fit_sets_the_limit_so_each_held_out_group_rarely_alarms_and_far_points_do():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(8, 8))
    train = rng.normal(size=(4000, 8)) @ mixing
    near = rng.normal(size=(2000, 8)) @ mixing
    wider = 1.3 * rng.normal(size=(2000, 8)) @ mixing  # the same kind of data, more spread (a larger rendering)
    stats = unlikeness.fit_statistics(train, [near, wider])
    expected = np.percentile(unlikeness.distances(wider, stats), unlikeness.ALARM_PERCENTILE)
    assert stats.threshold == pytest.approx(expected)
    assert (unlikeness.distances(near, stats) > stats.threshold).mean() < 0.005
    assert stats.held_out_alarm_rate <= 0.005
    far = rng.normal(size=(100, 8)) @ mixing + 20 * mixing[0]
    assert (unlikeness.distances(far, stats) > stats.threshold).all()


def test_relative_noise_reads_the_noise_not_the_exposure():
    image = generate_case(31337, 0).image
    noise = np.random.default_rng(0).normal(0, 0.06, image.shape).astype(np.float32)
    plain = unlikeness.relative_noise(image)
    assert unlikeness.relative_noise(0.6 * image + 0.1) == pytest.approx(plain, rel=1e-3)  # exposure: linear
    assert unlikeness.relative_noise(cv2.GaussianBlur(image, (0, 0), 1.5)) < plain  # blur smooths
    assert unlikeness.relative_noise(image + noise) > 1.5 * plain  # on top of the grain the benchmark draws
    smooth = np.tile(np.linspace(0, 1, 128, dtype=np.float32), (128, 1))
    assert unlikeness.relative_noise(smooth) < 1e-3


def test_the_noise_is_measured_inside_the_letterbox():
    rng = np.random.default_rng(0)
    box = Letterbox.fit(64, 128, 128)  # a wide image: flat padding above and below
    inputs = torch.zeros(1, 1, 128, 128)
    inputs[0, 0][box.inner] = torch.from_numpy(rng.normal(size=(box.inner_height, box.inner_width)))
    whole, inside = unlikeness.noise_levels(inputs)[0], unlikeness.noise_levels(inputs, [box])[0]
    assert inside == pytest.approx(unlikeness.relative_noise(inputs[0, 0][box.inner].numpy()))
    assert inside > whole  # the padding's flat half would have pulled the median down


def test_the_gate_withholds_beyond_either_limit_and_on_nan():
    distances, noise = np.array([10.0, 60.0, 10.0, np.nan]), np.array([0.03, 0.03, 0.09, 0.03])
    scores = gate_scores(distances, 50.0, noise, 0.06)
    assert scores.tolist()[:3] == pytest.approx([0.5, 1.2, 1.5]) and np.isnan(scores[3])
    assert list(withholds(scores)) == [False, True, True, True]
    assert [withheld(d, 50.0, n, 0.06) for d, n in zip(distances, noise, strict=True)] == [False, True, True, True]
    assert not withheld(10.0, 50.0, 0.09, None)  # a card fitted before the noise limit gates on the distance alone
    assert list(withholds(gate_scores(distances[:3], 50.0, noise[:3], None))) == [False, True, False]
    assert not withheld(None, 50.0, None, 0.06)  # a review stored without the figures is not called withheld


def test_the_noise_limit_is_the_highest_groups_percentile():
    rng = np.random.default_rng(1)
    train, near = rng.normal(size=(2000, 4)), rng.normal(size=(500, 4))
    quiet, grainy = rng.uniform(0.02, 0.04, 500), rng.uniform(0.03, 0.06, 500)
    stats = unlikeness.fit_statistics(train, [near, near], [quiet, grainy])
    assert stats.noise_limit == pytest.approx(np.percentile(grainy, unlikeness.ALARM_PERCENTILE))
    assert stats.held_out_alarm_rate <= 0.01
    assert unlikeness.fit_statistics(train, [near]).noise_limit is None
