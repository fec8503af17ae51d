"""How the model holds up just off its benchmark, and whether it says so when it does not.

Each shift is a realistic change to held-out benchmark cases: acquisition (exposure, gamma, noise, blur,
resolution, compression), positioning (rotation, scale, translation, mirroring), what the detector adds
(collimation borders, burned-in text), and subtler findings. Every shifted case goes through the one path
the app uses (the card's preprocessing, then ``Predictor.run``) and is measured like the clean held-out
set: AUC and attention pointing per finding, ECE, and the share the unlikeness score flags.

A shift **holds** when its macro AUC is at least ``HOLDS_AUC``, its macro pointing at least ``HOLDS_POINTING``,
and its images are called wrongly at most ``ACCEPTABLE_EXTRA_ERROR`` more often than the clean cases (a model that
still ranks well can call a blurred vessel a nodule in one image of five); it is **flagged** when at least
``FLAGGED_SHARE`` of its images are called unlike the training data; otherwise it **fails silently**, the case that
must not happen. Every mean over findings is a macro mean (each finding counts once, however many cases have it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from medattn.benchmark import SyntheticCase, generate_case
from medattn.explain.quality import dilate, peaks, pointing_hit
from medattn.explain.stability import stability_checks, stability_figures
from medattn.model.calibration import roc_auc
from medattn.model.card import withholds
from medattn.model.predictor import Predictor
from medattn.training.evaluate import expected_calibration_error

HOLDS_AUC, HOLDS_POINTING, FLAGGED_SHARE = 0.95, 0.85, 0.9
# A shift the model still reads: its error (any finding called wrongly) within 10 points of the clean cases'. The
# gate's limits keep such images (medattn fit-ood); the shifts beyond it on the benchmark are 20-80 points out.
ACCEPTABLE_EXTRA_ERROR = 0.10
# Clean cases whose maps the stability check measures (about 1 min for 100 on 2 cores).
STABILITY_CASES = 100
# The shares of images kept, most familiar first, at which the risk-coverage curve is measured.
COVERAGES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2)
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


def _run(predictor: Predictor, images: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Calibrated probabilities (N, C), attention (N, C, h, w), the unlikeness (N,) and the gate's score (N,; above
    1 is withheld, medattn.model.card.gate_scores); zeros for the last two without the card's statistics."""
    inputs = torch.from_numpy(np.stack([predictor.preprocessing.prepare(image)[0] for image in images]))
    results = [predictor.run(chunk) for chunk in inputs.split(batch_size)]
    zeros = np.zeros(len(images))
    return {
        "probabilities": np.concatenate([r.probabilities for r in results]),
        "attention": np.concatenate([r.attention.numpy() for r in results]),
        "unlikeness": zeros if predictor.card.unlikeness is None else np.concatenate([r.unlikeness for r in results]),
        "gate": zeros if predictor.card.unlikeness is None else np.concatenate([r.gate for r in results]),
    }


def wrong_calls(predictor: Predictor, images: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each image (N, S, S): whether any finding's call is wrong (N,) bool, and the gate's score (N,)."""
    run = _run(predictor, images)
    return _wrong(predictor, run["probabilities"], masks), run["gate"]


def _wrong(predictor: Predictor, probabilities: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(N,) bool: any finding's call (its probability against its threshold) differs from the truth."""
    return ((probabilities >= np.asarray(predictor.card.thresholds)) != masks.any(axis=(2, 3))).any(axis=1)


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


def measure(predictor: Predictor, images: np.ndarray, masks: np.ndarray, clean_gate: np.ndarray | None = None) -> dict:
    """AUC, ECE, attention pointing (per finding and macro), the share the gate withholds (and the distance alone
    would), and the error among all images and among those shown, for labelled images; given the gate's scores
    of clean cases, also how well the score tells these images from them (AUROC). The attention (N, C, h, w),
    the gate's scores (N,) and whether each image is wrong (N,) come back too, under those keys."""
    labels = masks.any(axis=(2, 3))
    run = _run(predictor, images)
    probabilities, attention, gate = run["probabilities"], run["attention"], run["gate"]
    limit = predictor.card.unlikeness.threshold if predictor.card.unlikeness else np.inf
    withheld, wrong = withholds(gate), _wrong(predictor, probabilities, masks)
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
        "flagged": float(withheld.mean()),
        "flagged_by_distance": float((run["unlikeness"] > limit).mean()),
        "error": float(wrong.mean()),
        "error_shown": float(wrong[~withheld].mean()) if (~withheld).any() else None,
        "attention": attention,
        "gate": gate,
        "wrong": wrong,
        "detection_auroc": None
        if clean_gate is None
        else roc_auc(np.r_[np.zeros(len(clean_gate)), np.ones(len(gate))], np.r_[clean_gate, gate]),
    }


