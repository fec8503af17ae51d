"""A model as a MONAI bundle, the field's way of moving a model between tools (MONAI Deploy, MONAI Label).

``export_bundle`` lays a model directory out as MONAI's own ``init_bundle`` makes one: ``configs/metadata.json``
(what the network takes and gives, its classes, calibration and intended use), ``configs/inference.json`` (the
network as MONAI's config parser builds it, with medattn installed), ``docs/README.md``, and in ``models/`` the
network as TorchScript (``model.ts``, the metadata inside it, written by MONAI's ``save_net_with_metadata`` as its
``ckpt_export`` does) beside medattn's own ``model.safetensors`` and card, so that medattn serves a bundle as it
is (``checkpoint.load_model``). No ``model.pt``: that is a pickle, and medattn loads no weights by unpickling.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from medattn.errors import ModelError
from medattn.model.card import CARD_FILE, ModelCard
from medattn.model.checkpoint import WEIGHTS_FILE, load_model

TORCHSCRIPT = "models/model.ts"


def metadata(card: ModelCard) -> dict:
    """The bundle's metadata.json: MONAI's fields, and medattn's calibration and preprocessing beside them."""
    import monai

    recipe, size, grid = card.preprocessing, card.preprocessing.input_size, card.network.grid_size
    return {
        "version": card.version,
        "changelog": {card.version: f"exported by medattn from {card.name}"},
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": np.__version__,
        "required_packages_version": {"medattn": _medattn_version()},
        "task": f"Chest radiograph findings ({card.task}): {', '.join(card.display_name(c) for c in card.classes)}",
        "description": card.intended_use,
        "authors": "medattn",
        "copyright": "See the medattn project's licence",
        "data_source": card.training.data or "not recorded",
        "intended_use": card.intended_use,
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "modality": "xray",
                    "num_channels": recipe.channels,
                    "spatial_shape": [size, size],
                    "dtype": "float32",
                    "value_range": [],  # standardised by medattn's recipe (below), not a fixed range
                    "is_patch_data": False,
                    "channel_def": {str(c): "image" for c in range(recipe.channels)},
                }
            },
            "outputs": {
                "pred": {
                    "type": "logits",
                    "format": "classes",
                    "num_channels": len(card.classes),
                    "spatial_shape": [len(card.classes)],
                    "dtype": "float32",
                    "value_range": [],
                    "is_onehot": False,
                    "channel_def": dict(enumerate(card.classes)),
                },
                "attention": {
                    "type": "image",
                    "format": "attention",
                    "num_channels": len(card.classes),
                    "spatial_shape": [grid, grid],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": False,
                    "channel_def": dict(enumerate(card.classes)),
                },
            },
        },
        "medattn": {
            "preprocessing": asdict(recipe),
            "temperature": list(card.temperature),
            "thresholds": list(card.thresholds),
            "note": "model.ts returns (logits, attention); probabilities are sigmoid(logits / temperature) "
            "(softmax for a multi-class model), called above the thresholds; the input is the image letterboxed "
            "into the square and standardised by 'preprocessing', as medattn.model.preprocessing does.",
        },
    }


def export_bundle(model_directory: Path, bundle_directory: Path) -> Path:
    """Write the model in ``model_directory`` as a MONAI bundle in ``bundle_directory`` (which must not exist)."""
    from monai.bundle.scripts import init_bundle
    from monai.data.torchscript_utils import save_net_with_metadata

    model, card = load_model(model_directory)
    if bundle_directory.exists():
        raise ModelError(f"{bundle_directory} exists already: give a new folder for the bundle.")
    bundle_directory.parent.mkdir(parents=True, exist_ok=True)  # MONAI's init_bundle makes only the last folder
    described = metadata(card)
    network = {"_target_": "medattn.model.network.AttentionNet", "config": {
        "_target_": "medattn.model.network.ModelConfig", **asdict(card.network)}}  # fmt: skip
    init_bundle(bundle_directory, metadata_str=described, inference_str={"network_def": network})
    size = card.preprocessing.input_size
    with warnings.catch_warnings():  # torch.jit is deprecated in favour of torch.export; MONAI Deploy loads TorchScript
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model.eval(), torch.zeros(1, card.preprocessing.channels, size, size))
        save_net_with_metadata(traced, str(bundle_directory / TORCHSCRIPT).removesuffix(".ts"), meta_values=described)
    for name in (WEIGHTS_FILE, CARD_FILE):
        shutil.copyfile(model_directory / name, bundle_directory / "models" / name)
    (bundle_directory / "docs" / "README.md").write_text(
        f"# {card.name} {card.version}\n\n{card.intended_use}\n\n"
        f"Exported by medattn. `models/model.ts` takes a {size} x {size} image standardised as `configs/metadata.json` "
        "says under `medattn.preprocessing`, and returns the findings' logits and the attention each finding pooled "
        "its evidence with. medattn serves this folder as it is: `medattn score --model BUNDLE`, and the app "
        "offers it from its models folder.\n"
    )
    return bundle_directory


def _medattn_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("medattn")
    except PackageNotFoundError:  # run from a checkout
        return "checkout"
