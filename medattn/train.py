"""Training, temperature calibration and evaluation on the built-in synthetic benchmark."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from medattn import data
from medattn.checkpoint import count_parameters
from medattn.metrics import dilate, expected_calibration_error, mass_inside, pointing_hit, roc_auc
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
    train_size: int = 12000
    val_size: int = 1500
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    input_size: int = 128


def benchmark_inputs(seed: int, count: int, size: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Model inputs (n, 1, S, S) through the shared ``prepare``, labels (n, C) and masks (n, C, S, S)."""
    images, masks = data.generate(seed, count, size)
    inputs = np.stack([prepare(image, size)[0] for image in images])
    labels = masks.any(axis=(2, 3)).astype(np.float32)
    return torch.from_numpy(inputs)[:, None], labels, masks


@torch.inference_mode()
def run_model(model: AttentionNet, inputs: torch.Tensor, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Raw logits (n, C) and attention (n, C, h, w) for a stack of prepared inputs."""
    model.eval()
    logits, attention = zip(*(model(chunk) for chunk in inputs.split(batch_size)), strict=True)
    return torch.cat(logits).numpy(), torch.cat(attention).numpy()


# Bounds on the fitted temperature. On a perfectly separated validation split the log-loss optimum
# is T -> 0, which would turn every probability into exactly 0 or 1; temperature scaling is for
# softening an overconfident network, so it may sharpen at most 2x.
TEMPERATURE_RANGE = (0.5, 10.0)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One temperature per class minimising validation log-loss (Guo et al., 2017, per output)."""
    logits_t, labels_t = torch.from_numpy(logits).double(), torch.from_numpy(labels).double()
    log_t = torch.zeros(logits.shape[1], dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def closure():
        optimiser.zero_grad()
        loss = F.binary_cross_entropy_with_logits(logits_t / log_t.exp(), labels_t)
        loss.backward()
        return loss

    optimiser.step(closure)
    # Each class's temperature touches only its own term of the loss, so clipping each is exact.
    return np.clip(log_t.detach().exp().numpy(), *TEMPERATURE_RANGE)


def best_f1_thresholds(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Per class, a threshold with the highest F1 on these cases, placed mid-gap below the best cut.

    The best cut is an observed probability; putting the threshold halfway to the next lower one
    keeps it off the edge of the optimal range (for separated classes: between the groups).
    """
    thresholds = []
    for c in range(labels.shape[1]):
        candidates = np.unique(probabilities[:, c])
        f1 = [_f1(labels[:, c], probabilities[:, c] >= t) for t in candidates]
        best = int(np.argmax(f1))
        below = candidates[best - 1] if best > 0 else 0.0
        thresholds.append(float((candidates[best] + below) / 2))
    return np.array(thresholds)


def _f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    true_pos = float((predicted & (labels > 0)).sum())
    return 2 * true_pos / max(1.0, float(predicted.sum() + (labels > 0).sum()))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def evaluate(model: AttentionNet, card: dict, seed: int, count: int) -> dict:
    """Classification, calibration and attention-localisation figures on benchmark ``seed``."""
    size = model.config.input_size
    inputs, labels, masks = benchmark_inputs(seed, count, size)
    logits, attention = run_model(model, inputs)
    temperature = np.asarray(card.get("temperature", np.ones(labels.shape[1])))
    raw, calibrated = sigmoid(logits), sigmoid(logits / temperature)
    thresholds = np.asarray(card.get("thresholds", np.full(labels.shape[1], 0.5)))
    cell = size // model.config.grid_size
    per_class = {}
    for c, name in enumerate(model.config.classes):
        predicted = calibrated[:, c] >= thresholds[c]
        hits, masses = [], []
        for i in np.flatnonzero(labels[:, c]):
            heatmap = cv2.resize(attention[i, c], (size, size), interpolation=cv2.INTER_LINEAR)
            region = dilate(masks[i, c], cell)
            hits.append(pointing_hit(heatmap, region))
            masses.append(mass_inside(heatmap, region))
        per_class[name] = {
            "auc": roc_auc(labels[:, c], calibrated[:, c]),
            "accuracy": float((predicted == (labels[:, c] > 0)).mean()),
            "f1": _f1(labels[:, c], predicted),
            "pointing_game": float(np.mean(hits)) if hits else float("nan"),
            "attention_mass_in_mask": float(np.mean(masses)) if masses else float("nan"),
        }
    all_hits = sum(
        [per_class[n]["pointing_game"] * labels[:, c].sum() for c, n in enumerate(model.config.classes)]
    ) / max(1.0, labels.sum())
    return {
        "benchmark_seed": seed,
        "cases": count,
        "macro_auc": float(np.mean([v["auc"] for v in per_class.values()])),
        "ece_before_calibration": expected_calibration_error(labels, raw),
        "ece_after_calibration": expected_calibration_error(labels, calibrated),
        "pointing_game_overall": float(all_hits),
        "per_class": per_class,
    }


def train(config: TrainConfig, model_config: ModelConfig | None = None) -> tuple[AttentionNet, dict]:
    """Train on benchmark seed ``config.seed``, validate on the next seed, calibrate; return model and card."""
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    model_config = model_config or ModelConfig(classes=data.FINDINGS, input_size=config.input_size)
    train_x, train_y, _ = benchmark_inputs(config.seed, config.train_size, config.input_size)
    val_x, val_y, _ = benchmark_inputs(config.seed + 1, config.val_size, config.input_size)
    train_y = torch.from_numpy(train_y)
    log.info(
        "generated %d training and %d validation cases in %.0f s",
        len(train_x),
        len(val_x),
        time.perf_counter() - started,
    )

    model = AttentionNet(model_config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    steps_per_epoch = len(train_x) // config.batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, config.learning_rate, total_steps=config.epochs * steps_per_epoch, pct_start=0.15
    )
    generator = torch.Generator().manual_seed(config.seed)
    best_auc, best_state, history = -1.0, None, []
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=generator)
        running = 0.0
        for step in range(steps_per_epoch):
            batch = order[step * config.batch_size : (step + 1) * config.batch_size]
            logits, _ = model(train_x[batch])
            loss = F.binary_cross_entropy_with_logits(logits, train_y[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            running += loss.item()
        val_logits, _ = run_model(model, val_x)
        val_auc = float(np.mean([roc_auc(val_y[:, c], val_logits[:, c]) for c in range(val_y.shape[1])]))
        history.append({"epoch": epoch + 1, "train_loss": running / steps_per_epoch, "val_macro_auc": val_auc})
        log.info(
            "epoch %d/%d  loss %.4f  val macro AUC %.4f  (%.0f s)",
            epoch + 1,
            config.epochs,
            running / steps_per_epoch,
            val_auc,
            time.perf_counter() - started,
        )
        if val_auc > best_auc:
            best_auc, best_state = val_auc, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()

    card = {
        "name": "medattn-cxr-synthetic",
        "version": time.strftime("%Y.%m.%d"),
        "task": "multi-label",
        "classes": list(model_config.classes),
        "display_names": {c: DISPLAY_NAMES.get(c, c) for c in model_config.classes},
        "intended_use": INTENDED_USE,
        "preprocessing": {
            "input_size": config.input_size,
            "channels": "grey",
            "intensity": f"percentile {LOW_PERCENTILE}-{HIGH_PERCENTILE} stretch to [0, 1]",
            "geometry": "aspect-preserving resize, centred zero padding",
            "mean": INPUT_MEAN,
            "std": INPUT_STD,
        },
        "training": {
            "data": "medattn built-in synthetic chest radiograph benchmark",
            **asdict(config),
            "validation_seed": config.seed + 1,
            "history": history,
            "seconds": round(time.perf_counter() - started, 1),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "parameters": count_parameters(model),
    }
    return model, calibrate(model, card, val_x, val_y)


def calibrate(model: AttentionNet, card: dict, val_x: torch.Tensor, val_y: np.ndarray) -> dict:
    """The card with per-class temperatures and decision thresholds fitted on the validation split."""
    val_logits, _ = run_model(model, val_x)
    temperature = fit_temperature(val_logits, val_y)
    thresholds = best_f1_thresholds(val_y, sigmoid(val_logits / temperature))
    return {**card, "temperature": temperature.round(4).tolist(), "thresholds": thresholds.round(4).tolist()}
