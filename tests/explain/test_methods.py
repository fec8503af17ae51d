import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from captum.attr import Occlusion

from medattn.benchmark import generate_case
from medattn.explain import EXPLAINERS, HIDDEN, IntegratedGradientsExplainer, OcclusionExplainer, map_of
from medattn.explain.quality import deletion_insertion, randomisation_cascade, randomisation_check, randomised_copy
from medattn.model.network import AttentionNet, ModelConfig
from medattn.model.preprocessing import Preprocessing


def model_inputs(cases) -> torch.Tensor:
    return torch.from_numpy(np.stack([Preprocessing(128).prepare(case.image)[0] for case in cases]))


def cheap(method: str):
    """The method as the app runs it, but Integrated Gradients with 8 points where a test checks what holds at any
    count (the completeness test holds the app's own count): a sixteenth of the cost."""
    return IntegratedGradientsExplainer(steps=8) if method == "integrated_gradients" else EXPLAINERS[method]


@pytest.fixture(scope="module")
def inputs():
    return model_inputs([generate_case(31, i) for i in range(6)])


@pytest.fixture(scope="module")
def effusion_inputs():
    cases = (generate_case(32, i) for i in range(100))
    return model_inputs([case for case in cases if case.labels[1]][:8])


@pytest.mark.parametrize("method", sorted(EXPLAINERS))
def test_maps_are_non_negative_on_a_grid_aligned_with_the_input(method, predictor, inputs):
    maps = cheap(method).maps(predictor.model, inputs, 0)
    grid = predictor.model.config.grid_size
    assert maps.shape in ((6, grid, grid), (6, 128, 128)) and maps.dtype == np.float32
    # Grad-CAM may be all zero where a case holds no evidence for the class; not the whole batch.
    assert (maps >= 0).all() and maps.max() > 0


class RegionSum(torch.nn.Module):
    """A network with a known answer: its one logit is the sum of the input inside ``region``."""

    def __init__(self, region: tuple[slice, slice]):
        super().__init__()
        self.region = region

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return x[:, :, self.region[0], self.region[1]].sum(dim=(1, 2, 3))[:, None], None


def test_occlusion_is_hottest_where_the_network_looks():
    region = (slice(80, 100), slice(20, 44))
    inputs = torch.rand(2, 1, 128, 128) + 1.0  # positive everywhere, so hiding any pixel lowers the sum
    maps = OcclusionExplainer().maps(RegionSum(region), inputs, 0)
    for heat in maps:
        peak = np.unravel_index(heat.argmax(), heat.shape)
        assert region[0].start <= peak[0] < region[0].stop and region[1].start <= peak[1] < region[1].stop
        assert heat[:40].max() == 0  # patches that never touch the region change nothing


def test_deletion_of_the_attended_pixels_removes_the_effusion_faster_than_random(predictor, effusion_inputs):
    model = predictor.model
    attention = EXPLAINERS["attention"].maps(model, effusion_inputs, 1)
    saliency = np.stack([np.kron(a, np.ones((4, 4), dtype=np.float32)) for a in attention])  # token grid -> input
    random_order = np.random.default_rng(0).random(saliency.shape).astype(np.float32)
    attended_deletion, _ = deletion_insertion(model, effusion_inputs, saliency, 1)
    random_deletion, _ = deletion_insertion(model, effusion_inputs, random_order, 1)
    assert attended_deletion.mean() < random_deletion.mean() - 0.1


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(EXPLAINERS))
def test_maps_change_when_the_model_is_randomised(method, predictor, effusion_inputs):
    model = predictor.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    steps = randomisation_check(model, cheap(method), effusion_inputs[:2], 1)
    assert steps[-1]["layer"] == "encoder stage 1"
    assert steps[-1]["rank_correlation"] < 0.5, steps
    if method == "attention":  # computed before the classifier head, so re-drawing the head cannot move it
        assert steps[0]["rank_correlation"] == pytest.approx(1.0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("method", sorted(EXPLAINERS))
def test_explainers_leave_the_shared_model_untouched(method, predictor, inputs):
    model = predictor.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cheap(method).maps(model, inputs[:2], 1)
    assert all(p.grad is None for p in model.parameters()) and not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    for module in model.modules():
        hooks = (module._forward_hooks, module._forward_pre_hooks, module._backward_hooks, module._backward_pre_hooks)
        assert not any(hooks), module


@pytest.mark.slow
def test_explainers_give_the_same_maps_when_run_from_many_threads(predictor, inputs):
    """One cached model serves every session: all methods at once, from 8 threads, give their lone answers."""
    few = inputs[:2]
    jobs = [(method, c) for method in sorted(EXPLAINERS) for c in range(3)] * 3
    alone = {job: cheap(job[0]).maps(predictor.model, few, job[1]) for job in set(jobs)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda job: cheap(job[0]).maps(predictor.model, few, job[1]), jobs))
    for job, maps in zip(jobs, together, strict=True):
        np.testing.assert_allclose(maps, alone[job], rtol=1e-4, atol=1e-6)


