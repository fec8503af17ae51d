"""The model card: a typed, validated record of what a model is, how to feed it and how well it does.

A model directory is ``model.safetensors`` (weights) + ``model.json`` (this card). The card is the one
source of truth for the classes, the task, the input size and channels, the intensity recipe, the
calibration, the unlikeness statistics and the measured figures; the network's shape is rebuilt from
it. ``ModelCard.from_dict`` refuses a card with a missing or impossible field with a ``ModelError``
that names the field, so a bad card fails on load, not halfway through a prediction.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from medattn.errors import ModelError
from medattn.model import backbones
from medattn.model.calibration import MULTI_CLASS, MULTI_LABEL
from medattn.model.figures import ExplanationQuality, Metrics, Robustness, Training, from_json
from medattn.model.network import ModelConfig
from medattn.model.preprocessing import Preprocessing

CARD_FILE = "model.json"
CARD_VERSION = 2
TASKS = (MULTI_LABEL, MULTI_CLASS)
INPUT_SIZE_RANGE = (16, 1024)
MAX_CARD_BYTES = 16 * 2**20  # the default card is 0.3 MB, its unlikeness matrix most of it


@dataclass(frozen=True)
class Architecture:
    """The network's shape beyond what the classes and the input already fix."""

    widths: tuple[int, ...]
    embed_dim: int
    heads: int
    backbone: str = backbones.OWN  # medattn.model.backbones; cards before it had medattn's own

    @classmethod
    def of(cls, config: ModelConfig) -> Architecture:
        return cls(config.widths, config.embed_dim, config.heads, config.backbone)


@dataclass(frozen=True)
class UnlikenessStatistics:
    """The training features' Gaussian, the alarm limit on the distance from it, and the limit on the input's
    relative noise (medattn.model.unlikeness; None in a card fitted before there was one: distance alone)."""

    mean: tuple[float, ...]
    precision: tuple[tuple[float, ...], ...]
    threshold: float
    held_out_alarm_rate: float
    noise_limit: float | None = None


def gate_scores(
    unlikeness: ArrayLike | None, unlikeness_limit: float | None, noise: ArrayLike | None, noise_limit: float | None
) -> np.ndarray:
    """Each image's nearest approach to withholding (medattn.model.unlikeness): its unlikeness over its limit or its
    noise over its limit, whichever is larger; np.maximum keeps a NaN. A figure or limit not recorded gates
    nothing (a card without a noise limit gates on the unlikeness alone)."""
    pairs = ((unlikeness, unlikeness_limit), (noise, noise_limit))
    ratios = [
        np.asarray(value, dtype=np.float64) / limit for value, limit in pairs if value is not None and limit is not None
    ]
    return np.maximum.reduce(ratios) if ratios else np.zeros(np.shape(unlikeness if noise is None else noise))


def withholds(gate: np.ndarray) -> np.ndarray:
    """Which gate scores withhold the output: above 1, or NaN ("not within the limit", not "beyond it")."""
    return ~(gate <= 1)


