"""Training and calibration on the synthetic benchmark or any ``LabelledImages``: a model and its card."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from medattn.errors import TrainingError
from medattn.model import calibration
from medattn.model.backbones import load_encoder_weights
from medattn.model.calibration import MULTI_CLASS
from medattn.model.card import Architecture, ModelCard
from medattn.model.checkpoint import count_parameters
from medattn.model.figures import Training, from_json
from medattn.model.network import AttentionNet, ModelConfig
from medattn.model.preprocessing import Preprocessing
from medattn.training import progress
from medattn.training.augment import Augmentation, augment
from medattn.training.datasets import LabelledImages
from medattn.training.distributed import Context, gathered, mean_over_ranks, share_buffers
from medattn.training.evaluate import macro_auc, run_model
from medattn.training.inputs import ModelInputs

log = logging.getLogger(__name__)

INTENDED_USE = (
    "Demonstration only. Trained on medattn's synthetic chest radiographs, never on real patients: "
    "its findings on a real scan are not meaningful, however confident they look."
)
DISPLAY_NAMES = {"nodule": "Pulmonary nodule", "effusion": "Pleural effusion", "cardiomegaly": "Cardiomegaly"}


@dataclass
class TrainConfig:
    seed: int = 0
    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    # Weight of the multiple-instance loss on the best single token's score (needs no masks).
    max_token_weight: float = 0.5
    # Curriculum: these classes are trained alone for the first ``warmup_epochs``. Small findings
    # (nodules) were never learned when large ones (effusion, cardiomegaly) shaped the encoder
    # from the first step, yet are learned within ~150 steps on their own, and then kept.
    warmup_classes: tuple[str, ...] = ()
    warmup_epochs: int = 0
    # Weight of a penalty on two findings present in one image sharing attention (their Bhattacharyya
    # coefficient), after warm-up: each class query should look at its own evidence, not at another finding.
    attention_overlap_weight: float = 0.0
    # After warm-up, each batch is drawn afresh through these shifts (``medattn.training.augment``); None trains
    # on the inputs as given. From the first step, it kept nodules from being learned at all (AUC 0.50 after
    # two warm-up epochs, against about 0.97 without it).
    augmentation: Augmentation | None = None
    # Attention supervision: on ``attention_mask_share`` of the training cases (a fixed draw, where the data has
    # masks), the cross-entropy of each present finding's attention against its mask spread evenly over the
    # tokens it covers, with this weight, after warm-up. 0 trains without masks, as a real dataset must.
    attention_mask_weight: float = 0.0
    attention_mask_share: float = 0.25
    # Label smoothing: multi-label targets pulled from 0 and 1 to eps/2 and 1 - eps/2 (multi-class: torch's own).
    # Without it a model that separates the benchmark drives its logits without bound, and probabilities
    # beyond 99.99% leave the faithfulness check nothing to see move (docs/model.md, "The default model").
    label_smoothing: float = 0.0
    # Mixed precision: the forward pass and the losses in bfloat16 under torch.autocast, the weights in float32.
    mixed_precision: bool = False
    # Pretrained weights for a MONAI backbone's encoder, a safetensors file (medattn.model.backbones); None: random.
    encoder_weights: str | None = None


def classification_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    task: str,
    class_weights: torch.Tensor | None = None,
    smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy (multi-class) or mean binary cross-entropy over the weighted classes (multi-label), against
    labels smoothed by ``smoothing``."""
    if task == MULTI_CLASS:
        return F.cross_entropy(logits, labels.argmax(dim=1), label_smoothing=smoothing)
    labels = labels * (1 - smoothing) + smoothing / 2
    if class_weights is None:
        return F.binary_cross_entropy_with_logits(logits, labels)
    per_class = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(dim=0)  # (C,)
    return (per_class * class_weights).sum() / class_weights.sum()


def attention_overlap(attention: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean Bhattacharyya coefficient between the attention (B, C, h, w) of two different findings present
    in the same image (labels (B, C)): 0 when they look at different tokens, 1 when they look alike."""
    root = (attention.flatten(2) + 1e-8).sqrt()  # (B, C, N); without the 1e-8, a weight of 0 has no gradient but NaN
    shared = root @ root.transpose(1, 2)  # (B, C, N) x (B, N, C) -> (B, C, C)
    present = labels > 0.5
    others = ~torch.eye(shared.shape[1], dtype=torch.bool, device=shared.device)  # (C, C), on the GPU too
    pairs = present[:, :, None] & present[:, None, :] & others  # (B, C, C)
    return shared[pairs].sum() / pairs.sum().clamp_min(1)


def attention_mask_loss(attention: torch.Tensor, masks: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the attention (B, C, h, w) against each mask (B, C, h, w; the share of each token the
    finding covers) normalised to a distribution, over the (image, finding) pairs ``present`` (B, C) marks."""
    mass = masks.flatten(2).sum(dim=2)  # (B, C)
    pairs = present & (mass > 0)
    target = masks.flatten(2)[pairs] / mass[pairs][:, None]  # (P, N)
    return -(target * (attention.flatten(2)[pairs] + 1e-8).log()).sum(dim=1).sum() / pairs.sum().clamp_min(1)


def epoch_order(epoch: int, count: int, config: TrainConfig, context: Context, generator: torch.Generator):
    """This process's sample order for one epoch.

    Under torchrun a DistributedSampler gives rank r the positions r, r + N, r + 2N… of one shared
    permutation, so at every step the N ranks' batches together are exactly the batch one process would
    take from that permutation. A plain single-process run keeps its original sampler, so the committed
    default model still reproduces bit for bit.
    """
    if not context.distributed:
        return torch.randperm(count, generator=generator)
    sampler = DistributedSampler(
        range(count), context.world_size, context.rank, shuffle=True, seed=config.seed, drop_last=True
    )
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler))


