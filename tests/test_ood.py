import numpy as np
import pytest

from medattn import ood


def test_fit_sets_the_limit_so_each_held_out_group_rarely_alarms_and_far_points_do():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(8, 8))
    train = rng.normal(size=(4000, 8)) @ mixing
    near = rng.normal(size=(2000, 8)) @ mixing
    wider = 1.3 * rng.normal(size=(2000, 8)) @ mixing  # the same kind of data, more spread (a larger rendering)
    entry = ood.fit(train, [near, wider])
    assert entry["threshold"] == pytest.approx(np.percentile(ood.distances(wider, entry), ood.ALARM_PERCENTILE))
    assert (ood.distances(near, entry) > entry["threshold"]).mean() < 0.005
    assert entry["held_out_alarm_rate"] <= 0.005
    far = rng.normal(size=(100, 8)) @ mixing + 20 * mixing[0]
    assert (ood.distances(far, entry) > entry["threshold"]).all()