def withheld(
    unlikeness: float | None, unlikeness_limit: float | None, noise: float | None, noise_limit: float | None
) -> bool:
    """The gate for one image: a stored review, a prediction."""
    return bool(withholds(gate_scores(unlikeness, unlikeness_limit, noise, noise_limit)))


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    task: str  # "multi-label" (sigmoid, a threshold per class) or "multi-class" (softmax, the top class)
    classes: tuple[str, ...]
    display_names: dict[str, str]
    intended_use: str
    preprocessing: Preprocessing
    architecture: Architecture
    temperature: tuple[float, ...]  # one per class (multi-label) or one (multi-class)
    thresholds: tuple[float, ...]  # one per class (multi-label); empty (multi-class)
    parameters: int
    training: Training = field(default_factory=Training)  # what it was trained on, how, and for how long
    metrics: Metrics | None = None  # figures written by ``evaluate``; shown on the Model page
    unlikeness: UnlikenessStatistics | None = None
    robustness: Robustness | None = None  # figures written by ``robustness``; shown on the Model page
    # Localisation measured on other data than ``metrics`` (``evaluate --explain --add-localisation``), against
    # its boxes, outlines or masks: a public dataset's real films beside the benchmark's; one entry per data.
    localisation_elsewhere: tuple[ExplanationQuality, ...] = ()
    # Per finding, how the faithfulness check hides a region (a key of medattn.explain.faithfulness.HIDINGS),
    # chosen on validation cases by ``fit-faithfulness``; grey where a finding has none.
    faithfulness_hiding: dict[str, str] = field(default_factory=dict)
    # The SHA-256 of model.safetensors as written with this card: weights swapped or altered under a card
    # (whose figures, thresholds and alarm limit describe other weights) are refused at load.
    weights_sha256: str = ""

    @property
    def network(self) -> ModelConfig:
        """The network this card describes: input size and channels come from the preprocessing recipe."""
        return ModelConfig(
            self.classes,
            self.preprocessing.channels,
            self.preprocessing.input_size,
            self.architecture.widths,
            self.architecture.embed_dim,
            self.architecture.heads,
            self.architecture.backbone,
        )

    @property
    def title(self) -> str:
        return f"{self.name} {self.version}".strip()

    def display_name(self, class_name: str) -> str:
        return self.display_names.get(class_name, class_name)

    def with_changes(self, **changes: Any) -> ModelCard:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON values (tuples become lists), as ``model.json`` holds it."""
        return json.loads(json.dumps({"card_version": CARD_VERSION, **asdict(self)}))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelCard:
        """The card, or a ModelError naming the first field that is missing or impossible."""
        fields = _Fields(values, "")
        if fields.get("card_version", int, default=1) != CARD_VERSION:
            raise ModelError(
                f"The model card's 'card_version' is {values.get('card_version')!r}, but this medattn reads "
                f"version {CARD_VERSION}. Re-export the model with this version of medattn."
            )
        task = fields.get("task", str)
        if task not in TASKS:
            raise ModelError(f"The model card's 'task' is {task!r}; it must be one of {', '.join(TASKS)}.")
        classes = tuple(fields.get("classes", list, item=str))
        if len(classes) < (2 if task == MULTI_CLASS else 1) or len(set(classes)) != len(classes):
            raise ModelError("The model card's 'classes' must be distinct names, at least two for a multi-class model.")
        display_names = fields.get("display_names", dict)
        if not all(isinstance(v, str) for v in display_names.values()) or set(display_names) - set(classes):
            raise ModelError("The model card's 'display_names' must map the card's classes to text.")
        preprocessing = _preprocessing(fields.nested("preprocessing"))
        architecture = _architecture(fields.nested("architecture"), preprocessing.input_size)
        temperature = tuple(fields.get("temperature", list, item=(int, float)))
        if len(temperature) != (1 if task == MULTI_CLASS else len(classes)):
            raise ModelError(
                f"The model card has {len(temperature)} 'temperature' values for {len(classes)} classes "
                f"({'one' if task == MULTI_CLASS else 'one per class'} is needed)."
            )
        if not all(math.isfinite(t) and t > 0 for t in temperature):
            raise ModelError("The model card's 'temperature' values must be finite and positive.")
        thresholds = tuple(fields.get("thresholds", list, item=(int, float), default=[]))
        if task == MULTI_LABEL and len(thresholds) != len(classes):
            raise ModelError(f"The model card has {len(thresholds)} 'thresholds' for {len(classes)} classes.")
        if task == MULTI_CLASS and thresholds:
            raise ModelError("A multi-class model card has no 'thresholds': it picks the most probable class.")
        if not all(MIN_THRESHOLD <= t <= 1 - MIN_THRESHOLD for t in thresholds):
            raise ModelError(
                f"The model card's 'thresholds' must lie between {MIN_THRESHOLD} and {1 - MIN_THRESHOLD}: a "
                "calibrated threshold beyond them calls a finding (almost) always or never."
            )
        name, version = fields.get("name", str), str(fields.get("version", (str, int)))
        intended_use = fields.get("intended_use", str)
        for text in (name, version, intended_use, *display_names.values()):
            _check_plain(text)
        parameters = fields.get("parameters", int)
        return cls(
            name=name,
            version=version,
            task=task,
            classes=classes,
            display_names=display_names,
            intended_use=intended_use,
            preprocessing=preprocessing,
            architecture=architecture,
            temperature=tuple(float(t) for t in temperature),
            thresholds=tuple(float(t) for t in thresholds),
            parameters=parameters,
            training=from_json(Training, fields.get("training", dict, default={}), "training"),
            metrics=from_json(Metrics, values["metrics"], "metrics") if values.get("metrics") else None,
            unlikeness=_unlikeness(fields.nested("unlikeness")) if values.get("unlikeness") is not None else None,
            robustness=from_json(Robustness, values["robustness"], "robustness") if values.get("robustness") else None,
            localisation_elsewhere=from_json(
                tuple[ExplanationQuality, ...], values.get("localisation_elsewhere") or [], "localisation_elsewhere"
            ),
            faithfulness_hiding=_hidings(fields.get("faithfulness_hiding", dict, default={}), classes),
            weights_sha256=fields.get("weights_sha256", str, default=""),
        )


def _check_plain(text: str) -> None:
    """Card text is shown on every page and in reports: plain words only, so that no card can put a link, a
    picture or formatting beside the model's findings (Markdown and HTML are refused, not rendered)."""
    markup = sorted({c for c in text if c in MARKUP_CHARACTERS}) + (["://"] if "://" in text else [])
    if markup:
        raise ModelError(
            f"The model card's text {text[:60]!r} holds markup ({' '.join(markup)}); write its names and "
            "intended use as plain text."
        )


