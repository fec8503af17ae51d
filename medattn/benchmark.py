"""Built-in synthetic chest-radiograph benchmark with a ground-truth mask for every finding.

Each case is drawn from its own random stream, keyed by ``(seed, index)``, so case 17 of seed 0
is the same image whether 20 or 20 000 cases are generated. Anatomy (lungs, heart, mediastinum,
ribs, clavicles, diaphragm, hilar vessels) varies in size and position, and look-alike
distractors (end-on vessels, rib crossings) sit where a lazy model would mistake them for
nodules; exposure, gamma and film noise vary so that global brightness gives nothing away.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from medattn.assets import SAMPLES_DIR

FINDINGS: tuple[str, ...] = ("nodule", "effusion", "cardiomegaly")
PREVALENCE = {"nodule": 0.4, "effusion": 0.3, "cardiomegaly": 0.3}


@dataclass(frozen=True)
class SyntheticCase:
    """One synthetic radiograph: ``image`` float32 (S, S) in [0, 1], ``masks`` bool (findings, S, S)."""

    image: np.ndarray
    masks: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        return self.masks.any(axis=(1, 2)).astype(np.float32)


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size
    return np.meshgrid(axis, axis, indexing="xy")  # x, y in [0, 1]


def _ellipse(x, y, cx, cy, rx, ry, edge: float) -> np.ndarray:
    """Soft ellipse membership in [0, 1]; ``edge`` is the blur width in image units."""
    r = np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
    return np.clip((1.0 - r) * min(rx, ry) / edge + 0.5, 0.0, 1.0)


def _segment_distance(x, y, x0, y0, x1, y1) -> np.ndarray:
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(x - (x0 + t * dx), y - (y0 + t * dy))


# Subtler findings for the robustness suite: the same draws from narrower ranges near the edge of visibility
# (or, for the heart, near the cardiothoracic ratio that separates the labels), so every other part of a case
# stays as it was.
SUBTLE_RANGES = {
    "nodule_radius": (0.012, 0.02),
    "nodule_contrast": (0.06, 0.1),
    "effusion_depth": (0.03, 0.06),
    "enlarged_ctr": (0.55, 0.58),
    "normal_ctr": (0.45, 0.48),
}
RANGES = {
    "nodule_radius": (0.02, 0.045),
    "nodule_contrast": (0.12, 0.22),
    "effusion_depth": (0.07, 0.15),
    "enlarged_ctr": (0.55, 0.68),
    "normal_ctr": (0.38, 0.48),
}
SUBTLE_FOR = {"nodule": ("nodule_radius", "nodule_contrast"), "effusion": ("effusion_depth",),
              "cardiomegaly": ("enlarged_ctr", "normal_ctr")}  # fmt: skip


def generate_case(seed: int, index: int, size: int = 128, subtle: tuple[str, ...] = ()) -> SyntheticCase:
    """Draw case ``index`` of benchmark ``seed`` at ``size`` x ``size`` pixels; the findings named in
    ``subtle`` are drawn from ``SUBTLE_RANGES``."""
    rng = np.random.default_rng([seed, index])
    ranges = RANGES | {name: SUBTLE_RANGES[name] for finding in subtle for name in SUBTLE_FOR[finding]}
    x, y = _grid(size)
    px = 1.0 / size
    edge = 1.5 * px
    has = {name: rng.random() < p for name, p in PREVALENCE.items()}

    # Anatomy. Positions are in image units; the patient's left is the image's right.
    cx = 0.5 + rng.normal(0, 0.02)
    body = _ellipse(x, y, cx, 0.58, rng.uniform(0.43, 0.49), 0.62, 4 * px)
    lung_y = 0.44 + rng.normal(0, 0.02)
    lung_rx, lung_ry = rng.uniform(0.12, 0.16), rng.uniform(0.25, 0.30)
    lung_dx = rng.uniform(0.17, 0.21)
    lung_centres = [(cx - lung_dx, lung_y), (cx + lung_dx, lung_y)]
    lungs = [_ellipse(x, y, lx, ly, lung_rx * rng.uniform(0.93, 1.07), lung_ry, edge) for lx, ly in lung_centres]
    lung = np.maximum(*lungs)

    heart_cx, heart_cy = cx + rng.uniform(0.03, 0.07), lung_y + lung_ry * rng.uniform(0.45, 0.6)
    thorax_width = 2 * (lung_dx + lung_rx)
    # Cardiothoracic ratio: normal 0.38-0.48, enlarged 0.55-0.68, so size alone decides the label.
    ctr = rng.uniform(*ranges["enlarged_ctr"]) if has["cardiomegaly"] else rng.uniform(*ranges["normal_ctr"])
    heart_rx = ctr * thorax_width / 2
    heart_ry = rng.uniform(0.11, 0.14) + 0.3 * (heart_rx - 0.13)
    heart = _ellipse(x, y, heart_cx, heart_cy, heart_rx, heart_ry, edge)

    image = 0.04 + 0.34 * body
    image += 0.1 * np.clip((y - (lung_y + lung_ry * 0.85)) / 0.05, 0, 1) * body  # abdomen
    image -= 0.24 * lung * (1 - heart)
    spine = np.clip(1 - np.abs(x - cx) / 0.045, 0, 1) ** 0.5 * (y > 0.12) * body
    image = np.maximum(image, 0.36 * spine)
    image = np.maximum(image, (0.4 + rng.uniform(-0.03, 0.03)) * heart)

    # Ribs: one periodic band pattern bent into arcs that slope down laterally.
    rib_y = y - 0.33 * np.abs(x - cx) + 0.6 * (x - cx) ** 2
    spacing = rng.uniform(0.062, 0.075)
    phase = ((rib_y - rng.uniform(0, spacing)) / spacing) % 1.0
    ribs = np.clip(1 - np.abs(phase - 0.5) / 0.09, 0, 1) * (np.abs(x - cx) > 0.05)
    image += rng.uniform(0.05, 0.09) * ribs * body * (y < lung_y + lung_ry)
    for side in (-1, 1):
        x0, y0 = cx + side * 0.05, rng.uniform(0.15, 0.19)
        x1, y1 = cx + side * rng.uniform(0.3, 0.36), y0 - rng.uniform(0.02, 0.06)
        clavicle = _segment_distance(x, y, x0, y0, x1, y1) < rng.uniform(0.011, 0.016)
        image += 0.08 * clavicle

    # Hilar vessels and end-on vessels: thin lines and small dots, the nodule look-alikes.
    for lx, ly in lung_centres:
        hilum_x = cx + np.sign(lx - cx) * 0.09
        for _ in range(rng.integers(3, 6)):
            angle = rng.uniform(-1.2, 1.2) + (0 if lx > cx else np.pi)
            length = rng.uniform(0.06, 0.14)
            end_x, end_y = hilum_x + length * np.cos(angle), ly + length * np.sin(angle)
            vessel = _segment_distance(x, y, hilum_x, ly, end_x, end_y)
            image += 0.045 * np.clip(1 - vessel / (1.2 * px), 0, 1) * lung
    for _ in range(rng.integers(2, 6)):
        dot_x, dot_y = _point_in(lung * (1 - heart), rng, x, y)
        image += rng.uniform(0.04, 0.08) * _ellipse(x, y, dot_x, dot_y, 1.3 * px, 1.3 * px, px)

    masks = np.zeros((len(FINDINGS), size, size), dtype=bool)
    if has["nodule"]:
        for _ in range(rng.choice([1, 1, 1, 2])):
            nx, ny = _point_in(lung * (1 - heart) > 0.9, rng, x, y)
            radius = rng.uniform(*ranges["nodule_radius"])
            fuzzy = rng.random() < 0.5
            blob = (
                np.exp(-(((x - nx) ** 2 + (y - ny) ** 2) / (2 * (0.6 * radius) ** 2)))
                if fuzzy
                else _ellipse(x, y, nx, ny, radius, radius * rng.uniform(0.85, 1.15), edge)
            )
            image += rng.uniform(*ranges["nodule_contrast"]) * blob
            masks[0] |= np.hypot(x - nx, y - ny) < radius
    if has["effusion"]:
        sides = [[0], [1], [0, 1]][rng.integers(3)]
        for side in sides:
            (lx, ly), this_lung = lung_centres[side], lungs[side]
            depth = rng.uniform(*ranges["effusion_depth"])
            level = ly + lung_ry - depth
            # The meniscus climbs laterally, blunting the costophrenic angle.
            lateral = np.clip((x - lx) * (1 if lx > cx else -1) / lung_rx, 0, 1)
            fluid = np.clip((y - (level - 0.6 * depth * lateral**2)) / (2 * px), 0, 1) * this_lung
            fluid *= 1 - heart
            image += (0.24 + rng.uniform(-0.03, 0.03)) * fluid
            masks[1] |= fluid > 0.5
    if has["cardiomegaly"]:
        masks[2] = heart > 0.5

    # Acquisition: exposure, gamma, film noise with some low-frequency mottle, blur.
    noise = rng.normal(0, rng.uniform(0.01, 0.03), (size, size)).astype(np.float32)
    mottle = cv2.GaussianBlur(rng.normal(0, 0.1, (size, size)).astype(np.float32), (0, 0), size / 16)
    image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 0.6 * size / 128) + noise + mottle
    image = np.clip(image * rng.uniform(0.8, 1.2) + rng.uniform(-0.08, 0.08), 0, 1)
    image = image ** rng.uniform(0.8, 1.25)
    return SyntheticCase(image=image.astype(np.float32), masks=masks)


def _point_in(region: np.ndarray, rng: np.random.Generator, x: np.ndarray, y: np.ndarray):
    """A random point (x, y) in image units where ``region`` is positive."""
    candidates = np.flatnonzero(region > 0.5)
    pick = candidates[rng.integers(len(candidates))]
    return float(x.flat[pick]), float(y.flat[pick])


def subtle_findings(seed: int, index: int, share: float, findings: tuple[str, ...] = FINDINGS) -> tuple[str, ...]:
    """Which of ``findings`` case ``index`` of ``seed`` draws subtler, each with probability ``share``. The choice
    comes from a stream of its own, so every other draw of the case stays as it was."""
    if share <= 0:
        return ()
    rng = np.random.default_rng([seed, index, 1])
    # One draw per finding of the benchmark, whichever are asked for: a finding's choice never depends on ``findings``.
    return tuple(finding for finding in FINDINGS if rng.random() < share and finding in findings)


def generate(
    seed: int,
    count: int,
    size: int = 128,
    start: int = 0,
    subtle_share: float = 0.0,
    subtle: tuple[str, ...] = FINDINGS,
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` cases stacked: images (n, S, S) float32 and masks (n, findings, S, S) bool. With
    ``subtle_share``, each of the ``subtle`` findings is drawn from ``SUBTLE_RANGES`` with that probability."""
    cases = [
        generate_case(seed, index, size, subtle_findings(seed, index, subtle_share, subtle))
        for index in range(start, start + count)
    ]
    return np.stack([c.image for c in cases]), np.stack([c.masks for c in cases])