def still_reads(error: float, clean_error: float) -> bool:
    """Whether a shift's error (any finding called wrongly) is within ACCEPTABLE_EXTRA_ERROR of the clean cases':
    the one rule behind both the verdict and the images the gate's limits must keep."""
    return error <= clean_error + ACCEPTABLE_EXTRA_ERROR


def verdict(figures: dict, clean_error: float) -> str:
    """'holds', 'flagged' or 'fails silently' (see the module's docstring), given the clean cases' error."""
    ranks = figures["macro_auc"] >= HOLDS_AUC and figures["macro_pointing"] >= HOLDS_POINTING
    if ranks and still_reads(figures["error"], clean_error):
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


def robustness(
    predictor: Predictor, count: int = 500, seed: int = ROBUSTNESS_SEED, stability_cases: int = STABILITY_CASES
) -> dict:
    """Every shift's figures and verdict, the capture rates on the clean cases, per shift family (its shifts
    pooled with the clean cases) the risk at each of COVERAGES, and the map-stability check on the first
    ``stability_cases`` clean cases, as the card holds them."""
    drawn = [generate_case(seed, index) for index in range(count)]
    shifts, clean, captures, by_family = [], None, None, {}
    for shift in SHIFTS:
        images, masks = shifted_cases(shift, count, seed, drawn)
        figures = measure(predictor, images, masks, None if clean is None else clean[1])
        gate, wrong, attention = figures.pop("gate"), figures.pop("wrong"), figures.pop("attention")
        if clean is None:  # SHIFTS[0]: the cases as drawn
            clean, captures = (wrong, gate), capture_rates(predictor.classes, attention, masks)
        by_family.setdefault(shift.family, [clean] if shift is not SHIFTS[0] else []).append((wrong, gate))
        shifts.append(
            {"shift": shift.name, "family": shift.family, **figures, "verdict": verdict(figures, clean[0].mean())}
        )
    risk_coverage = {}
    for family, members in by_family.items():
        wrong, gate = (np.concatenate(parts) for parts in zip(*members, strict=True))
        risk_coverage[family] = [risk_at_coverage(wrong, gate, coverage) for coverage in COVERAGES]
    checked = drawn[:stability_cases]
    labels = np.stack([c.masks.any(axis=(1, 2)) for c in checked])
    stability = stability_figures(stability_checks(predictor, np.stack([c.image for c in checked]), labels))
    return {
        "data": f"synthetic seed {seed}",
        "cases_per_shift": count,
        "shifts": shifts,
        "capture_rates": captures,
        "coverages": list(COVERAGES),
        "risk_coverage": risk_coverage,
        "stability_cases": len(checked),
        "map_stability": stability["methods"],
        "stability_separation": stability["separation"],
    }


