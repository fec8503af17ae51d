"""The Reader study page's results, without Streamlit, on a small study read by hand (tests/study)."""

from __future__ import annotations

import numpy as np

from medattn import load_scan
from medattn.assets import SAMPLES_DIR
from medattn.review.text import probability
from medattn.screens import study_page
from medattn.study.analysis import Comparison
from medattn.study.design import WITH_PROBABILITIES, Arm
from medattn.study.results import ArmFigures, StudyResults
from tests.conftest import PYDICOM_DATA_FILES

NAMES = {"nodule": "Pulmonary nodule"}.get


def results() -> StudyResults:
    figures = [
        ArmFigures("none", "nodule", 2, 0.5, 0.75, 0.625, 0.0, 0, 4.25),
        ArmFigures("attention", "nodule", 2, 1.0, 0.75, 1.0, 0.5, 2, 3.5),
    ]
    comparison = Comparison(
        "attention", "none", 0.375, 0.2, 12.0, ci_low=-0.2, ci_high=0.95, p_value=0.12, f_statistic=2.6
    )
    return StudyResults(["Dr A", "Dr B"], {"Dr C": 0.25}, figures, {"nodule": [comparison]})


def test_each_arm_s_figures_are_rows_and_bars():
    none, attention = study_page.figure_rows(results(), NAMES)
    assert none == {
        "Arm": "No overlay", "Finding": "Pulmonary nodule", "Sensitivity": "0.500", "Specificity": "0.750",
        "AUC": "0.625", "Marks on the finding": "no mark", "Seconds per reading": "4.2",
    }  # fmt: skip
    assert attention["Marks on the finding"] == "50% of 2"
    bars = study_page.figure_bars(results(), NAMES)
    assert [(b["Figure"], b["Value"]) for b in bars[:3]] == [
        ("Sensitivity", 0.5),
        ("Specificity", 0.75),
        ("AUC", 0.625),
    ]


def test_a_comparison_with_the_control_keeps_its_interval_and_p():
    (row,) = study_page.comparison_rows(results(), NAMES)
    assert row["Finding"] == "Pulmonary nodule" and row["AUC difference"] == 0.375
    assert (row["95% CI low"], row["95% CI high"], row["p"]) == (-0.2, 0.95, 0.12)
    assert set(study_page.COMPARED) <= set(row)
    assert np.isclose(row["95% CI high"] - row["95% CI low"], 1.15)


def test_only_the_readers_who_finished_are_named():
    line = study_page.readers_line(results().complete_readers)
    assert line.startswith("**2 readers** finished: Dr A, Dr B.") and "Dr C" not in line


def test_a_reading_shows_the_arm_asked_for_unless_the_scan_is_unlike_the_training_data(predictor):
    findings = tuple(predictor.classes)
    like = predictor.predict(load_scan(SAMPLES_DIR / "synthetic-nodule.png"), 0, max_side=256)
    unlike = predictor.predict(load_scan(PYDICOM_DATA_FILES / "RG1_J2KR.dcm"), 0, max_side=256)
    asked = Arm.parse(f"attention{WITH_PROBABILITIES}")

    shown = study_page.reading_screen(asked, like, findings, predictor.display_name)
    assert shown.arm == asked and shown.withheld is None
    assert shown.captions["nodule"] == "Attention overlay — Pulmonary nodule"
    assert all(shown.captions[f].endswith("(finding not present — where the model looked)") for f in findings[1:])
    assert shown.probabilities.startswith(
        f"**The model's probabilities:** Pulmonary nodule {probability(like.probabilities['nodule'])}"
    )

    withheld = study_page.reading_screen(asked, unlike, findings, predictor.display_name)
    assert withheld.arm == Arm("none", False) and withheld.withheld == unlike.unlikeness_warning
    assert withheld.captions == {} and withheld.probabilities is None
    control = study_page.reading_screen(Arm("none", False), unlike, findings, predictor.display_name)
    assert control.withheld is None  # nothing of the model's was asked for: nothing to withhold


def test_an_uninformative_comparison_is_said_to_be_one_and_no_figure_prints_as_nan():
    """A 4-case study printed "nan" for effusion and a cardiomegaly AUC difference of -1.463 to 1.713, plotted."""
    wide = Comparison("attention", "none", 0.125, 0.6, 1.0, ci_low=-1.463, ci_high=1.713, p_value=0.8, f_statistic=0.1)
    flat = Comparison("attention", "none", 0.0, 0.0, float("nan"), 0.0, 0.0, float("nan"), float("nan"))
    figures = [ArmFigures("attention", "nodule", 2, float("nan"), 0.5, float("nan"), float("nan"), 0, 3.0)]
    study = StudyResults(
        ["Dr A", "Dr B"], {}, figures, {"nodule": [wide, flat], "effusion": [results().comparisons["nodule"][0]]}
    )
    names = {"nodule": "Pulmonary nodule", "effusion": "Pleural effusion"}.get
    rows = study_page.comparison_rows(study, names)
    assert [row["Analysis"] for row in rows] == ["not informative", "not informative", "informative"]
    assert (rows[0]["95% CI low"], rows[0]["95% CI high"]) == (-1.463, 1.713)  # as the method gives them
    table = study_page.comparison_table(study, names)
    assert table[1]["p"] == study_page.NOT_ESTIMABLE and table[0]["95% CI low"] == "-1.463"
    wide_note, flat_note = study_page.uninformative_notes(study, names)
    assert "-1.463 to 1.713, is wider than any difference of AUCs can be" in wide_note
    assert "cannot be estimated" in flat_note and "Pulmonary nodule" in flat_note
    (row,) = study_page.figure_rows(study, names)
    assert row["Sensitivity"] == row["AUC"] == study_page.NOT_ESTIMABLE
    assert "nan" not in str(table) + str(row)
    assert [bar["Figure"] for bar in study_page.figure_bars(study, names)] == ["Specificity"]