# The app's synthetic sample cases (assets/samples), drawn from the benchmark at a larger size.
SAMPLE_SEED, SAMPLE_SIZE = 2000, 512
# The finding sets the samples show, one file each; "normal" is the empty set.
SAMPLE_FINDINGS: tuple[tuple[str, ...], ...] = (
    ("nodule",),
    ("effusion",),
    ("cardiomegaly",),
    ("nodule", "effusion"),
    (),
)


def sample_name(findings: tuple[str, ...]) -> str:
    return "synthetic-" + ("-".join(findings) if findings else "normal") + ".png"


def sample_cases() -> dict[str, SyntheticCase]:
    """File name -> case, per entry of SAMPLE_FINDINGS: the first benchmark case with exactly those findings.
    Drawn again, so the samples' true findings and masks need not be stored beside them."""
    wanted = {frozenset(f): f for f in SAMPLE_FINDINGS}
    cases, index = {}, 0
    while wanted:
        case = generate_case(SAMPLE_SEED, index, SAMPLE_SIZE)
        present = frozenset(FINDINGS[i] for i in np.flatnonzero(case.labels))
        if present in wanted:
            cases[sample_name(wanted.pop(present))] = case
        index += 1
    return cases


def sample_pixels(case: SyntheticCase) -> np.ndarray:
    """A sample's pixels as written: 16-bit, so that the file decodes to the case's image."""
    return np.round(case.image * 65535).astype(np.uint16)


def write_samples(directory: Path | str = SAMPLES_DIR) -> list[Path]:
    """Write one 16-bit PNG per entry of SAMPLE_FINDINGS (see ``sample_cases``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, case in sample_cases().items():
        Image.fromarray(sample_pixels(case)).save(directory / name)
        written.append(directory / name)
    return written
