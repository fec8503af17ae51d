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
from medattn.explain.faithfulness import RANDOM_REGIONS, VISIBLE_CHANGE, Faithfulness, Verdict
from medattn.explain.overlay import PEAK_TICKS, attention_ticks, map_levels
from medattn.explain.stability import SAME_PREDICTION, TOP_SHARE, Stability
from medattn.model.card import ModelCard
from medattn.model.predictor import DIFFUSE_SPREAD, Heatmap, Prediction
from medattn.review.report import ReportContent
from medattn.review.text import probability
from medattn.screens import model_page

Name = Callable[[str], str]  # a finding's display name, from the model's card
NOT_MEANINGFUL = " — not meaningful for this scan"


def not_meaningful(prediction: Prediction) -> str:
    """The tag every number of a scan unlike the training data carries, or nothing."""
    return NOT_MEANINGFUL if prediction.unlike_training_data else ""


def ranked(prediction: Prediction) -> list[str]:
    """The findings, most probable first: the order of the picker, the chart and the table."""
    return sorted(prediction.probabilities, key=prediction.probabilities.get, reverse=True)


def called(prediction: Prediction) -> list[str]:
    """The findings above threshold, most probable first, as the chart lists them."""
    return [c for c in ranked(prediction) if c in prediction.labels]


def headline(prediction: Prediction, name: Name) -> str:
    """The line above the pictures: the findings above threshold, or the most probable one."""
    if prediction.labels:
        found = ", ".join(f"{name(c)} ({probability(prediction.probabilities[c])})" for c in called(prediction))
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
        return prediction.gate_reason
    if prediction.labels:
        return ", ".join(f"{name(c)} {probability(prediction.probabilities[c])}" for c in called(prediction))
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


def empty_map_notice(heatmap: Heatmap, card: ModelCard, name: Name) -> str | None:
    """Why a method paints nothing for a finding on this scan, and how often it does on the benchmark; None
    where the map has heat. An overlay identical to the scan, with no word of why, read as a rendering fault."""
    if (heatmap.values > 0).any():
        return None
    explainer, finding = EXPLAINERS[heatmap.method], name(heatmap.class_name)
    notice = f"{explainer.title} paints nothing for {finding} on this image: {explainer.when_empty}"
    figures = model_page.explanation_figures(card).get(heatmap.method)
    share = figures.per_class.get(heatmap.class_name, {}).get("empty_maps") if figures else None
    if share is not None:
        notice += f" Its map of {finding} is empty on {share:.0%} of the benchmark's cases with {finding} (Model page)."
    return notice


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
    """The faithfulness check's outcome and the words the page says it in."""

    verdict: Verdict
    text: str


def unchecked_reason(prediction: Prediction, painted: bool, finding: str) -> str | None:
    """Why the map on screen gets no faithfulness check, or None where it gets one."""
    if prediction.unlike_training_data:
        return (
            "The faithfulness check is not run on a scan whose output is withheld (unlike the training data, or "
            "too noisy)."
        )
    if finding not in prediction.labels:
        return "The faithfulness check tests the map of a finding the model calls present."
    if not painted:
        return "No map is painted, so there is no highlighted region to check."
    return None


@dataclass(frozen=True)
class StabilityWording:
    """The map-stability check's outcome in a reader's words: ``steady`` or a caution, the page's ``text``, and
    what the report's caption adds to the map's name (empty where the map holds)."""

    steady: bool
    text: str
    in_report: str = ""


def stability_wording(check: Stability, finding_name: str) -> StabilityWording:
    """What the map-stability check says of the map on screen; the changes it made, named as a reader would."""
    made = "noise, a one-pixel shift, JPEG re-encoding"
    moved = ""
    if check.answer_changed:
        moved = (
            f" The model's own answer for {finding_name} moved by {SAME_PREDICTION:.0%} points or more under "
            f"{_listed(check.answer_changed)}: read its probability as less certain than it looks."
        )
    if check.worst is None:
        return StabilityWording(
            False,
            f"**Map stability: cannot tell.** Every change no reader could see ({made}) moved the model's answer, "
            f"so the map was not compared with itself.{moved}",
            "the model's answer moves under changes no reader could see",
        )
    least = min(check.overlaps, key=check.overlaps.get)
    if check.stable:
        return StabilityWording(
            not moved,
            f"**Map stability: holds.** Its hottest {TOP_SHARE:.0%} stays in place when the image is changed in "
            f"ways no reader could see ({made}): {check.worst:.0%} overlap at worst. A steady map is not by that a "
            f"faithful one: the faithfulness check says whether the model relies on it.{moved}",
            "" if not moved else "the model's answer moves under changes no reader could see",
        )
    return StabilityWording(
        False,
        f"**Map stability: it moves.** When the image is changed in ways no reader could see ({made}), its hottest "
        f"{TOP_SHARE:.0%} overlaps itself by as little as {check.worst:.0%} ({least}). Read where it points with "
        f"caution.{moved}",
        "the map moves under changes no reader could see",
    )


