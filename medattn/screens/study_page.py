"""What the Reader study page shows of a study's results, decided without Streamlit: the readers counted,
each arm's figures, and each arm's comparison with the control, as rows. The page (``pages/views/study.py``)
lays them out; ``tests/screens/test_study_page.py`` checks them on a study computed by hand."""

from __future__ import annotations

from dataclasses import dataclass

from medattn.model.predictor import Prediction
from medattn.review.text import probability
from medattn.screens.review_page import Name, overlay_caption
from medattn.study.design import Arm
from medattn.study.results import StudyResults

COMPARED = ("AUC difference", "95% CI low", "95% CI high", "p")


@dataclass(frozen=True)
class ReadingScreen:
    """What a reader is shown for one reading: the arm as shown (no maps and no numbers where the model's
    output is withheld), the reason it is withheld, each map's caption and the probabilities' line."""

    arm: Arm
    withheld: str | None
    captions: dict[str, str]
    probabilities: str | None


def reading_screen(arm: Arm, prediction: Prediction, findings: tuple[str, ...], name: Name) -> ReadingScreen:
    """The arm the study asks for, unless the scan is unlike the training data: then the reader reads it as
    in the control arm without maps, and is told why."""
    withheld = prediction.unlikeness_warning if arm.overlay != "none" or arm.probabilities else None
    if withheld:
        arm = Arm("none", False)
    captions = {} if arm.overlay == "none" else {f: overlay_caption(prediction, arm.overlay, f, name) for f in findings}
    probabilities = (
        "**The model's probabilities:** "
        + ", ".join(
            f"{name(f)} {probability(prediction.probabilities[f])} (threshold {prediction.thresholds[f]:.0%})"
            for f in findings
        )
        if arm.probabilities
        else None
    )
    return ReadingScreen(arm, withheld, captions, probabilities)


def readers_line(readers: list[str]) -> str:
    """Who is counted (the readers who finished, their names already made literal for Markdown), and how
    each figure is averaged."""
    return (
        f"**{len(readers)} readers** finished: {', '.join(readers)}. "
        "Each figure is computed per reader over every case, then averaged over readers."
    )


def figure_rows(results: StudyResults, name: Name) -> list[dict]:
    """Each arm's readers' mean sensitivity, specificity and AUC per finding, marks and time, as text."""
    return [
        {
            "Arm": Arm.parse(f.arm).title,
            "Finding": name(f.finding),
            "Sensitivity": f"{f.sensitivity:.3f}",
            "Specificity": f"{f.specificity:.3f}",
            "AUC": f"{f.auc:.3f}",
            "Marks on the finding": f"{f.mark_accuracy:.0%} of {f.marked}" if f.marked else "no mark",
            "Seconds per reading": f"{f.seconds:.1f}",
        }
        for f in results.figures
    ]


def figure_bars(results: StudyResults, name: Name) -> list[dict]:
    """The same figures as numbers, one per (arm, finding, figure), for the bar chart."""
    return [
        {"Arm": Arm.parse(f.arm).title, "Finding": name(f.finding), "Figure": figure, "Value": value}
        for f in results.figures
        for figure, value in (("Sensitivity", f.sensitivity), ("Specificity", f.specificity), ("AUC", f.auc))
    ]


def comparison_rows(results: StudyResults, name: Name) -> list[dict]:
    """Each arm's difference in readers' AUC from the control, with its 95% CI and p, per finding."""
    return [
        {
            "Finding": name(finding),
            "Arm": Arm.parse(c.first).title,
            "AUC difference": c.difference,
            "95% CI low": c.ci_low,
            "95% CI high": c.ci_high,
            "p": c.p_value,
        }
        for finding, listed in results.comparisons.items()
        for c in listed
    ]
