import numpy as np
import pytest

from medattn.model import unlikeness


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