# The published definitions, written out from the papers rather than imported from the package.
CAM_DEFINITIONS = {
    # Selvaraju et al. (2017), eq. 1-2: each channel weighted by its gradient averaged over the grid.
    "gradcam": lambda gradient, activation: (gradient.mean(dim=(2, 3), keepdim=True) * activation).sum(dim=1),
    # Draelos and Carin (2020): gradient times activation element by element, summed over channels.
    "hirescam": lambda gradient, activation: (gradient * activation).sum(dim=1),
}


@pytest.mark.parametrize("method", sorted(CAM_DEFINITIONS))
def test_class_activation_maps_equal_the_hook_based_computation(method, predictor, inputs):
    """The hook-free maps match the canonical ones (activation and gradient hooks on the last stage)."""
    model, stage = predictor.model, predictor.model.encoder[-1]
    captured = {}
    forward = stage.register_forward_hook(lambda _m, _i, output: captured.update(activation=output))
    try:
        x = inputs.clone().requires_grad_(True)  # so the graph reaches the hooked activation
        logits, _ = model(x)
        (gradient,) = torch.autograd.grad(logits[:, 2].sum(), captured["activation"])
    finally:
        forward.remove()
    reference = torch.relu(CAM_DEFINITIONS[method](gradient, captured["activation"])).detach().numpy()
    np.testing.assert_allclose(EXPLAINERS[method].maps(model, inputs, 2), reference, rtol=1e-4, atol=1e-6)


class LinearHead(torch.nn.Module):
    """A network with a known answer: its one logit is linear in the features, sum(weight * features)."""

    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 4, stride=4), torch.nn.ReLU())  # (B, 4, 32, 32)
        self.weight = torch.nn.Parameter(torch.randn(4, 32, 32))

    def classify(self, features: torch.Tensor) -> tuple[torch.Tensor, None]:
        return (features * self.weight).sum(dim=(1, 2, 3))[:, None], None


