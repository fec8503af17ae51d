import numpy as np
import pytest
import torch

from medattn import Predictor
from medattn.errors import TrainingError
from medattn.explain import EXPLAINERS
from medattn.model.checkpoint import save_model
from medattn.model.network import AttentionNet, ModelConfig
from medattn.training.datasets import open_dataset, synthetic
from medattn.training.evaluate import evaluate
from medattn.training.train import (
    TrainConfig,
    attention_mask_loss,
    attention_overlap,
    classification_loss,
    train,
)
from tests.training.test_datasets import write_medmnist

TINY_WIDTHS = (4, 8, 8, 8)


def test_tiny_synthetic_run_produces_a_loadable_calibrated_model(tmp_path):
    model_config = ModelConfig(classes=("nodule", "effusion", "cardiomegaly"), input_size=64, widths=TINY_WIDTHS)
    config = TrainConfig(epochs=1, batch_size=32)
    model, card = train(config, synthetic(0, 96, 64), synthetic(1, 48, 64), model_config)
    assert len(card.thresholds) == len(card.temperature) == 3
    assert card.training.history[0].epoch == 1 and card.task == "multi-label"

    metrics = evaluate(model, card, synthetic(2, 40, 64), explain_cases=3)
    methods = metrics["explanations"]["methods"]
    assert set(methods) == set(EXPLAINERS)
    for quality in methods.values():
        for key in ("pointing_game", "mass_in_mask", "top_region_iou", "deletion_auc", "insertion_auc"):
            assert 0.0 <= quality["overall"][key] <= 1.0
        assert quality["randomisation"][0]["layer"] == "classifier head"
    random_order = metrics["explanations"]["random_order"]
    assert set(random_order["per_class"]) == {"nodule", "effusion", "cardiomegaly"}
    assert all(0.0 <= random_order["overall"][key] <= 1.0 for key in ("deletion_auc", "insertion_auc"))
    confusion = metrics["per_class"]["nodule"]["confusion"]
    assert sum(confusion.values()) == 40

    save_model(model, card, tmp_path)
    prediction = Predictor.load(tmp_path).predict(np.zeros((70, 90), dtype=np.uint8))
    assert set(prediction.probabilities) == {"nodule", "effusion", "cardiomegaly"}
    assert prediction.attention["nodule"].values.shape == (70, 90)


def test_warmup_trains_only_the_named_classes_first():
    model_config = ModelConfig(classes=("nodule", "effusion", "cardiomegaly"), input_size=64, widths=TINY_WIDTHS)
    config = TrainConfig(epochs=2, batch_size=32, warmup_classes=("nodule",), warmup_epochs=1)
    torch.manual_seed(0)
    _, card = train(config, synthetic(0, 64, 64), synthetic(1, 32, 64), model_config)
    assert card.training.warmup_classes == ("nodule",) and card.training.warmup_epochs == 1
    assert len(card.training.history) == 2
    with pytest.raises(TrainingError, match=r"Warm-up needs multi-label classes of this model .*: give --warmup"):
        train(TrainConfig(epochs=1, warmup_classes=("fracture",), warmup_epochs=1), synthetic(0, 8, 64),
              synthetic(1, 8, 64), model_config)  # fmt: skip


def test_warmup_leaves_the_other_classes_untouched():
    """During warm-up the other classes' queries and read-outs get no gradient at all."""
    model_config = ModelConfig(classes=("nodule", "effusion", "cardiomegaly"), input_size=64, widths=TINY_WIDTHS)
    torch.manual_seed(0)
    reference = AttentionNet(model_config)
    config = TrainConfig(epochs=1, batch_size=32, warmup_classes=("nodule",), warmup_epochs=1)
    torch.manual_seed(0)
    model, _ = train(config, synthetic(0, 64, 64), synthetic(1, 32, 64), model_config)
    # The read-outs start at zero and must still be zero; the queries may only shrink (weight decay).
    assert model.head_weight[1:].abs().sum() == 0 and model.head_weight[0].abs().sum() > 0
    before, after = reference.pool.queries[1:], model.pool.queries[1:]
    torch.testing.assert_close(after / after.norm(), before / before.norm(), atol=1e-6, rtol=0)
    assert not torch.allclose(reference.pool.queries[0], model.pool.queries[0])


def test_multi_class_colour_run_from_a_medmnist_file(tmp_path):
    path = tmp_path / "bloodmnist.npz"
    write_medmnist(path, {"train": [[i % 3] for i in range(60)], "val": [[i % 3] for i in range(24)], "test": [[0]]})
    data = np.load(path)
    np.savez(path, **{k: np.repeat(v[..., None], 3, axis=-1) if k.endswith("images") else v for k, v in data.items()})
    train_set, val_set = open_dataset(path, "train"), open_dataset(path, "val")
    model_config = ModelConfig(train_set.classes, in_channels=3, input_size=32, widths=TINY_WIDTHS)
    model, card = train(TrainConfig(epochs=1, batch_size=16), train_set, val_set, model_config)
    assert card.task == "multi-class" and len(card.temperature) == 1 and card.thresholds == ()
    save_model(model, card, tmp_path / "model")
    prediction = Predictor.load(tmp_path / "model").predict(train_set.images[0])
    assert len(prediction.labels) == 1 and prediction.thresholds == {}
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)


