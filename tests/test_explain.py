from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from medattn.explain import EXPLAINERS
from medattn.preprocess import prepare


@pytest.fixture(scope="module")
def inputs():
    from medattn.data import generate_case

    return torch.from_numpy(np.stack([prepare(generate_case(31, i).image, 128)[0] for i in range(6)]))


@pytest.mark.parametrize("method", sorted(EXPLAINERS))
def test_maps_are_non_negative_on_the_token_grid(method, predictor, inputs):
    maps = EXPLAINERS[method].maps(predictor.model, inputs, 0)
    grid = predictor.model.config.grid_size
    assert maps.shape == (6, grid, grid) and maps.dtype == np.float32
    # Grad-CAM may be all zero where a case holds no evidence for the class; not the whole batch.
    assert (maps >= 0).all() and maps.max() > 0


def test_gradcam_leaves_the_shared_model_untouched(predictor, inputs):
    before = {k: v.clone() for k, v in predictor.model.state_dict().items()}
    EXPLAINERS["gradcam"].maps(predictor.model, inputs, 1)
    assert all(p.grad is None for p in predictor.model.parameters())
    assert all(torch.equal(before[k], v) for k, v in predictor.model.state_dict().items())
    assert not predictor.model._forward_hooks and not predictor.model.encoder[-1]._forward_hooks


def test_explainers_give_the_same_maps_when_run_from_many_threads(predictor, inputs):
    jobs = [(method, c) for method in sorted(EXPLAINERS) for c in range(3)] * 4
    alone = {job: EXPLAINERS[job[0]].maps(predictor.model, inputs, job[1]) for job in set(jobs)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda job: EXPLAINERS[job[0]].maps(predictor.model, inputs, job[1]), jobs))
    for job, maps in zip(jobs, together, strict=True):
        np.testing.assert_allclose(maps, alone[job], rtol=1e-4, atol=1e-6)


def test_gradcam_equals_the_hook_based_computation(predictor, inputs):
    """The hook-free Grad-CAM matches the canonical one (activation and gradient hooks on the last stage)."""
    model, stage = predictor.model, predictor.model.encoder[-1]
    captured = {}
    forward = stage.register_forward_hook(lambda _m, _i, output: captured.update(activation=output))
    try:
        x = inputs.clone().requires_grad_(True)  # so the graph reaches the hooked activation
        logits, _ = model(x)
        (gradient,) = torch.autograd.grad(logits[:, 2].sum(), captured["activation"])
    finally:
        forward.remove()
    weights = gradient.mean(dim=(2, 3), keepdim=True)
    reference = torch.relu((weights * captured["activation"]).sum(dim=1)).detach().numpy()
    np.testing.assert_allclose(EXPLAINERS["gradcam"].maps(model, inputs, 2), reference, rtol=1e-4, atol=1e-6)