def read_card(directory: Path | str) -> ModelCard:
    path = Path(directory) / CARD_FILE
    try:
        size = path.stat().st_size
        if size > MAX_CARD_BYTES:
            raise ModelError(f"{path} is {size / 2**20:.0f} MB; a model card is a few hundred kB: refused unread.")
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{directory} holds no {CARD_FILE}: it is not a medattn model directory.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ModelError(f"{path} cannot be read ({error}).") from None
    except json.JSONDecodeError as error:
        raise ModelError(f"{path} is not valid JSON ({error}); re-export the model.") from None
    if not isinstance(values, dict):
        raise ModelError(f"{path} is not a model card: it holds no JSON object.")
    return ModelCard.from_dict(values)


def is_bundle(directory: Path) -> bool:
    """Whether ``directory`` is a MONAI bundle (medattn.model.bundle): its models/ holds the weights and the card."""
    return (directory / "configs" / "metadata.json").is_file()


def write_card(card: ModelCard, directory: Path | str) -> None:
    """Replace the card of a model directory (its weights are left alone). A MONAI bundle is refused: its
    metadata and TorchScript were written from the card, and would no longer say what the card says."""
    directory = Path(directory)
    if is_bundle(directory):
        raise ModelError(
            f"{directory} is a MONAI bundle: change the model directory it was exported from, then export it again."
        )
    (directory / CARD_FILE).write_text(json.dumps(card.to_dict(), indent=2) + "\n")


def held_out_wording(metrics: Metrics) -> str:
    """What the card's figures were measured on, and whether that data was truly held out."""
    where = f"Measured on {metrics.cases:,} cases of {metrics.data}"
    if metrics.split == "test":
        return f"{where}: a test split never used to train the model, pick its epoch or calibrate it."
    return (
        f"{where}: the '{metrics.split}' split, which training used (to pick the epoch, fit the temperatures "
        "or set the thresholds), so these are not held-out figures."
    )


class _Fields:
    """Typed reads from one JSON object of the card; a wrong or missing field is a ModelError naming it."""

    def __init__(self, values: Any, prefix: str):
        if not isinstance(values, dict):
            raise ModelError(f"The model card's '{prefix.rstrip('.')}' must be a JSON object.")
        self.values, self.prefix = values, prefix

    def get(self, name: str, kind: type | tuple[type, ...], item: Any = None, default: Any = ...) -> Any:
        where = self.prefix + name
        if name not in self.values or self.values[name] is None:
            if default is not ...:
                return default
            raise ModelError(f"The model card has no '{where}' field. Re-export the model with this medattn.")
        value = self.values[name]
        # JSON has no int/float distinction to trust, and bool is an int in Python: refuse it where a number is due.
        wrong = not isinstance(value, kind) or (isinstance(value, bool) and bool not in _types(kind))
        if not wrong and item is not None:
            wrong = any(not isinstance(v, item) or isinstance(v, bool) for v in value)
        if wrong:
            raise ModelError(f"The model card's '{where}' field has the wrong type or value ({value!r:.60}).")
        return value

    def nested(self, name: str) -> _Fields:
        return _Fields(self.get(name, dict), f"{self.prefix}{name}.")


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _preprocessing(fields: _Fields) -> Preprocessing:
    recipe = Preprocessing(
        input_size=fields.get("input_size", int),
        channels=fields.get("channels", int),
        low_percentile=float(fields.get("low_percentile", (int, float))),
        high_percentile=float(fields.get("high_percentile", (int, float))),
        mean=float(fields.get("mean", (int, float))),
        std=float(fields.get("std", (int, float))),
    )
    low, high = INPUT_SIZE_RANGE
    if not low <= recipe.input_size <= high:
        raise ModelError(
            f"The model card's 'preprocessing.input_size' is {recipe.input_size}; it must be {low} to {high} pixels."
        )
    if recipe.channels not in (1, 3):
        raise ModelError("The model card's 'preprocessing.channels' must be 1 (grey) or 3 (RGB).")
    if not 0 <= recipe.low_percentile < recipe.high_percentile <= 100:
        raise ModelError("The model card's 'preprocessing' percentiles must satisfy 0 <= low < high <= 100.")
    if not (math.isfinite(recipe.mean) and math.isfinite(recipe.std) and recipe.std > 0):
        raise ModelError("The model card's 'preprocessing.std' must be finite and positive, and its 'mean' finite.")
    return recipe