def _listed(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def faithfulness_verdict(check: Faithfulness, finding_name: str) -> FaithfulnessVerdict:
    """The check's outcome in a clinician's words: probabilities as the rest of the page writes them (never
    "100%"), no log-odds, and "cannot tell" where nothing hidden moves the finding visibly."""
    verdict, before, after = check.verdict, probability(check.probability), probability(check.hidden_probability)
    how = {"grey": "", "blur": ", blurred", "inpaint": ", filled in from its surroundings"}[check.hiding]
    area = f"the highlighted area (the hottest {check.region_fraction:.0%} of the image{how})"
    places = len(check.random_falls)
    if verdict is Verdict.RELIES:
        lowest = probability(float(check.random_probabilities.min()))
        text = (
            f"**Faithfulness check: the model relies on the highlighted area.** Hiding {area} lowers "
            f"{finding_name} from {before} to {after}; hiding an area of the same shape at {places} other places "
            f"left it {'above 99%' if lowest == probability(1.0) else f'at {lowest} or more'}."
        )
    elif verdict is Verdict.CANNOT_TELL and places < RANDOM_REGIONS:
        text = (
            f"**Faithfulness check: cannot tell.** {area[0].upper()}{area[1:]} is too large to be placed "
            "elsewhere in the image for comparison."
        )
    elif verdict is Verdict.CANNOT_TELL:
        text = (
            f"**Faithfulness check: cannot tell.** Hiding {area} takes {finding_name} from {before} to {after}, "
            f"and hiding an area of the same shape at {places} other places changes it by under "
            f"{VISIBLE_CHANGE:.0%} points too: the model has evidence for {finding_name} beyond any one area this "
            "size, so this check cannot say whether the map shows it."
        )
    elif check.fall <= 0:
        text = (
            f"**Faithfulness check: the model does not rely on the highlighted area.** Hiding {area} does not lower "
            f"{finding_name}: it goes from {before} to {after}. Read this map with care: it does not show where "
            f"the model's evidence for {finding_name} is."
        )
    else:
        lowest = probability(float(check.random_probabilities.min()))
        text = (
            f"**Faithfulness check: the map does not single out what the model relies on.** Hiding {area} lowers "
            f"{finding_name} from {before} to {after}, but hiding an area of the same shape at "
            f"{check.places_as_damaging} of {places} other places lowered it as much or more (to {lowest} at "
            "the lowest). Read this map with care."
        )
    return FaithfulnessVerdict(verdict, text)


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


def probability_table(prediction: Prediction, name: Name) -> list[dict]:
    """The table under the chart: the same rows, with probabilities written as every heading writes them (the
    table said 99.95% under a heading saying 100%) and thresholds in whole percent."""
    return [
        row | {"Probability": probability(row["Probability"]), "Threshold": f"{row['Threshold']:.0%}"}
        if row["Threshold"] is not None
        else row | {"Probability": probability(row["Probability"]), "Threshold": "—"}
        for row in probability_rows(prediction, name)
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
    probability, the model, and the warning of a scan unlike the training data. ``map_shown``: the viewer's
    overlay layer (laid on the image when the report is drawn, not on every rerun) and its caption; None where
    the screen withholds the model's output: the report then withholds the map and every number too, and
    says why in their place."""
    # A panel's title: short (the warning below the image gives the figures).
    withheld = f"Withheld: {'too noisy' if prediction.too_noisy else 'unlike the training data'}"
    layer, explanation = map_shown if map_shown else (None, withheld)
    return ReportContent(
        image=image,
        layer=layer,
        probabilities={name(c): prediction.probabilities[c] for c in ranked(prediction)} if map_shown else {},
        thresholds={name(c): t for c, t in prediction.thresholds.items()},
        model=model,
        explanation=explanation,
        scan_key=scan_key,
        created=datetime.now(UTC),
        pixels_withheld=pixels_withheld,
        unlike_training_data=prediction.unlikeness_warning,
    )
