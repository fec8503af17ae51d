"""The measured sections of a model card, typed: how the model was trained (``Training``), what ``evaluate``
measured on held-out data (``Metrics``, with ``ExplanationQuality``) and what the robustness suite measured
under realistic shifts (``Robustness``). The screens read these attributes, never the JSON's keys.

Each is read from the card's JSON by ``from_json``, which checks every field's type and names the first
wrong one in a ModelError, and written back by ``dataclasses.asdict``. A field added later to a section has
a default, so cards written before it still load.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from medattn.errors import ModelError

Section = TypeVar("Section")


@dataclass(frozen=True)
class Confusion:
    true_positive: int
    false_positive: int
    false_negative: int
    true_negative: int


@dataclass(frozen=True)
class ClassFigures:
    auc: float
    f1: float
    accuracy: float
    confusion: Confusion


@dataclass(frozen=True)
class RocCurve:
    fpr: tuple[float, ...]
    tpr: tuple[float, ...]


@dataclass(frozen=True)
class ReliabilityBin:
    predicted: float  # the bin's mean predicted probability
    observed: float  # how often the finding was present in it
    share: float  # the bin's share of every (case, finding) prediction


@dataclass(frozen=True)
class RandomisationStep:
    layer: str  # re-initialised from the top down to this layer
    rank_correlation: float  # of the maps with the trained model's


@dataclass(frozen=True)
class MethodQuality:
    """One explanation method's localisation and faithfulness figures (``medattn.explain.quality``); the
    random-order reference has deletion and insertion only."""

    overall: dict[str, float]  # pointing_game, mass_in_mask, top_region_iou, deletion_auc, insertion_auc
    per_class: dict[str, dict[str, float]]  # finding -> the same figures, and its number of cases
    seconds_per_image: float | None = None
    randomisation: tuple[RandomisationStep, ...] = ()


@dataclass(frozen=True)
class ExplanationQuality:
    data: str
    cases_per_class: int
    methods: dict[str, MethodQuality]
    random_order: MethodQuality | None = None  # hiding pixels in random order: the reference to beat
    # What localisation was measured against: "masks" (the benchmark's), or a dataset's "boxes" or "outlines"
    regions: str | None = None


@dataclass(frozen=True)
class Metrics:
    """``evaluate``'s figures on one dataset split."""

    data: str
    split: str
    cases: int
    macro_auc: float
    ece_after_calibration: float
    per_class: dict[str, ClassFigures]
    ece_before_calibration: float | None = None
    roc: dict[str, RocCurve] = field(default_factory=dict)
    reliability: dict[str, tuple[ReliabilityBin, ...]] = field(default_factory=dict)  # "before", "after"
    accuracy: float | None = None  # multi-class models: the top class against the true one
    explanations: ExplanationQuality | None = None


@dataclass(frozen=True)
class Shift:
    """One realistic shift of the benchmark and what it did to the model."""

    shift: str
    family: str
    cases: int
    macro_auc: float
    auc: dict[str, float]
    ece: float
    macro_pointing: float
    pointing: dict[str, float]
    flagged: float  # the share whose output the gate withholds (unlike the training data, or too noisy)
    verdict: str  # "holds", "flagged" or "fails silently"
    detection_auroc: float | None = None  # how well the gate's score tells it from clean cases; None for the clean one
    # Written by robustness since the gate became selective prediction (None in cards measured before): the share
    # the unlikeness distance alone would withhold, the share of images with any finding called wrongly, and that
    # share among the images shown (None where all are withheld).
    flagged_by_distance: float | None = None
    error: float | None = None
    error_shown: float | None = None


@dataclass(frozen=True)
class MapStability:
    """One map's check under changes no reader could see (medattn.explain.stability), over the (image, finding)
    pairs the model called present correctly."""

    pairs: int
    median_worst: float | None  # the median of each map's least overlap with itself; None: no change kept the answer
    stable: float  # the share called stable
    answer_changed: float  # the share where a change moved the model's answer


@dataclass(frozen=True)
class Robustness:
    data: str
    cases_per_shift: int
    shifts: tuple[Shift, ...]
    capture_rates: dict[str, float] = field(default_factory=dict)  # "a -> b": a's attention peaking on b
    # Selective prediction's view: per shift family (its shifts pooled with the clean cases), the error among the
    # images kept, most familiar to the gate first, at each of the coverages (shares kept).
    coverages: tuple[float, ...] = ()
    risk_coverage: dict[str, tuple[float, ...]] = field(default_factory=dict)
    # The map-stability check on the first ``stability_cases`` clean cases: finding -> map -> figures, and per
    # finding how well it tells the trained attention from a randomised model's (AUC; None where not measurable).
    stability_cases: int | None = None
    map_stability: dict[str, dict[str, MapStability]] = field(default_factory=dict)
    stability_separation: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Epoch:
    epoch: int
    val_macro_auc: float
    train_loss: float | None = None


@dataclass(frozen=True)
class Training:
    """What the model was trained on, how, and for how long; fields a card written by hand may lack are
    optional."""

    data: str | None = None
    validation_data: str | None = None
    train_size: int | None = None
    val_size: int | None = None
    seed: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    weight_decay: float | None = None
    max_token_weight: float | None = None
    warmup_classes: tuple[str, ...] = ()
    warmup_epochs: int | None = None
    attention_overlap_weight: float | None = None
    attention_mask_weight: float | None = None  # attention supervised by masks (medattn.training.train)
    attention_mask_share: float | None = None
    label_smoothing: float | None = None  # targets pulled from 0 and 1 (medattn.training.train)
    augmentation: dict[str, Any] | None = None  # the recipe's settings, as medattn.training.augment records them
    mixed_precision: bool | None = None  # bfloat16 under torch.autocast (medattn.training.train)
    encoder_weights: str | None = None  # the pretrained encoder weights it started from, where it did
    history: tuple[Epoch, ...] = ()
    seconds: float | None = None
    torch: str | None = None
    threads: int | None = None
    processes: int | None = None
    device: str | None = None  # "cpu" or "cuda"


def from_json(kind: type[Section], values: Any, where: str) -> Section:
    """``values`` (the card's JSON) as ``kind``; a ModelError names the first field of the wrong type, or a
    required one that is missing."""
    return _read(kind, values, where)


def _read(kind: Any, value: Any, where: str) -> Any:
    origin, arguments = typing.get_origin(kind), typing.get_args(kind)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ModelError(f"The model card's '{where}' must be a JSON object.")
        hints = typing.get_type_hints(kind)
        read = {}
        for spec in dataclasses.fields(kind):
            if spec.name in value and value[spec.name] is not None:
                read[spec.name] = _read(hints[spec.name], value[spec.name], f"{where}.{spec.name}")
            elif (
                spec.default is dataclasses.MISSING
                and spec.default_factory is dataclasses.MISSING
                and type(None) not in typing.get_args(hints[spec.name])
            ):
                raise ModelError(f"The model card has no '{where}.{spec.name}' field. Re-measure the model.")
        return kind(**read)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        return _read(next(a for a in arguments if a is not type(None)), value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ModelError(f"The model card's '{where}' must be a JSON object.")
        return {str(k): _read(arguments[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ModelError(f"The model card's '{where}' must be a list.")
        return tuple(_read(arguments[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if kind is Any:
        return value
    # JSON has no int/float distinction to trust, and bool is an int in Python: refuse it where a number is due.
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise ModelError(f"The model card's '{where}' field has the wrong type or value ({value!r:.60}).")
