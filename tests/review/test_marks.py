"""Readers' marks: what the reading viewer says was drawn, checked, and each map's agreement with them."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from medattn.errors import ReviewError
from medattn.review.marks import Mark, agreement, agreement_summary, agreements_with, drawn_mark
from tests.review.test_store import a_review

FINDINGS = ("nodule", "effusion")
# What the viewer sends when a reader draws (pages/viewer/frontend/src/main.js, onMarked): scan pixels.
BOX = {"finding": "nodule", "kind": "box", "points": [[100, 50], [300, 150]], "scan": "a", "frame": 0, "id": "1"}


def test_a_mark_drawn_in_the_viewer_is_taken_in_the_scans_pixels():
    assert drawn_mark(BOX, FINDINGS, 200, 400) == Mark("nodule", "box", ((100.0, 50.0), (300.0, 150.0)))
    point = {"finding": "effusion", "kind": "point", "points": [[200.5, 100.25]]}
    assert drawn_mark(point, FINDINGS, 200, 400) == Mark("effusion", "point", ((200.5, 100.25),))
    outline = {"finding": "nodule", "kind": "outline", "points": [[10, 10], [60, 10], [35, 50]]}
    assert drawn_mark(outline, FINDINGS, 200, 400).kind == "outline"


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ({**BOX, "finding": "fracture"}, "one of the model's findings"),
        ({**BOX, "kind": "arrow"}, "must be a point, a box or an outline"),
        ({**BOX, "points": [[100, 50]]}, "needs 2–2 points"),
        ({**BOX, "points": [[100, 50], [900, 150]]}, "lies off the scan"),
        ({**BOX, "points": [[100, 50], ["x", 150]]}, "cannot be read"),
        ({**BOX, "points": 7}, "cannot be read"),
        ({"kind": "box"}, "cannot be read"),
        ("a string", "cannot be read"),
        (None, "cannot be read"),
        ({**BOX, "finding": ["nodule"]}, "cannot be read"),
    ],
)
def test_a_message_that_is_no_mark_on_this_scan_is_refused_with_a_reason(message, says):
    with pytest.raises(ReviewError, match=says):
        drawn_mark(message, FINDINGS, 200, 400)


def test_a_mark_is_placed_on_any_grid_covering_the_scan():
    """A box drawn on a 400 x 200 scan covers the same share of a 100 x 50 map."""
    box = drawn_mark(BOX, FINDINGS, 200, 400)
    full, small = box.region(200, 400, 200, 400), box.region(50, 100, 200, 400)
    assert full[50:150, 100:300].all() and full.sum() == 100 * 200
    assert small.mean() == pytest.approx(full.mean(), abs=0.02)


def test_agreement_is_pointing_and_mass_inside_the_mark():
    heatmap = np.zeros((50, 100), np.float32)
    heatmap[25, 50] = 1.0  # the peak: inside the box (x 25-75, y 12-37 on this grid)
    heatmap[0, 0] = 0.5  # outside
    box = drawn_mark(BOX, FINDINGS, 200, 400)
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
