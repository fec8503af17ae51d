import numpy as np
import torch

from medattn.benchmark import generate_case
from medattn.explain.base import HIDDEN
from medattn.model.preprocessing import Preprocessing
from medattn.training.augment import Augmentation, augment

RECIPE = Preprocessing(128)
NOTHING = Augmentation(
    mirror=0.0, rotation_degrees=0.0, scale=(1.0, 1.0), translation=0.0, gamma=(1.0, 1.0), noise=0.0,
    collimation=0.0, hidden_region=0.0,
)  # fmt: skip


def inputs(count: int = 8) -> torch.Tensor:
    return torch.from_numpy(np.stack([RECIPE.prepare(generate_case(5, i).image)[0] for i in range(count)]))


def draw(plan: Augmentation, batch: torch.Tensor) -> torch.Tensor:
    return augment(batch, RECIPE, plan, torch.Generator().manual_seed(0))[0]


def test_a_plan_that_changes_nothing_returns_the_inputs():
    batch = inputs()
    torch.testing.assert_close(draw(NOTHING, batch), batch.clamp(-RECIPE.mean / RECIPE.std, 0.5 / RECIPE.std))


def test_mirroring_flips_left_and_right():
    batch = inputs()
    mirrored = draw(Augmentation(**{**NOTHING.__dict__, "mirror": 1.0}), batch)
    torch.testing.assert_close(mirrored, batch.flip(-1).clamp(-2, 2), atol=1e-5, rtol=0)


def test_hidden_regions_take_the_grey_every_method_hides_with():
    batch = inputs(32)
    hidden = draw(Augmentation(**{**NOTHING.__dict__, "hidden_region": 1.0, "hidden_side": (0.2, 0.2)}), batch)
    changed = (hidden != batch.clamp(-2, 2)).flatten(1).any(dim=1)
    assert changed.all()
    assert ((hidden == HIDDEN).flatten(1).float().mean(dim=1) >= 0.04).all()  # at least one 25 px square


def test_the_same_generator_draws_the_same_batch_and_the_defaults_change_every_image():
    batch = inputs()
    first, second = draw(Augmentation(), batch), draw(Augmentation(), batch)
    torch.testing.assert_close(first, second)
    assert ((first - batch).abs().flatten(1).amax(dim=1) > 0.1).all()
    assert first.shape == batch.shape and first.dtype == batch.dtype
