"""How the model holds up just off its benchmark, and whether it says so when it does not.

Each shift is a realistic change to held-out benchmark cases: acquisition (exposure, gamma, noise, blur,
resolution, compression), positioning (rotation, scale, translation, mirroring), what the detector adds
(collimation borders, burned-in text), and subtler findings. Every shifted case goes through the one path
the app uses (the card's preprocessing, then ``Predictor.run``) and is measured like the clean held-out
set: AUC and attention pointing per finding, ECE, and the share the unlikeness score flags.

A shift **holds** when its macro AUC is at least ``HOLDS_AUC`` and its macro pointing at least
``HOLDS_POINTING``; it is **flagged** when at least ``FLAGGED_SHARE`` of its images are called unlike the
training data; otherwise it **fails silently**, the case that must not happen. Every mean over findings
is a macro mean (each finding counts once, however many cases have it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from medattn.benchmark import SyntheticCase, generate_case
from medattn.explain.quality import dilate, pointing_hit
from medattn.model.predictor import Predictor
from medattn.training.evaluate import expected_calibration_error, roc_auc

HOLDS_AUC, HOLDS_POINTING, FLAGGED_SHARE = 0.95, 0.85, 0.9
# A held-out seed no training, validation or evaluation run uses.
ROBUSTNESS_SEED = 31337

# image (S, S) float32 in [0, 1], masks (findings, S, S) bool, a random stream -> the shifted pair
Transform = Callable[[np.ndarray, np.ndarray, np.random.Generator], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Shift:
    name: str
    family: str
    transform: Transform | None = None  # None: the cases as drawn
    subtle: tuple[str, ...] = ()  # findings the generator draws subtler (``synthetic.SUBTLE_RANGES``)


def _pixels(change: Callable[[np.ndarray, np.random.Generator], np.ndarray]) -> Transform:
    """A shift of the pixels alone: the findings stay where they were."""
    return lambda image, masks, rng: (np.clip(change(image, rng), 0, 1).astype(np.float32), masks)


def _warp(angle: float = 0.0, scale: float = 1.0, shift: float = 0.0) -> Transform:
    """Rotate (degrees, anticlockwise) and scale about the centre, then move right and down by ``shift`` of
    the width; image and masks alike. The edge is replicated: a detector has no black corners."""

    def transform(image: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        size = image.shape[0]
        matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
        matrix[:, 2] += shift * size
        warped = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        moved = [cv2.warpAffine(m.astype(np.uint8), matrix, (size, size), flags=cv2.INTER_NEAREST) for m in masks]
        return warped, np.stack(moved).astype(bool)

    return transform


def _mirror(image: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(image[:, ::-1]), np.ascontiguousarray(masks[:, :, ::-1])


def _half_resolution(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = image.shape[0]
    small = cv2.resize(image, (size // 2, size // 2), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR)


def _jpeg(quality: int) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    def compress(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _, encoded = cv2.imencode(".jpg", np.round(image * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
        return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255

    return compress


def _collimation(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unexposed bands along the edges, as a collimator leaves them: bright, a tenth of the image or so."""
    size, shown = image.shape[0], image.copy()
    top, bottom, left, right = (int(size * rng.uniform(0.06, 0.14)) for _ in range(4))
    brightness = rng.uniform(0.85, 1.0)
    shown[:top], shown[size - bottom :], shown[:, :left], shown[:, size - right :] = (brightness,) * 4
    return shown


