"""Readers' marks: from a Plotly selection to the scan's pixels, and each map's agreement with them."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from medattn.errors import ReviewError
from medattn.review.marks import Mark, agreement, agreement_summary, agreements_with, mark_from_selection
from tests.review.test_store import a_review

# Streamlit's selection events, as its Plotly chart returns them.
BOX = {"points": [{"x": 1, "y": 1}] * 5, "box": [{"x": [100.0, 300.0], "y": [50.0, 150.0]}], "lasso": []}
LASSO = {"points": [], "box": [], "lasso": [{"x": [10.0, 60.0, 35.0], "y": [10.0, 10.0, 50.0]}]}
CLICK = {"points": [{"x": 200.0, "y": 100.0}], "box": [], "lasso": []}


def test_each_selection_kind_becomes_its_mark():
    assert mark_from_selection(BOX, "nodule") == Mark("nodule", "box", ((100.0, 50.0), (300.0, 150.0)))
    assert mark_from_selection(LASSO, "nodule").kind == "outline"
    assert mark_from_selection(CLICK, "effusion") == Mark("effusion", "point", ((200.0, 100.0),))
    assert mark_from_selection({"points": [], "box": [], "lasso": []}, "nodule") is None


def test_a_mark_is_placed_on_any_grid_covering_the_scan():
    """A box drawn on a 400 x 200 scan covers the same share of a 100 x 50 map."""
    box = mark_from_selection(BOX, "nodule")
    full, small = box.region(200, 400, 200, 400), box.region(50, 100, 200, 400)
    assert full[50:150, 100:300].all() and full.sum() == 100 * 200
    assert small.mean() == pytest.approx(full.mean(), abs=0.02)


def test_agreement_is_pointing_and_mass_inside_the_mark():
    heatmap = np.zeros((50, 100), np.float32)
    heatmap[25, 50] = 1.0  # the peak: inside the box (x 25-75, y 12-37 on this grid)
    heatmap[0, 0] = 0.5  # outside
    box = mark_from_selection(BOX, "nodule")
    assert agreement(heatmap, box, (200, 400)) == {"pointing": 1.0, "mass": pytest.approx(1 / 1.5)}
    point_far_away = Mark("nodule", "point", ((390.0, 190.0),))
    assert agreement(heatmap, point_far_away, (200, 400)) == {"pointing": 0.0, "mass": 0.0}


@pytest.mark.parametrize(
    "mark, message",
    [
        (Mark("nodule", "point", ((500.0, 10.0),)), "off the scan"),
        (Mark("nodule", "box", ((1.0, 1.0),)), "needs 2"),
        (Mark("nodule", "star", ((1.0, 1.0),)), "none of them"),
        (Mark("nodule", "point", ((float("nan"), 1.0),)), "off the scan"),
    ],
)
def test_a_bad_mark_is_refused(mark, message):
    with pytest.raises(ReviewError, match=message):
        mark.validated(200, 400)


def test_agreements_are_averaged_per_method_and_finding():
    reviews = [
        {"nodule": {"attention": {"pointing": 1.0, "mass": 0.5}, "gradcam": {"pointing": 0.0, "mass": 0.1}}},
        {"nodule": {"attention": {"pointing": 0.0, "mass": 0.3}}},
    ]
    summary = agreement_summary(reviews)
    assert summary["attention"]["nodule"] == {"pointing": 0.5, "mass": pytest.approx(0.4), "marks": 2}
    assert summary["gradcam"]["nodule"]["marks"] == 1


def test_marks_and_agreements_are_stored_with_the_review_and_exported(store):
    marks = {"nodule": Mark("nodule", "box", ((10.0, 20.0), (30.0, 40.0))).as_json()}
    agreements = {"nodule": {"attention": {"pointing": 1.0, "mass": 0.42}}}
    store.save(a_review(marks=marks, agreements=agreements))
    (saved,) = store.reviews()
    assert saved.marks == marks and saved.agreements == agreements
    assert store.reader_agreements(saved.model_name, saved.model_version) == [agreements]
    assert store.reader_agreements(saved.model_name, "another version") == []
    (row,) = csv.DictReader(io.StringIO(store.export_csv("Dr Export", [saved])))
    assert json.loads(row["marks"]) == marks and json.loads(row["agreements"]) == agreements


def test_a_mark_for_a_finding_the_model_does_not_report_is_refused(store):
    with pytest.raises(ReviewError, match="mark names a finding"):
        store.save(a_review(marks={"fracture": {"kind": "point", "points": [[1, 1]]}}))


def test_every_method_is_measured_against_every_mark():
    heatmaps = {"attention": np.eye(40, dtype=np.float32), "gradcam": np.fliplr(np.eye(40, dtype=np.float32))}
    marks = {"nodule": Mark("nodule", "box", ((0.0, 0.0), (100.0, 100.0))).as_json()}  # top-left of a 400 px scan
    measured = agreements_with(marks, lambda method, finding: heatmaps[method], (400, 400), list(heatmaps))
    assert measured["nodule"]["attention"] == {"pointing": 1.0, "mass": pytest.approx(0.25)}
    assert measured["nodule"]["gradcam"] == {"pointing": 0.0, "mass": 0.0}
