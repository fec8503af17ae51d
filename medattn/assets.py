"""Where the shipped assets are: models (``assets/models``), and the sample cases offered in the app.

Sample cases are synthetic radiographs with known findings (``assets/samples``, written by
``python -m medattn samples``) and real DICOM images from the installed pydicom-data package, read from
where that package puts them.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

# An installed package carries them as medattn/shipped (pyproject.toml maps assets/ there); a checkout has
# them in its top-level assets/.
_INSTALLED = Path(__file__).resolve().parent / "shipped"
ASSETS_DIR = _INSTALLED if _INSTALLED.is_dir() else Path(__file__).resolve().parent.parent / "assets"
# Every sub-folder holding a model card is offered on the Model page; MEDATTN_MODELS_DIR points elsewhere.
MODELS_DIR = Path(os.environ.get("MEDATTN_MODELS_DIR") or ASSETS_DIR / "models")
DEFAULT_MODEL_DIR = ASSETS_DIR / "models" / "default"
SAMPLES_DIR = ASSETS_DIR / "samples"

# Real files no one here wrote: label -> file name in pydicom-data.
REAL_SAMPLES = {
    "real CR chest, JPEG 2000": "RG1_J2KR.dcm",
    "real CR hand, JPEG 2000, MONOCHROME1": "RG3_J2KR.dcm",
    "real CT, JPEG 2000": "693_J2KR.dcm",
    "real MR, 10 frames, JPEG-LS": "emri_small_jpeg_ls_lossless.dcm",
    "real ultrasound, 2 frames, RLE": "OBXXXX1A_rle_2frame.dcm",
}


def models_in(directory: Path | str) -> dict[str, Path]:
    """Name -> folder of every model in ``directory``: each sub-folder holding a card, or a MONAI bundle medattn
    exported (its card in models/, medattn.model.bundle)."""
    cards = [*Path(directory).glob("*/model.json"), *Path(directory).glob("*/models/model.json")]
    folders = [card.parent.parent if card.parent.name == "models" else card.parent for card in cards]
    return {folder.name: folder for folder in sorted(folders)}


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