def _burned_in_text(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A side marker and an annotation line in white, where departments burn them in."""
    size, text = image.shape[0], np.zeros(image.shape, dtype=np.uint8)  # OpenCV draws text on 8 bits only
    scale = size / 400
    cv2.putText(text, "L", (int(size * 0.88), int(size * 0.12)), cv2.FONT_HERSHEY_SIMPLEX, 3 * scale, 255, 2)
    cv2.putText(text, "PORTABLE AP  SUPINE", (int(size * 0.03), int(size * 0.96)), cv2.FONT_HERSHEY_SIMPLEX,
                1.1 * scale, 255, 1)  # fmt: skip
    return np.maximum(image, text / 255)


def _film_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grain heavier than any training image has (sd 0.01-0.03 there)."""
    return image + rng.normal(0, rng.uniform(0.05, 0.08), image.shape)


SHIFTS: tuple[Shift, ...] = (
    Shift("none", "clean"),
    Shift("under-exposed (x0.6)", "exposure and gamma", _pixels(lambda im, rng: im * 0.6)),
    Shift("over-exposed (x1.5, clipped)", "exposure and gamma", _pixels(lambda im, rng: im * 1.5)),
    Shift("gamma 0.5", "exposure and gamma", _pixels(lambda im, rng: im**0.5)),
    Shift("gamma 2.0", "exposure and gamma", _pixels(lambda im, rng: im**2.0)),
    Shift("film noise sd 0.05-0.08", "noise", _pixels(_film_noise)),
    Shift("Gaussian noise sd 0.10", "noise", _pixels(lambda im, rng: im + rng.normal(0, 0.10, im.shape))),
    Shift("blur sigma 1.5 px", "blur and resolution", _pixels(lambda im, rng: cv2.GaussianBlur(im, (0, 0), 1.5))),
    Shift("half resolution", "blur and resolution", _pixels(_half_resolution)),
    Shift("rotated +10 degrees", "rotation", _warp(angle=10)),
    Shift("rotated -10 degrees", "rotation", _warp(angle=-10)),
    Shift("zoomed out (0.85)", "scale and translation", _warp(scale=0.85)),
    Shift("zoomed in (1.15)", "scale and translation", _warp(scale=1.15)),
    Shift("moved 8% right and down", "scale and translation", _warp(shift=0.08)),
    Shift("mirrored left-right", "mirroring", _mirror),
    Shift("JPEG quality 20", "compression", _pixels(_jpeg(20))),
    Shift("collimation borders", "borders and text", _pixels(_collimation)),
    Shift("burned-in text", "borders and text", _pixels(_burned_in_text)),
    Shift("small, faint nodules", "subtler findings", subtle=("nodule",)),
    Shift("shallow effusions", "subtler findings", subtle=("effusion",)),
    Shift("borderline heart size", "subtler findings", subtle=("cardiomegaly",)),
)  # fmt: skip


def shifted_cases(
    shift: Shift, count: int, seed: int = ROBUSTNESS_SEED, drawn: list[SyntheticCase] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, S, S) float32 and masks (N, findings, S, S) bool: held-out cases ``0..count-1``, shifted.
    ``drawn``: those cases already drawn without subtler findings, to shift instead of drawing them again."""
    rng = np.random.default_rng([seed, SHIFTS.index(shift)])
    if shift.subtle or drawn is None:
        drawn = [generate_case(seed, index, subtle=shift.subtle) for index in range(count)]
    pairs = [(c.image, c.masks) if shift.transform is None else shift.transform(c.image, c.masks, rng) for c in drawn]
    return np.stack([image for image, _ in pairs]), np.stack([masks for _, masks in pairs])


def _run(predictor: Predictor, images: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated probabilities (N, C), attention (N, C, h, w) and unlikeness (N,; zeros without statistics)."""
    inputs = torch.from_numpy(np.stack([predictor.preprocessing.prepare(image)[0] for image in images]))
    results = [predictor.run(chunk) for chunk in inputs.split(batch_size)]
    return (
        np.concatenate([r.probabilities for r in results]),
        np.concatenate([r.attention.numpy() for r in results]),
        np.concatenate([r.unlikeness if r.unlikeness is not None else np.zeros(len(r.probabilities)) for r in results]),
    )


def wrong_calls(predictor: Predictor, images: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each image (N, S, S): whether any finding's call is wrong (N,) bool, and its unlikeness (N,)."""
    probabilities, _, unlikeness = _run(predictor, images)
    labels = masks.any(axis=(2, 3))
    calls = probabilities >= np.asarray(predictor.card.thresholds)
    return (calls != labels).any(axis=1), unlikeness


def risk_at_coverage(wrong: np.ndarray, score: np.ndarray, coverage: float) -> float:
    """The error rate among the ``coverage`` share of images a gate on ``score`` would keep (the lowest scores
    first: the most like the training data): selective prediction's risk at that coverage."""
    kept = np.argsort(score, kind="stable")[: max(1, round(coverage * len(score)))]
    return float(wrong[kept].mean())


def _peaks_in(attention: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Whether each map (N, h, w) peaks inside its mask (N, S, S), grown by one token cell: the pointing game."""
    size = masks.shape[-1]
    cell = size // attention.shape[-1]
    return np.array([
        pointing_hit(cv2.resize(heat, (size, size), interpolation=cv2.INTER_LINEAR), dilate(mask, cell))
        for heat, mask in zip(attention, masks, strict=True)
    ], dtype=bool)  # fmt: skip


def measure(
    predictor: Predictor, images: np.ndarray, masks: np.ndarray, clean_unlikeness: np.ndarray | None = None
) -> dict:
    """AUC, ECE, attention pointing (per finding and macro) and the share flagged unlike, for labelled images;
    given the unlikeness of clean cases, also how well the unlikeness tells these images from them (AUROC).
    The attention (N, C, h, w) and unlikeness (N,) come back too, under those keys."""
    labels = masks.any(axis=(2, 3))
    probabilities, attention, unlikeness = _run(predictor, images)
    limit = predictor.card.unlikeness.threshold if predictor.card.unlikeness else np.inf
    auc, pointing = {}, {}
    for c, finding in enumerate(predictor.classes):
        auc[finding] = roc_auc(labels[:, c], probabilities[:, c])
        positives = np.flatnonzero(labels[:, c])
        pointing[finding] = (
            float(_peaks_in(attention[positives, c], masks[positives, c]).mean()) if len(positives) else np.nan
        )
    return {
        "cases": len(images),
        "macro_auc": float(np.nanmean(list(auc.values()))),
        "auc": auc,
        "ece": expected_calibration_error(labels, probabilities),
        "macro_pointing": float(np.nanmean(list(pointing.values()))),
        "pointing": pointing,
        "flagged": float((unlikeness > limit).mean()),
        "attention": attention,
        "unlikeness": unlikeness,
        "detection_auroc": None
        if clean_unlikeness is None
        else roc_auc(
            np.r_[np.zeros(len(clean_unlikeness)), np.ones(len(unlikeness))], np.r_[clean_unlikeness, unlikeness]
        ),
    }


def verdict(figures: dict) -> str:
    """'holds', 'flagged' or 'fails silently' (see the module's docstring)."""
    if figures["macro_auc"] >= HOLDS_AUC and figures["macro_pointing"] >= HOLDS_POINTING:
        return "holds"
    return "flagged" if figures["flagged"] >= FLAGGED_SHARE else "fails silently"


def capture_rates(classes: tuple[str, ...], attention: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """For each ordered pair of findings present together: the share of those cases whose first finding's
    attention (N, C, h, w) peaks on the second finding's region and off its own (both grown by one token cell)."""
    present = masks.any(axis=(2, 3))
    rates = {}
    for a, own in enumerate(classes):
        for b, other in enumerate(classes):
            together = np.flatnonzero(present[:, a] & present[:, b])
            if a == b or len(together) == 0:
                continue
            on_other = _peaks_in(attention[together, a], masks[together, b])
            on_own = _peaks_in(attention[together, a], masks[together, a])
            rates[f"{own} -> {other}"] = float((on_other & ~on_own).mean())
    return rates


def robustness(predictor: Predictor, count: int = 500, seed: int = ROBUSTNESS_SEED) -> dict:
    """Every shift's figures and verdict, and the capture rates on the clean cases, as the card holds them."""
    drawn = [generate_case(seed, index) for index in range(count)]
    shifts, clean_unlikeness, captures = [], None, None
    for shift in SHIFTS:
        images, masks = shifted_cases(shift, count, seed, drawn)
        figures = measure(predictor, images, masks, clean_unlikeness)
        unlikeness, attention = figures.pop("unlikeness"), figures.pop("attention")
        if clean_unlikeness is None:  # SHIFTS[0]: the cases as drawn
            clean_unlikeness, captures = unlikeness, capture_rates(predictor.classes, attention, masks)
        shifts.append({"shift": shift.name, "family": shift.family, **figures, "verdict": verdict(figures)})
    return {"data": f"synthetic seed {seed}", "cases_per_shift": count, "shifts": shifts, "capture_rates": captures}


def table(figures: dict) -> str:
    """The figures as a Markdown table, a shift a row (the documentation and the benchmark print it)."""
    findings = list(figures["shifts"][0]["auc"])
    head = ["shift", "family", "macro AUC", *(f"AUC {f}" for f in findings), "ECE", "macro pointing",
            *(f"pointing {f}" for f in findings), "flagged", "unlikeness AUROC", "verdict"]  # fmt: skip
    rows = [
        [s["shift"], s["family"], f"{s['macro_auc']:.3f}", *(f"{s['auc'][f]:.3f}" for f in findings), f"{s['ece']:.3f}",
         f"{s['macro_pointing']:.2f}", *(f"{s['pointing'][f]:.2f}" for f in findings), f"{s['flagged']:.0%}",
         "—" if s["detection_auroc"] is None else f"{s['detection_auroc']:.2f}", s["verdict"]]
        for s in figures["shifts"]
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]
    captures = ", ".join(f"{pair} {rate:.0%}" for pair, rate in figures["capture_rates"].items())
    return "\n".join(lines) + f"\n\nCapture rates on the clean cases (attention peaking on another finding): {captures}"


def inserted_lesion_pointing(
    predictor: Predictor,
    pixels: np.ndarray,
    fields: list[tuple[tuple[float, float], tuple[float, float]]],
    count: int,
    seed: int = ROBUSTNESS_SEED,
) -> float:
    """The share of nodules inserted into a real radiograph on which the nodule attention peaks.

    ``pixels``: the radiograph's model pixels (H, W), dense tissue high; ``fields``: the lung fields as
    ((top, bottom), (left, right)) shares of the image. Each nodule is drawn as the benchmark draws a
    fuzzy one (size and contrast from its ranges, contrast on the image's own 0.5-99.5 percentile range),
    into a field taken in turn; a hit is the map's peak in its region grown by one token cell.
    """
    rng = np.random.default_rng(seed)
    height, width = pixels.shape
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    low, high = np.percentile(pixels, [0.5, 99.5])
    cell = width // predictor.model.config.grid_size
    hits = []
    for index in range(count):
        (top, bottom), (left, right) = fields[index % len(fields)]
        centre_row, centre_column = rng.uniform(top, bottom) * height, rng.uniform(left, right) * width
        radius = rng.uniform(0.02, 0.045) * width
        distance = np.hypot(rows - centre_row, columns - centre_column)
        blob = np.exp(-(distance**2) / (2 * (0.6 * radius) ** 2))
        inserted = pixels + rng.uniform(0.12, 0.22) * (high - low) * blob
        heat = cv2.resize(predictor.predict(inserted).attention["nodule"].values, (width, height))
        hits.append(pointing_hit(heat, dilate(distance < radius, cell)))
    return float(np.mean(hits))
