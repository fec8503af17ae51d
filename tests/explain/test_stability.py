"""The map-stability check on the real default model and shipped samples."""

import numpy as np
import torch

from medattn import load_scan
from medattn.assets import synthetic_samples
from medattn.explain import EXPLAINERS
from medattn.explain.base import Explainer
from medattn.explain.stability import CHANGES, NOISE_SHARE, STABLE_FROM, changed_inputs, check_stability


class FreshNoise(Explainer):
    """A map that owes nothing to the image: new noise on every call, as an unstable map would be."""

    name, title = "noise", "Noise"

    def maps(self, model, inputs, class_index):
        return np.random.default_rng().random((inputs.shape[0], 16, 16), dtype=np.float32)


def test_the_changes_touch_only_the_image_and_are_what_they_say():
    model_input = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 1, 32, 32)).astype(np.float32))
    inner = (slice(4, 28), slice(0, 32))  # a letterbox's padding above and below
    batch = changed_inputs(model_input, inner)
    assert batch.shape == (1 + len(CHANGES), 1, 32, 32)
    torch.testing.assert_close(batch[0], model_input[0])
    for changed in batch[1:]:  # the padding is never touched
        torch.testing.assert_close(changed[:, :4], model_input[0, :, :4])
        torch.testing.assert_close(changed[:, 28:], model_input[0, :, 28:])
    image = model_input[0, 0, 4:28]
    span = float(image.max() - image.min())
    noise = (batch[1, 0, 4:28] - image).numpy()
    assert abs(noise.std() - NOISE_SHARE * span) < 0.2 * NOISE_SHARE * span
    torch.testing.assert_close(batch[2, 0, 4:28, 1:], image[:, :-1])  # one pixel across
    torch.testing.assert_close(batch[3, 0, 5:28], image[:-1])  # one pixel down
    jpeg_error = (batch[4, 0, 4:28] - image).abs()
    assert 0 < float(jpeg_error.mean()) < 0.05 * span  # re-encoded, not replaced


def test_the_models_attention_holds_and_a_map_of_fresh_noise_does_not(predictor):
    scan = load_scan(synthetic_samples()["nodule"].read_bytes())
    attention = check_stability(predictor, scan, EXPLAINERS["attention"], "nodule")
    assert attention.stable and not attention.answer_changed and set(attention.overlaps) == set(CHANGES)
    assert attention.worst >= STABLE_FROM and attention.seconds > 0
    noise = check_stability(predictor, scan, FreshNoise(), "nodule")
    assert noise.stable is False and noise.worst < 0.3
    again = check_stability(predictor, scan, EXPLAINERS["attention"], "nodule")
    assert again.overlaps == attention.overlaps  # the same noise every time: one map, one answer