def test_hirescam_shows_each_place_s_share_of_a_linear_logit():
    """Where the logit is linear in the features, HiResCAM is each place's own term of it (Draelos and Carin,
    2020), found here without any gradient; Grad-CAM's averaged weights give something else."""
    torch.manual_seed(0)
    network, inputs = LinearHead(), torch.rand(3, 1, 128, 128)
    with torch.no_grad():
        terms = (network.weight * network.encoder(inputs)).sum(dim=1)  # (B, 32, 32), summing to the logit
    expected = terms.clamp(min=0).numpy()
    np.testing.assert_allclose(EXPLAINERS["hirescam"].maps(network, inputs, 0), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(EXPLAINERS["gradcam"].maps(network, inputs, 0), expected, atol=1e-3)


def integrated_gradients_by_hand(model, inputs: torch.Tensor, class_index: int, steps: int) -> torch.Tensor:
    """Sundararajan et al. (2017), eq. 1, by Gauss-Legendre quadrature on [0, 1] from the ``HIDDEN`` image:
    (x - x') times the mean of the class logit's input gradient along the straight path, (B, channels, S, S)."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    fractions = torch.from_numpy((nodes + 1) / 2).float()[:, None, None, None, None]  # (steps, 1, 1, 1, 1)
    baseline = torch.full_like(inputs, HIDDEN)
    path = (baseline + fractions * (inputs - baseline)).flatten(0, 1).requires_grad_(True)  # (steps * B, ...)
    (gradients,) = torch.autograd.grad(model(path)[0][:, class_index].sum(), path)
    weighted = torch.from_numpy(weights / 2).float()[:, None, None, None, None] * gradients.view(steps, *inputs.shape)
    mean_gradient = weighted.sum(dim=0)  # (B, channels, S, S), the path's average gradient
    return (inputs - baseline) * mean_gradient


@pytest.mark.parametrize("class_index", [0, 1, 2])
def test_integrated_gradients_equal_the_path_integral_computed_by_hand(predictor, inputs, class_index):
    explainer = EXPLAINERS["integrated_gradients"]
    reference = integrated_gradients_by_hand(predictor.model, inputs[:2], class_index, explainer.steps)
    expected = reference.clamp(min=0).sum(dim=1).numpy()
    np.testing.assert_allclose(explainer.maps(predictor.model, inputs[:2], class_index), expected, rtol=1e-4, atol=1e-6)
    with torch.inference_mode():
        logits = predictor.model(torch.cat([inputs[:2], torch.full_like(inputs[:2], HIDDEN)]))[0][:, class_index]
    # Completeness: the attributions add up to the logit's rise from the baseline, so the steps suffice.
    np.testing.assert_allclose(reference.sum(dim=(1, 2, 3)), logits[:2] - logits[2:], rtol=0.05, atol=0.05)


def test_integrated_gradients_take_a_batch_larger_than_their_steps(predictor, inputs):
    explainer = IntegratedGradientsExplainer(steps=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Captum warns where a chunk would be smaller than the batch
        maps = explainer.maps(predictor.model, inputs, 0)  # 6 images, 4 steps
    expected = integrated_gradients_by_hand(predictor.model, inputs, 0, 4).clamp(min=0).sum(dim=1).numpy()
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)


def test_occlusion_is_the_positive_part_of_captums(predictor, inputs):
    """Same windows, strides and baseline as Captum's ``Occlusion``, on the real model. Captum keeps the
    mean fall's sign; our maps are non-negative, so we compare with its positive part."""
    explainer, model, size = OcclusionExplainer(), predictor.model, inputs.shape[-1]
    patch, stride = round(size * explainer.patch_fraction), round(size * explainer.stride_fraction)
    windows = ((size - patch) // stride + 1) ** 2
    reference = Occlusion(lambda x: model(x)[0]).attribute(
        inputs[:2],
        sliding_window_shapes=(1, patch, patch),
        strides=(1, stride, stride),
        baselines=HIDDEN,
        target=2,
        perturbations_per_eval=windows,
    )  # (2, 1, S, S)
    expected = reference.clamp(min=0)[:, 0].numpy()
    assert (reference < 0).any() and (expected > 0).any()  # both signs occur, so the clamp is tested
    np.testing.assert_allclose(explainer.maps(model, inputs[:2], 2), expected, rtol=1e-4, atol=1e-5)


def test_occlusion_refuses_an_uneven_grid(predictor, inputs):
    with pytest.raises(ValueError, match="evenly"):
        OcclusionExplainer(patch_fraction=1 / 8, stride_fraction=3 / 32).maps(predictor.model, inputs[:1], 0)


def test_the_attention_map_comes_with_the_prediction_and_every_other_map_is_computed(predictor):
    pixels = generate_case(3, 0).image
    prediction = predictor.predict(pixels)
    assert map_of(predictor, pixels, "nodule", "attention", prediction) is prediction.attention["nodule"]
    computed = map_of(predictor, pixels, "nodule", "hirescam", prediction)
    expected = predictor.explain(pixels, "nodule", EXPLAINERS["hirescam"])
    assert computed.method == "hirescam" and np.array_equal(computed.values, expected.values)


@pytest.mark.parametrize(
    "backbone, last",
    [("medattn", "encoder stage 1"), ("resnet18", "encoder conv1"), ("densenet121", "encoder conv0")],
)
def test_the_randomisation_check_redraws_every_learned_part_of_any_encoder(backbone, last):
    model = AttentionNet(ModelConfig(("a", "b"), input_size=64, backbone=backbone)).eval()
    with torch.no_grad():  # as if trained: no parameter left at a value re-initialising could draw again
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter))
    trained = {name: value.clone() for name, value in model.named_parameters()}
    redrawn = dict(randomised_copy(model).named_parameters())
    assert [name for name, value in trained.items() if torch.equal(redrawn[name], value)] == []
    steps = randomisation_check(model, EXPLAINERS["attention"], torch.rand(2, 1, 64, 64), 0)
    assert steps[-1]["layer"] == last and len(steps) == len(randomisation_cascade(model))
