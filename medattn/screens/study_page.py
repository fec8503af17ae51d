"""What the Reader study page shows of a study's results, decided without Streamlit: the readers counted,
each arm's figures, and each arm's comparison with the control, as rows. The page (``pages/views/study.py``)
lays them out; ``tests/screens/test_study_page.py`` checks them on a study computed by hand."""

from __future__ import annotations

import math
from dataclasses import dataclass

from medattn.access import COORDINATOR, Identity
from medattn.model.predictor import Prediction
from medattn.review.text import figure, probability
from medattn.screens.review_page import Name, overlay_caption
from medattn.study.analysis import Comparison
from medattn.study.design import Arm
from medattn.study.results import StudyResults

COMPARED = ("AUC difference", "95% CI low", "95% CI high", "p")


def no_study_wording(who: Identity, reading: bool) -> str:
    """What the Reader study page says when it has no study to offer ``who``: to read, or to see results of."""
    if reading and who.verified:
        return (
            "You are not enrolled in any reader study. A study coordinator enrols readers by the e-mail address "
            f"your hospital sign-in gives you ({who.email or 'none is given for your account'})."
        )
    if who.may(COORDINATOR):
        return "No study has been set up yet. Choose Set up a study above."
    return "No study has been set up yet: a study coordinator sets them up."


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
            "Sensitivity": estimate(f.sensitivity),
            "Specificity": estimate(f.specificity),
            "AUC": estimate(f.auc),
            "Marks on the finding": f"{f.mark_accuracy:.0%} of {f.marked}" if f.marked else "no mark",
            "Seconds per reading": estimate(f.seconds, 1),
        }
        for f in results.figures
    ]


def figure_bars(results: StudyResults, name: Name) -> list[dict]:
    """The same figures as numbers, one per (arm, finding, figure), for the bar chart."""
    return [
        {"Arm": Arm.parse(f.arm).title, "Finding": name(f.finding), "Figure": figure, "Value": value}
        for f in results.figures
        for figure, value in (("Sensitivity", f.sensitivity), ("Specificity", f.specificity), ("AUC", f.auc))
        if not math.isnan(value)  # not estimable: the table says so, a bar of nothing would not
    ]


NOT_ESTIMABLE = "not estimable"


def estimate(value: float, decimals: int = 3) -> str:
    """A figure as text, and never "nan": a figure the cases cannot give is said to be so."""
    return figure(value, decimals, NOT_ESTIMABLE)


def informative(comparison: Comparison) -> bool:
    """Whether a comparison says anything: a 95% CI of a difference of AUCs reaching beyond ±1 (the most any
    difference can be) or one that cannot be estimated shows the study is too small to tell the arms apart."""
    bounds = (comparison.ci_low, comparison.ci_high, comparison.p_value)
    return all(math.isfinite(b) for b in bounds) and comparison.ci_low >= -1 and comparison.ci_high <= 1


def comparison_rows(results: StudyResults, name: Name) -> list[dict]:
    """Each arm's difference in readers' AUC from the control, with its 95% CI and p as the method gives them,
    per finding, and whether the analysis is informative."""
    return [
        {
            "Finding": name(finding),
            "Arm": Arm.parse(c.first).title,
            "AUC difference": c.difference,
            "95% CI low": c.ci_low,
            "95% CI high": c.ci_high,
            "p": c.p_value,
            "Analysis": "informative" if informative(c) else "not informative",
        }
        for finding, listed in results.comparisons.items()
        for c in listed
    ]


def comparison_table(results: StudyResults, name: Name) -> list[dict]:
    """The comparison rows as text: three decimals, and "not estimable" where the method gives no figure."""
    return [row | {key: estimate(row[key]) for key in COMPARED} for row in comparison_rows(results, name)]


def uninformative_notes(results: StudyResults, name: Name) -> list[str]:
    """Why a comparison says nothing, one line per uninformative one."""
    notes = []
    for finding, listed in results.comparisons.items():
        for c in (c for c in listed if not informative(c)):
            arm = Arm.parse(c.first).title
            if all(math.isfinite(b) for b in (c.ci_low, c.ci_high, c.p_value)):
                why = (
                    f"its 95% CI, {c.ci_low:.3f} to {c.ci_high:.3f}, is wider than any difference of AUCs can be "
                    "(−1 to 1)"
                )
            else:
                why = "its variance cannot be estimated: the readers' AUCs do not vary"
            notes.append(
                f"{arm} against the control for {name(finding)} is not informative: {why}. The study has too few "
                "readers or cases to tell the arms apart; read its difference as no evidence either way."
            )
    return notes
