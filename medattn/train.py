"""Training, calibration and evaluation, on the synthetic benchmark or any ``LabelledImages``."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from medattn import calibration
from medattn.calibration import MULTI_CLASS
from medattn.checkpoint import count_parameters
from medattn.datasets import LabelledImages
from medattn.distributed import Context, mean_over_ranks, share_buffers
from medattn.explain.metrics import explanation_quality
from medattn.metrics import expected_calibration_error, reliability, roc_auc, roc_curve
from medattn.model import AttentionNet, ModelConfig
from medattn.preprocess import HIGH_PERCENTILE, INPUT_MEAN, INPUT_STD, LOW_PERCENTILE, prepare

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


def model_inputs(dataset: LabelledImages, size: int, channels: int = 1) -> torch.Tensor:
    """(N, channels, S, S) through the shared ``prepare``."""
    return torch.from_numpy(np.stack([prepare(image, size, channels)[0] for image in dataset.images]))


@torch.inference_mode()
def run_model(model: AttentionNet, inputs: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Raw logits (N, C) for a stack of prepared inputs, on whatever device the model is on."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(chunk.to(device))[0].cpu() for chunk in inputs.split(batch_size)]).numpy()


def classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, task: str, class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy (multi-class) or mean binary cross-entropy over the weighted classes (multi-label)."""
    if task == MULTI_CLASS:
        return F.cross_entropy(logits, labels.argmax(dim=1))
    if class_weights is None:
        return F.binary_cross_entropy_with_logits(logits, labels)
    per_class = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(dim=0)  # (C,)
    return (per_class * class_weights).sum() / class_weights.sum()


def macro_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(np.nanmean([roc_auc(labels[:, c], scores[:, c]) for c in range(labels.shape[1])]))


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
) -> tuple[AttentionNet, dict]:
    """Train, keep the best validation epoch, calibrate on validation; return the model and its card.

    With a distributed ``context`` (torchrun), each process trains on its shard of every batch under
    DistributedDataParallel; ``config.batch_size`` stays the global batch size.
    """
    context = context or Context()
    if config.batch_size % context.world_size:
        raise ValueError(f"batch size {config.batch_size} does not split over {context.world_size} processes")
    unknown = set(config.warmup_classes) - set(model_config.classes)
    if unknown or (config.warmup_classes and train_set.task == MULTI_CLASS):
        raise ValueError(f"warm-up needs multi-label classes of this model; got {sorted(config.warmup_classes)}")
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    size, channels = model_config.input_size, model_config.in_channels
    train_x, val_x = model_inputs(train_set, size, channels), model_inputs(val_set, size, channels)
    train_y = torch.from_numpy(train_set.labels)
    task = train_set.task

    model = AttentionNet(model_config).to(context.device)  # same seed, so the same start on every rank
    trained = DistributedDataParallel(model) if context.distributed else model
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    local_batch = config.batch_size // context.world_size
    steps_per_epoch = max(1, len(train_x) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, config.learning_rate, total_steps=config.epochs * steps_per_epoch, pct_start=0.15
    )
    generator = torch.Generator().manual_seed(config.seed)
    warmup_weights = torch.tensor([float(c in config.warmup_classes) for c in model_config.classes])
    best_auc, best_state, history = -1.0, None, []
    for epoch in range(config.epochs):
        class_weights = warmup_weights if epoch < config.warmup_epochs and config.warmup_classes else None
        model.train()
        order = epoch_order(epoch, len(train_x), config, context, generator)
        running = 0.0
        steps = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                     file=sys.stderr, disable=None if context.is_main else True, leave=False)  # fmt: skip
        for step in steps:
            batch = order[step * local_batch : (step + 1) * local_batch]
            images, labels = train_x[batch].to(context.device), train_y[batch].to(context.device)
            logits, _, token_scores = trained(images, token_scores=True)
            best_token = token_scores.flatten(2).amax(dim=2)  # (B, C)
            loss = classification_loss(logits, labels, task, class_weights)
            loss = loss + config.max_token_weight * classification_loss(best_token, labels, task, class_weights)
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
    if best_state is not None:  # else every epoch was warm-up: keep the last
        model.load_state_dict(best_state)
    model = model.cpu().eval()

    synthetic = train_set.source.startswith("synthetic")
    card = {
        "name": "medattn-cxr-synthetic" if synthetic else "medattn-model",
        "version": time.strftime("%Y.%m.%d"),
        "task": task,
        "classes": list(model_config.classes),
        "display_names": {c: DISPLAY_NAMES.get(c, c) for c in model_config.classes},
        "intended_use": INTENDED_USE if synthetic else "Research use only; not for diagnosis.",
        "preprocessing": {
            "input_size": size,
            "channels": "grey" if channels == 1 else "rgb",
            "intensity": f"percentile {LOW_PERCENTILE}-{HIGH_PERCENTILE} stretch to [0, 1]",
            "geometry": "aspect-preserving resize, centred zero padding",
            "mean": INPUT_MEAN,
            "std": INPUT_STD,
        },
        "training": {
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
        },
        "parameters": count_parameters(model),
    }
    return model, calibrate(model, card, val_x, val_set.labels)