def performing_shifts(predictor: Predictor, count: int, seed: int) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The images (N, S, S) of every shift of cases ``0..count-1`` of ``seed`` on which the model still performs
    (its error within ACCEPTABLE_EXTRA_ERROR of the clean cases'), and every shift's error: the groups whose
    images the gate's limits must keep (``medattn fit-ood``). The card's gate plays no part in it."""
    drawn = [generate_case(seed, index) for index in range(count)]
    ungated = Predictor(predictor.model, predictor.card.with_changes(unlikeness=None))
    kept, errors = {}, {}
    for shift in SHIFTS:
        images, masks = shifted_cases(shift, count, seed, drawn)
        errors[shift.name] = float(wrong_calls(ungated, images, masks)[0].mean())
        if still_reads(errors[shift.name], errors[SHIFTS[0].name]):
            kept[shift.name] = images
    return kept, errors


def table(figures: dict) -> str:
    """The figures as Markdown tables: a shift a row, then the risk-coverage curve a family a row (the
    documentation and the benchmark print them)."""
    findings = list(figures["shifts"][0]["auc"])
    head = ["shift", "family", "macro AUC", *(f"AUC {f}" for f in findings), "ECE", "macro pointing",
            *(f"pointing {f}" for f in findings), "withheld", "by distance alone", "error", "error shown",
            "gate AUROC", "verdict"]  # fmt: skip
    share = lambda value: "—" if value is None else f"{value:.0%}"  # noqa: E731
    rows = [
        [s["shift"], s["family"], f"{s['macro_auc']:.3f}", *(f"{s['auc'][f]:.3f}" for f in findings), f"{s['ece']:.3f}",
         f"{s['macro_pointing']:.2f}", *(f"{s['pointing'][f]:.2f}" for f in findings), share(s["flagged"]),
         share(s["flagged_by_distance"]), f"{s['error']:.1%}",
         "—" if s["error_shown"] is None else f"{s['error_shown']:.1%}",
         "—" if s["detection_auroc"] is None else f"{s['detection_auroc']:.2f}", s["verdict"]]
        for s in figures["shifts"]
    ]  # fmt: skip
    captures = ", ".join(f"{pair} {rate:.0%}" for pair, rate in figures["capture_rates"].items())
    coverages = figures["coverages"]
    curve = [["family", *(f"{coverage:.0%}" for coverage in coverages)]] + [
        [family, *(f"{risk:.1%}" for risk in risks)] for family, risks in figures["risk_coverage"].items()
    ]
    stability = [["finding", "map", "pairs", "median worst overlap", "stable", "answer moved"]] + [
        [finding, column, str(f["pairs"]), "—" if f["median_worst"] is None else f"{f['median_worst']:.2f}",
         f"{f['stable']:.0%}", f"{f['answer_changed']:.0%}"]
        for finding, maps in figures["map_stability"].items()
        for column, f in maps.items()
    ]  # fmt: skip
    separation = ", ".join(
        f"{finding} {'—' if auc is None else f'{auc:.2f}'}" for finding, auc in figures["stability_separation"].items()
    )
    return (
        _markdown([head, *rows])
        + f"\n\nCapture rates on the clean cases (attention peaking on another finding): {captures}"
        + "\n\nError among the images kept at each coverage, most familiar to the gate first (a family's shifts "
        + "pooled with the clean cases):\n\n"
        + _markdown(curve)
        + f"\n\nMap stability on the first {figures['stability_cases']} clean cases:\n\n"
        + _markdown(stability)
        + f"\n\nTrained attention against the randomised model's, by worst overlap (AUC): {separation}"
    )


def _markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join([lines[0], "|" + "---|" * len(rows[0]), *lines[1:]])


def inserted_lesion_pointing(
    predictor: Predictor,
    pixels: np.ndarray,
    fields: list[tuple[tuple[float, float], tuple[float, float]]],
    count: int,
    seed: int = ROBUSTNESS_SEED,
    among: int = 1,
) -> float:
    """The share of nodules inserted into a real radiograph on which the nodule attention peaks (or, with
    ``among``, has one of its ``among`` highest peaks, a token cell apart: where a reader looks first).

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
        region = dilate(distance < radius, cell)
        hits.append(any(region[peak] for peak in peaks(heat, among, cell)))
    return float(np.mean(hits))
