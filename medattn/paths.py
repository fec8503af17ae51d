"""Where the package finds its shipped assets (the repository's ``assets/`` folder)."""

import os
from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
# Every sub-folder holding a model card is offered on the Model page; MEDATTN_MODELS_DIR points elsewhere.
MODELS_DIR = Path(os.environ.get("MEDATTN_MODELS_DIR") or ASSETS_DIR / "models")
DEFAULT_MODEL_DIR = ASSETS_DIR / "models" / "default"
SAMPLES_DIR = ASSETS_DIR / "samples"