def _architecture(fields: _Fields, input_size: int) -> Architecture:
    architecture = Architecture(
        widths=tuple(fields.get("widths", list, item=int)),
        embed_dim=fields.get("embed_dim", int),
        heads=fields.get("heads", int),
        backbone=fields.get("backbone", str, default=backbones.OWN),
    )
    if architecture.backbone not in backbones.BACKBONES:
        raise ModelError(
            f"The model card's 'architecture.backbone' is {architecture.backbone!r}: this medattn builds "
            f"{', '.join(backbones.BACKBONES)}."
        )
    stride = ModelConfig((), widths=architecture.widths, backbone=architecture.backbone).stride
    if not architecture.widths or min(architecture.widths) < 1 or input_size % stride:
        shape = (
            f"'architecture.widths' ({len(architecture.widths)} stages) do"
            if architecture.backbone == backbones.OWN
            else f"'architecture.backbone' ({architecture.backbone}) does"
        )
        raise ModelError(
            f"The model card's {shape} not fit an input of {input_size} px: the input size must be a multiple of "
            f"{stride}."
        )
    if architecture.heads < 1 or architecture.embed_dim % architecture.heads or architecture.embed_dim % 4:
        raise ModelError("The model card's 'architecture.embed_dim' must be a multiple of 4 and of 'heads'.")
    return architecture


MIN_THRESHOLD = 0.01
MARKUP_CHARACTERS = frozenset("[]<>*_`#|\\~$")


# How the faithfulness check may hide a region: medattn.explain.faithfulness.HIDINGS's keys (a test keeps them one).
HIDING_NAMES = ("grey", "blur", "inpaint")


def _hidings(values: dict, classes: tuple[str, ...]) -> dict[str, str]:
    for finding, hiding in values.items():
        if finding not in classes or hiding not in HIDING_NAMES:
            raise ModelError(
                f"The model card's 'faithfulness_hiding' maps {finding!r} to {hiding!r}: each must be one of its "
                f"classes and one of {', '.join(HIDING_NAMES)}."
            )
    return dict(values)


def _unlikeness(fields: _Fields) -> UnlikenessStatistics:
    """Every entry finite: a NaN here would make every distance NaN, and NaN never crosses the alarm limit."""
    mean = tuple(fields.get("mean", list, item=(int, float)))
    precision = tuple(tuple(row) for row in fields.get("precision", list, item=list))
    if not mean or len(precision) != len(mean) or any(len(row) != len(mean) for row in precision):
        raise ModelError("The model card's 'unlikeness.precision' must be a square matrix the size of its mean.")
    numbers = [*mean, *(value for row in precision for value in row)]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
        raise ModelError("The model card's 'unlikeness.mean' and 'unlikeness.precision' must hold finite numbers.")
    threshold = fields.get("threshold", (int, float))
    noise_limit = fields.get("noise_limit", (int, float), default=None)  # absent from cards fitted before it
    for name, limit in (("threshold", threshold), ("noise_limit", noise_limit)):
        if limit is not None and not (math.isfinite(limit) and limit > 0):
            raise ModelError(f"The model card's 'unlikeness.{name}' must be finite and positive.")
    return UnlikenessStatistics(
        mean, precision, threshold, fields.get("held_out_alarm_rate", (int, float)), noise_limit
    )
