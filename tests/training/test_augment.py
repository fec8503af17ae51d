import cv2
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


def test_a_blur_is_a_gaussian_of_the_drawn_width_and_off_it_draws_nothing():
    batch = inputs()
    blurred = draw(Augmentation(**{**NOTHING.__dict__, "blur": 1.0, "blur_sigma": (1.5, 1.5)}), batch)
    # The robustness suite's blur, OpenCV's, on the same images: MONAI's kernel is cut at 3 SD and integrates the
    # Gaussian over each pixel, so the two differ by a little.
    expected = [cv2.GaussianBlur(image[0].numpy(), (0, 0), 1.5, borderType=cv2.BORDER_REPLICATE) for image in batch]
    expected = torch.from_numpy(np.stack(expected)[:, None]).clamp(-RECIPE.mean / RECIPE.std, 0.5 / RECIPE.std)
    torch.testing.assert_close(blurred, expected, atol=0.03, rtol=0)
    assert (blurred - batch).abs().amax() > 0.5  # it did blur: edges moved far more than that
    # Off, it draws no random number: the default model's recipe is drawn as it was before blur existed.
    states = []
    for plan in (Augmentation(), Augmentation(blur_sigma=(9.0, 9.0))):
        generator = torch.Generator().manual_seed(0)
        augment(batch, RECIPE, plan, generator)
        states.append(generator.get_state())
    assert torch.equal(*states)
