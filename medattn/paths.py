"""Where the package finds its shipped assets (the repository's ``assets/`` folder)."""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
MODELS_DIR = ASSETS_DIR / "models"
DEFAULT_MODEL_DIR = MODELS_DIR / "default"
SAMPLES_DIR = ASSETS_DIR / "samples"