def train(
    config: TrainConfig,
    train_set: LabelledImages,
    val_set: LabelledImages,
    model_config: ModelConfig,
    context: Context | None = None,
    recipe: Preprocessing | None = None,
    workers: int = 0,
    checkpoint: Path | None = None,
) -> tuple[AttentionNet, ModelCard]:
    """Train, keep the best validation epoch, calibrate on validation; return the model and its card.

    ``recipe`` is the intensity recipe the card will carry (the default one if None); its input size and
    channels must be the network's. With a distributed ``context`` (torchrun), each process trains on its
    shard of every batch under DistributedDataParallel; ``config.batch_size`` stays the global batch size.
    Image files are decoded batch by batch, by ``workers`` processes (``medattn.training.inputs``).
    ``checkpoint``: the run's progress is written there after every epoch, and a run given one that exists
    resumes from it (``medattn.training.progress``).
    """
    context = context or Context()
    recipe = recipe or Preprocessing(model_config.input_size, model_config.in_channels)
    if (recipe.input_size, recipe.channels) != (model_config.input_size, model_config.in_channels):
        raise TrainingError(
            f"The recipe's input ({recipe.input_size} px, {recipe.channels} channels) is not the network's "
            f"({model_config.input_size} px, {model_config.in_channels}): give the network the recipe's size."
        )
    if recipe.input_size % model_config.stride:
        raise TrainingError(
            f"The input size {recipe.input_size} px is not a multiple of the {model_config.backbone} encoder's "
            f"{model_config.stride} px tokens: give an --input-size that is."
        )
    if config.batch_size % context.world_size:
        raise TrainingError(
            f"The batch size {config.batch_size} does not split over {context.world_size} processes: give a "
            f"--batch-size that is a multiple of {context.world_size}."
        )
    unknown = set(config.warmup_classes) - set(model_config.classes)
    if unknown or (config.warmup_classes and train_set.task == MULTI_CLASS):
        raise TrainingError(
            f"Warm-up needs multi-label classes of this model ({', '.join(model_config.classes)}); got "
            f"{', '.join(sorted(config.warmup_classes))}: give --warmup-classes from those, or none."
        )
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    train_x, val_x = ModelInputs(train_set.images, recipe, workers), ModelInputs(val_set.images, recipe, workers)
    train_y = torch.from_numpy(train_set.labels)
    task = train_set.task
    supervised = config.attention_mask_weight > 0 and train_set.masks is not None
    if supervised:  # the masks on the token grid (N, C, g, g): each token's share covered by the finding
        grid = model_config.grid_size
        chunks = np.array_split(train_set.masks, 64)  # a float copy of every mask at once would take 2.4 GB
        token_masks = torch.cat([F.adaptive_avg_pool2d(torch.from_numpy(c).float(), grid) for c in chunks])
        chosen = torch.rand(len(train_x), generator=torch.Generator().manual_seed(config.seed + 1))
        with_masks = chosen < config.attention_mask_share  # (N,) the cases whose masks are used

    model = AttentionNet(model_config)  # same seed, so the same start on every rank
    if config.encoder_weights:
        load_encoder_weights(model.encoder, Path(config.encoder_weights))
    model = model.to(context.device)
    trained = DistributedDataParallel(model) if context.distributed else model
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    local_batch = config.batch_size // context.world_size
    steps_per_epoch = max(1, len(train_x) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, config.learning_rate, total_steps=config.epochs * steps_per_epoch, pct_start=0.15
    )
    generator = torch.Generator().manual_seed(config.seed)
    augment_generator = torch.Generator().manual_seed(config.seed * 1000 + context.rank)  # each rank its own draws
    smoothing = config.label_smoothing
    warmup_weights = torch.tensor([float(c in config.warmup_classes) for c in model_config.classes]).to(context.device)
    run = json.loads(json.dumps({"config": asdict(config), "model": asdict(model_config), "data": train_set.source,
                                 "train_size": len(train_set), "validation_data": val_set.source,
                                 "processes": context.world_size}))  # fmt: skip
    done = progress.Progress(history=[])
    if checkpoint is not None and checkpoint.exists():
        done = progress.resume(checkpoint, run, model, optimiser, schedule)
        generator.set_state(done.states["order"])
        augment_generator.set_state(done.states["augment"][context.rank])
        torch.set_rng_state(done.states["torch"])
        if context.is_main:
            log.info("resuming from %s after epoch %d of %d", checkpoint, done.epochs_done, config.epochs)
    best_auc, best_state, history = done.best_auc, done.best_state, done.history
    started -= done.seconds  # the seconds trained before the run was stopped count too
    for epoch in range(done.epochs_done, config.epochs):
        class_weights = warmup_weights if epoch < config.warmup_epochs and config.warmup_classes else None
        model.train()
        order = epoch_order(epoch, len(train_x), config, context, generator)
        running = 0.0
        steps = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                     file=sys.stderr, disable=None if context.is_main else True, leave=False)  # fmt: skip
        batches = train_x.batches(order[: steps_per_epoch * local_batch], local_batch)
        for step, (images, _) in zip(steps, batches, strict=True):
            batch = order[step * local_batch : (step + 1) * local_batch]
            labels = train_y[batch].to(context.device)
            masks = token_masks[batch] if supervised and class_weights is None else None
            if config.augmentation and class_weights is None:
                images, masks = augment(images, recipe, config.augmentation, augment_generator, masks)
            images = images.to(context.device)
            # bfloat16 where asked: half the memory traffic on a GPU, and no loss scaling (its range is float32's).
            with torch.autocast(context.device.type, torch.bfloat16, enabled=config.mixed_precision):
                logits, attention, token_scores = trained(images, token_scores=True)
                best_token = token_scores.flatten(2).amax(dim=2)  # (B, C)
                loss = classification_loss(logits, labels, task, class_weights, smoothing)
                loss = loss + config.max_token_weight * classification_loss(
                    best_token, labels, task, class_weights, smoothing
                )
                if config.attention_overlap_weight and class_weights is None:
                    loss = loss + config.attention_overlap_weight * attention_overlap(attention, labels)
                if masks is not None:
                    present = (labels > 0.5) & with_masks[batch, None].to(context.device)
                    loss = loss + config.attention_mask_weight * attention_mask_loss(
                        attention, masks.to(context.device), present
                    )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            running += loss.item()
            steps.set_postfix(loss=f"{running / (step + 1):.4f}")
        running = mean_over_ranks(running, context)  # the global batch's loss, as one process would see it
        share_buffers(model, context)
        val_auc = macro_auc(val_set.labels, run_model(model, val_x))
        history.append({"epoch": epoch + 1, "train_loss": running / steps_per_epoch, "val_macro_auc": val_auc})
        if context.is_main:
            log.info("epoch %d/%d  loss %.4f  val macro AUC %.4f  (%.0f s)", epoch + 1, config.epochs,
                     running / steps_per_epoch, val_auc, time.perf_counter() - started)  # fmt: skip
        if val_auc > best_auc and epoch >= config.warmup_epochs:
            best_auc, best_state = val_auc, {k: v.clone() for k, v in model.state_dict().items()}
        if checkpoint is not None:
            states = {"order": generator.get_state(), "torch": torch.get_rng_state(),
                      "augment": gathered(augment_generator.get_state(), context)}  # fmt: skip
            if context.is_main:
                seconds = time.perf_counter() - started
                done = progress.Progress(epoch + 1, best_auc, best_state, history, seconds, states)
                progress.save(checkpoint, run, model, optimiser, schedule, done)
    if best_state is not None:  # else every epoch was warm-up: keep the last
        model.load_state_dict(best_state)
    model = model.cpu().eval()

    synthetic = train_set.source.startswith("synthetic")
    temperature, thresholds = calibrate(model, val_x, val_set.labels, task)
    card = ModelCard(
        name="medattn-cxr-synthetic" if synthetic else "medattn-model",
        version=time.strftime("%Y.%m.%d"),
        task=task,
        classes=tuple(model_config.classes),
        display_names={c: DISPLAY_NAMES.get(c, c) for c in model_config.classes},
        intended_use=INTENDED_USE if synthetic else "Research use only; not for diagnosis.",
        preprocessing=recipe,
        architecture=Architecture.of(model_config),
        temperature=temperature,
        thresholds=thresholds,
        parameters=count_parameters(model),
        training=from_json(
            Training,
            {
                "data": train_set.source,
                "validation_data": val_set.source,
                "train_size": len(train_set),
                "val_size": len(val_set),
                **asdict(config),
                "history": history,
                "seconds": round(time.perf_counter() - started, 1),
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "processes": context.world_size,
                "device": context.device.type,
            },
            "training",
        ),
    )
    return model, card


def calibrate(
    model: AttentionNet, val_x: torch.Tensor, val_y: np.ndarray, task: str
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Temperatures and (multi-label) decision thresholds, fitted on the validation split."""
    val_logits = run_model(model, val_x)
    temperature = calibration.fit_temperature(val_logits, val_y, task)
    if task == MULTI_CLASS:
        return tuple(temperature.round(4).tolist()), ()
    probs = calibration.probabilities(val_logits, temperature, task)
    return tuple(temperature.round(4).tolist()), tuple(calibration.best_f1_thresholds(val_y, probs).round(4).tolist())
