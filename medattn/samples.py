"""Built-in sample cases: synthetic radiographs with known findings, shipped under ``assets/samples``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from medattn.data import FINDINGS, generate_case
from medattn.paths import SAMPLES_DIR

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


def write_samples(directory: Path | str = SAMPLES_DIR) -> list[Path]:
    """Write one 16-bit PNG per entry of SAMPLE_FINDINGS: the first benchmark case with exactly those findings."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {frozenset(f): f for f in SAMPLE_FINDINGS}
    written, index = [], 0
    while wanted:
        case = generate_case(SAMPLE_SEED, index, SAMPLE_SIZE)
        present = frozenset(FINDINGS[i] for i in np.flatnonzero(case.labels))
        if present in wanted:
            path = directory / sample_name(wanted.pop(present))
            Image.fromarray(np.round(case.image * 65535).astype(np.uint16)).save(path)
            written.append(path)
        index += 1
    return written


def list_samples(directory: Path | str = SAMPLES_DIR) -> dict[str, Path]:
    """Sample label -> path, for a picker: "Pulmonary nodule" style labels from the file names."""
    return {path.stem.removeprefix("synthetic-"): path for path in sorted(Path(directory).glob("*.png"))}
