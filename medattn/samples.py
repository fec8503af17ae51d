"""Sample cases: synthetic radiographs with known findings (``assets/samples``), and real DICOM images
from the installed pydicom-data package, read from where that package puts them.
"""

from __future__ import annotations

from importlib.util import find_spec
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


# Real files no one here wrote: label -> file name in pydicom-data.
REAL_SAMPLES = {
    "real CR chest, JPEG 2000": "RG1_J2KR.dcm",
    "real CR hand, JPEG 2000, MONOCHROME1": "RG3_J2KR.dcm",
    "real CT, JPEG 2000": "693_J2KR.dcm",
    "real MR, 10 frames, JPEG-LS": "emri_small_jpeg_ls_lossless.dcm",
    "real ultrasound, 2 frames, RLE": "OBXXXX1A_rle_2frame.dcm",
}


def synthetic_samples(directory: Path | str = SAMPLES_DIR) -> dict[str, Path]:
    """Label -> path: "nodule", "nodule-effusion", "normal"… from the file names."""
    return {path.stem.removeprefix("synthetic-"): path for path in sorted(Path(directory).glob("*.png"))}


def real_samples() -> dict[str, Path]:
    """Label -> path of the real DICOM samples, or nothing where pydicom-data is not installed."""
    spec = find_spec("data_store")
    if spec is None or spec.origin is None:
        return {}
    data = Path(spec.origin).parent / "data"
    return {label: data / name for label, name in REAL_SAMPLES.items() if (data / name).exists()}


def all_samples() -> dict[str, Path]:
    """Every sample for a picker: "synthetic nodule"…, then the real files' labels."""
    return {f"synthetic {name}": path for name, path in synthetic_samples().items()} | real_samples()