def calibrate(model: AttentionNet, card: dict, val_x: torch.Tensor, val_y: np.ndarray) -> dict:
    """The card with temperatures (and, multi-label, decision thresholds) fitted on the validation split."""
    task = card["task"]
    val_logits = run_model(model, val_x)
    temperature = calibration.fit_temperature(val_logits, val_y, task)
    card = {**card, "temperature": temperature.round(4).tolist()}
    if task != MULTI_CLASS:
        probs = calibration.probabilities(val_logits, temperature, task)
        card["thresholds"] = calibration.best_f1_thresholds(val_y, probs).round(4).tolist()
    return card


def evaluate(model: AttentionNet, card: dict, dataset: LabelledImages, explain_cases: int = 0) -> dict:
    """Classification and calibration figures; with ``explain_cases``, every explanation method's quality
    on up to that many cases per class (``medattn.explain.metrics``)."""
    task, classes = card["task"], card["classes"]
    inputs = model_inputs(dataset, model.config.input_size, model.config.in_channels)
    labels = dataset.labels
    logits = run_model(model, inputs)
    raw = calibration.probabilities(logits, np.ones(1), task)
    calibrated = calibration.probabilities(logits, np.asarray(card["temperature"]), task)
    decided = calibration.decisions(calibrated, card.get("thresholds"), task)
    per_class = {}
    for c, name in enumerate(classes):
        truth = labels[:, c] > 0
        per_class[name] = {
            "auc": roc_auc(truth, calibrated[:, c]),
            "accuracy": float((decided[:, c] == truth).mean()),
            "f1": calibration.f1_score(truth, decided[:, c]),
            "confusion": {
                "true_positive": int((decided[:, c] & truth).sum()),
                "false_positive": int((decided[:, c] & ~truth).sum()),
                "false_negative": int((~decided[:, c] & truth).sum()),
                "true_negative": int((~decided[:, c] & ~truth).sum()),
            },
        }
    metrics = {
        "data": dataset.source,
        "cases": len(dataset),
        "macro_auc": float(np.nanmean([v["auc"] for v in per_class.values()])),
        "ece_before_calibration": expected_calibration_error(labels, raw),
        "ece_after_calibration": expected_calibration_error(labels, calibrated),
        "per_class": per_class,
        "roc": {name: roc_curve(labels[:, c] > 0, calibrated[:, c]) for c, name in enumerate(classes)},
        "reliability": {"before": reliability(labels, raw), "after": reliability(labels, calibrated)},
    }
    if task == MULTI_CLASS:
        metrics["accuracy"] = float((decided.argmax(axis=1) == labels.argmax(axis=1)).mean())
    if explain_cases:
        metrics["explanations"] = explanation_quality(model, inputs, dataset, task, explain_cases)
    return metrics
