"""What the Review page shows, decided without Streamlit: given a prediction, the view settings and the map,
the words, levels and rows a clinician sees. The page only lays these out (``pages/views/review.py``), so every
rule here is tested in milliseconds (``tests/screens/test_review_page.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from medattn.benchmark import FINDINGS, SyntheticCase
from medattn.explain import EXPLAINERS
from medattn.explain.faithfulness import Faithfulness
from medattn.explain.overlay import PEAK_TICKS, attention_ticks, map_levels
from medattn.model.predictor import DIFFUSE_SPREAD, Heatmap, Prediction
from medattn.review.report import ReportContent
from medattn.review.text import probability

Name = Callable[[str], str]  # a finding's display name, from the model's card
NOT_MEANINGFUL = " — not meaningful for this scan"


def not_meaningful(prediction: Prediction) -> str:
    """The tag every number of a scan unlike the training data carries, or nothing."""
    return NOT_MEANINGFUL if prediction.unlike_training_data else ""


def ranked(prediction: Prediction) -> list[str]:
    """The findings, most probable first: the order of the picker, the chart and the table."""
    return sorted(prediction.probabilities, key=prediction.probabilities.get, reverse=True)


def headline(prediction: Prediction, name: Name) -> str:
    """The line above the pictures: the findings above threshold, or the most probable one."""
    if prediction.labels:
        found = ", ".join(f"{name(c)} ({probability(prediction.probabilities[c])})" for c in prediction.labels)
        return f"Findings above threshold: {found}{not_meaningful(prediction)}"
    top = prediction.top_class
    return (
        f"No finding above threshold (highest: {name(top)}, {probability(prediction.probabilities[top])})"
        f"{not_meaningful(prediction)}"
    )


def findings_summary(prediction: Prediction, name: Name) -> str:
    """One line for a list: every finding above threshold, or that there is none; or, for a scan unlike
    the training data, only that (its numbers are withheld wherever it is listed)."""
    if prediction.unlike_training_data:
        return f"Unlike the training data (unlikeness {prediction.unlikeness:.0f} > {prediction.unlikeness_limit:.0f})"
    if prediction.labels:
        return ", ".join(f"{name(c)} {probability(prediction.probabilities[c])}" for c in prediction.labels)
    top = prediction.top_class
    return f"No finding above threshold (highest: {name(top)} {probability(prediction.probabilities[top])})"


@dataclass(frozen=True)
class ScaledMap:
    """A map's colour levels (0..1, on the map's own grid) on the chosen scale, its colour bar's ticks and
    the caption under the bar."""

    levels: np.ndarray
    ticks: list | tuple
    caption: str


def on_scale(heatmap: Heatmap, model_wide: bool) -> ScaledMap:
    """Attention on the model-wide scale has a meaning on every scan; every other map, or attention asked
    for relative to its peak, is stretched to its own maximum, and the caption says which."""
    levels = map_levels(heatmap, model_wide=model_wide)
    if model_wide and heatmap.peak_times_uniform is not None:
        return ScaledMap(
            levels, attention_ticks(), "Attention relative to uniform (1x: spread evenly), on one scale for every scan"
        )
    caption = f"{EXPLAINERS[heatmap.method].title} relative to this map's own peak" + (
        "" if heatmap.peak_times_uniform is not None else " (it has no model-wide scale)"
    )
    return ScaledMap(levels, PEAK_TICKS, caption)


def diffuse_notice(prediction: Prediction, method: str, finding: str, name: Name) -> str | None:
    """Why no map is painted, where the attention is spread over most of the image; None where it is focal
    (or the map is not the attention)."""
    spread = prediction.spread.get(finding, 0.0) if method == "attention" else 0.0
    if spread <= DIFFUSE_SPREAD:
        return None
    return (
        f"The attention for {name(finding)} is diffuse: spread over {spread:.0%} of the image, with no focal "
        "point. There is nothing local to show, so no map is painted."
    )


@dataclass(frozen=True)
class Unpainted:
    """Why a map is not painted by default, and the switch that paints it anyway."""

    reason: str
    reveal: str  # the switch's label
    key: str  # the switch's key prefix


def unpainted(prediction: Prediction, method: str, finding: str, name: Name) -> list[Unpainted]:
    """Why the map of ``finding`` is not painted unless the reader asks, in the order they are asked: a finding
    the model calls absent (its map shows where the model looked, and a hot spot on a normal scan reads as "the
    AI found something"), then a diffuse attention. Empty where the map is painted at once."""
    reasons = []
    if finding not in prediction.labels:
        reasons.append(
            Unpainted(
                f"The model does not call {name(finding)} present, so its map is not painted: the map of an "
                "absent finding shows where the model looked, not a lesion.",
                f"Show where the model looked for {name(finding)}",
                "absent",
            )
        )
    diffuse = diffuse_notice(prediction, method, finding, name)
    if diffuse:
        reasons.append(Unpainted(diffuse, "Paint the diffuse map anyway", "diffuse"))
    return reasons


def overlay_caption(prediction: Prediction, method: str, finding: str, name: Name) -> str:
    """The caption under the overlay: which map of which finding, and whether the model calls it present."""
    absent = "" if finding in prediction.labels else " (finding not present — where the model looked)"
    return f"{EXPLAINERS[method].title} overlay — {name(finding)}{absent}{not_meaningful(prediction)}"


def thumbnail_caption(prediction: Prediction, method: str, finding: str, name: Name) -> str:
    """A small map's caption in the side-by-side comparison of every finding."""
    return f"{EXPLAINERS[method].title} — {name(finding)}" + ("" if finding in prediction.labels else " (not present)")


@dataclass(frozen=True)
class FaithfulnessVerdict:
    """The faithfulness check in words: ``relies`` is True where the model relies on the highlighted region,
    False where it does not, None where no check was run (``text`` then says why)."""

    relies: bool | None
    text: str


def unchecked_reason(prediction: Prediction, painted: bool, finding: str) -> str | None:
    """Why the map on screen gets no faithfulness check, or None where it gets one."""
    if prediction.unlike_training_data:
        return "The faithfulness check is not run on a scan unlike the training data."
    if finding not in prediction.labels:
        return "The faithfulness check tests the map of a finding the model calls present."
    if not painted:
        return "No map is painted, so there is no highlighted region to check."
    return None


def faithfulness_verdict(check: Faithfulness, finding_name: str) -> FaithfulnessVerdict:
    """The check's outcome as the page says it. Probabilities near 0 or 1 get two decimals, so that 99.99%
    to 99.54% does not read as 100% to 100%."""
    share, worst = f"{check.region_fraction:.0%}", float(check.random_falls.max())
    before, after = (
        f"{q:.0%}" if 0.01 <= q <= 0.99 else f"{q:.2%}" for q in (check.probability, check.hidden_probability)
    )
    hidden = f"from {before} to {after} ({check.fall:+.1f} log-odds fall)"
    places = len(check.random_falls)
    if check.relies_on_region:
        return FaithfulnessVerdict(
            True,
            f"**Faithfulness check: the model relies on the highlighted region.** Hiding the hottest {share} of the "
            f"image lowers {finding_name} {hidden}; hiding the same region at {places} random places lowered it by "
            f"at most {worst:+.1f}.",
        )
    return FaithfulnessVerdict(
        False,
        f"**Faithfulness check: the model does not rely on the highlighted region alone.** Hiding the hottest "
        f"{share} of the image changes {finding_name} {hidden}, and hiding the same region at "
        f"{check.places_as_damaging} of {places} random places lowered it as much or more. Read this map with care.",
    )


@dataclass(frozen=True)
class GroundTruth:
    """A shipped synthetic sample's truth as the page shows it: the caption, and where the finding on screen
    truly lies (bool, the sample's own grid), or None where it is absent."""

    caption: str
    region: np.ndarray | None


def ground_truth(truth: SyntheticCase, shown: str, name: Name) -> GroundTruth:
    """What the ground-truth switch shows for the map of ``shown``: the sample's findings, and the outline."""
    present = [name(f) for f, on in zip(FINDINGS, truth.labels, strict=True) if on]
    masks = dict(zip(FINDINGS, truth.masks, strict=True))
    region = masks.get(shown)
    return GroundTruth(
        f"Ground truth of this synthetic sample: {', '.join(present) or 'no finding'}. "
        f"The green outline is where {name(shown)} truly lies, when present.",
        region if region is not None and region.any() else None,
    )


def probability_rows(prediction: Prediction, name: Name) -> list[dict]:
    """The probability chart's and table's rows, most probable first; a scan unlike the training data has
    every call marked not meaningful."""
    return [
        {
            "Finding": name(c),
            "Probability": prediction.probabilities[c],
            "Threshold": prediction.thresholds.get(c),
            "Call": "not meaningful"
            if prediction.unlike_training_data
            else "positive"
            if c in prediction.labels
            else "negative",
        }
        for c in ranked(prediction)
    ]


def model_call(prediction: Prediction, finding: str) -> str:
    """The model's call on a finding, as the review form puts it beside the reader's verdict."""
    call = "present" if finding in prediction.labels else "absent"
    return f"the model says {call} ({probability(prediction.probabilities[finding])}{not_meaningful(prediction)})"


def report_content(
    prediction: Prediction,
    name: Name,
    model: str,
    image: np.ndarray,
    map_shown: tuple[np.ndarray, str] | None,
    scan_key: str,
    pixels_withheld: bool,
) -> ReportContent:
    """The PNG or PDF report of what is on screen: the image, the overlay and its caption, every finding's
    probability, the model, and the warning of a scan unlike the training data. ``map_shown`` is None where
    the screen withholds the model's output: the report then withholds the map and every number too, and
    says why in their place."""
    overlay, explanation = map_shown if map_shown else (None, "Withheld: unlike the training data")
    return ReportContent(
        image=image,
        overlay=overlay,
        probabilities={name(c): prediction.probabilities[c] for c in ranked(prediction)} if map_shown else {},
        thresholds={name(c): t for c, t in prediction.thresholds.items()},
        model=model,
        explanation=explanation,
        scan_key=scan_key,
        created=datetime.now(UTC),
        pixels_withheld=pixels_withheld,
        unlike_training_data=prediction.unlikeness_warning,
    )