def test_attention_overlap_is_0_for_findings_looking_apart_and_1_for_findings_looking_alike():
    both = torch.ones(1, 2)
    apart = torch.zeros(1, 2, 4, 4)
    apart[0, 0, 0, 0] = apart[0, 1, 3, 3] = 1.0
    assert attention_overlap(apart, both).item() == pytest.approx(0.0, abs=1e-3)
    alike = torch.full((1, 2, 4, 4), 1 / 16)
    assert attention_overlap(alike, both).item() == pytest.approx(1.0)
    half = apart.clone()
    half[0, 1] = 0
    half[0, 1, 0, 0] = half[0, 1, 3, 3] = 0.5  # half its weight where the first one looks
    assert attention_overlap(half, both).item() == pytest.approx(0.5**0.5, abs=1e-3)
    assert attention_overlap(alike, torch.tensor([[1.0, 0.0]])).item() == 0.0  # only findings both present count


def test_the_attention_mask_loss_is_least_when_the_attention_spreads_over_the_mask_alone():
    masks = torch.zeros(1, 2, 4, 4)
    masks[0, 0, 1:3, 1:3] = 1.0  # four tokens
    present = torch.tensor([[True, False]])  # the second finding is absent: its attention is free
    on_mask = masks / 4
    uniform = torch.full((1, 2, 4, 4), 1 / 16)
    elsewhere = torch.full((1, 2, 4, 4), 0.9 / 12)
    elsewhere[0, 0, 1:3, 1:3] = 0.1 / 4
    losses = [attention_mask_loss(a, masks, present).item() for a in (on_mask, uniform, elsewhere)]
    assert losses[0] == pytest.approx(np.log(4), abs=1e-5)  # the mask's own entropy: nothing lower is possible
    assert losses[0] < losses[1] < losses[2]
    assert attention_mask_loss(uniform, masks, torch.tensor([[False, True]])).item() == 0.0  # no mask, no pull


def test_label_smoothing_stops_the_loss_from_pushing_logits_without_bound():
    """Smoothed by eps, a present finding's loss is least at logit log((1 - eps/2) / (eps/2)), not at infinity, so
    a model that separates its data keeps probabilities a hidden region can still move."""
    labels = torch.tensor([[1.0, 0.0]])
    logits = torch.linspace(0, 12, 241)[:, None] * torch.tensor([[1.0, -1.0]])  # (241, 2): ever surer, both right
    for eps, best in ((0.0, 12.0), (0.05, np.log(0.975 / 0.025))):
        losses = torch.stack([classification_loss(row[None], labels, "multi-label", smoothing=eps) for row in logits])
        assert logits[losses.argmin(), 0].item() == pytest.approx(best, abs=0.05)
    one_class = torch.tensor([[0.0, 1.0]])  # multi-class: torch's own smoothing
    loss = classification_loss(torch.tensor([[0.0, 30.0]]), one_class, "multi-class", smoothing=0.1)
    assert loss > classification_loss(torch.tensor([[0.0, 30.0]]), one_class, "multi-class")


def test_augmentation_moves_the_masks_with_the_image_and_draws_the_images_as_without_them():
    from medattn.model.preprocessing import Preprocessing
    from medattn.training.augment import Augmentation, augment

    recipe = Preprocessing(128)
    cases = synthetic(5, 4)
    images = torch.from_numpy(np.stack([recipe.prepare(image)[0] for image in cases.images]))
    masks = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(cases.masks).float(), 32)
    plan = Augmentation(mirror=1.0, rotation_degrees=0.0, scale=(1.0, 1.0), translation=0.0)
    drawn, moved = augment(images, recipe, plan, torch.Generator().manual_seed(0), masks)
    alone, _ = augment(images, recipe, plan, torch.Generator().manual_seed(0))
    torch.testing.assert_close(drawn, alone)
    torch.testing.assert_close(moved, masks.flip(-1), atol=1e-5, rtol=0)


def test_mixed_precision_follows_the_float32_run_and_keeps_float32_weights():
    model_config = ModelConfig(classes=("nodule", "effusion", "cardiomegaly"), input_size=64, widths=TINY_WIDTHS)
    data = synthetic(0, 128, 64), synthetic(1, 32, 64)
    _, full = train(TrainConfig(epochs=2, batch_size=32), *data, model_config)
    model, mixed = train(TrainConfig(epochs=2, batch_size=32, mixed_precision=True), *data, model_config)
    assert mixed.training.mixed_precision and not full.training.mixed_precision and mixed.training.device == "cpu"
    assert all(parameter.dtype == torch.float32 for parameter in model.parameters())
    losses = [[epoch.train_loss for epoch in card.training.history] for card in (full, mixed)]
    # bfloat16 keeps 8 bits of mantissa: measured 1.00148 / 0.95782 against 1.00152 / 0.95803 on 256 cases.
    assert losses[1] != losses[0] and losses[1] == pytest.approx(losses[0], rel=0.01)
