"""Studies and readings in the review store (SQLite and PostgreSQL), and results checked by hand."""

from __future__ import annotations

import io
import threading
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from medattn.access import LOCAL_USER, identity, may_read
from medattn.benchmark import FINDINGS
from medattn.errors import StudyError
from medattn.review.store import ReviewStore
from medattn.study.design import SyntheticCaseSet, hanley_mcneil_error, size_warnings
from medattn.study.records import Reading, StudyStore
from medattn.study.results import parquet_bytes, readings_table, study_results

MODEL = {"name": "medattn-cxr-synthetic", "version": "test", "classes": ["nodule", "effusion", "cardiomegaly"]}


@pytest.fixture
def records(store) -> StudyStore:
    return StudyStore(store)


def a_study(records: StudyStore, count: int = 4, findings=("nodule",)):
    return records.create("Pilot", SyntheticCaseSet(7, 64, count, 0.5, findings), ["none", "attention"], MODEL)


def truth_of(records, study) -> tuple[np.ndarray, np.ndarray]:
    _, _, truth, masks = records.case_set(study)
    return truth, masks


def test_a_study_and_its_readers_are_kept_and_a_name_is_used_once(records, store_url):
    study = a_study(records)
    assert records.join(study, "Dr A") == 0 and records.join(study, "Dr B") == 1 and records.join(study, " Dr A ") == 0
    reopened = StudyStore(ReviewStore(store_url))
    (again,) = reopened.studies()
    assert again.design == study.design and reopened.readers(again) == {"Dr A": 0, "Dr B": 1}
    with pytest.raises(StudyError, match="exists already"):
        a_study(records)


def test_a_reading_saved_twice_is_stored_once_and_an_incomplete_one_is_refused(records):
    study = a_study(records)
    reading = Reading(study.id, "Dr A", 0, "none", {"nodule": True}, {"nodule": 70}, seconds=4.2)
    records.save(study, reading)
    records.save(study, replace(reading, seconds=5.0))  # a double click: the same answers, accepted
    (saved,) = records.readings(study)
    assert saved.present == {"nodule": True} and saved.confidence == {"nodule": 70} and saved.seconds == 4.2
    # The same reading from another session with other answers was dropped with no word; it is refused now.
    with pytest.raises(StudyError, match="saved already, from another window or session, with other answers"):
        records.save(study, replace(reading, present={"nodule": False}, confidence={"nodule": 0}))
    assert records.readings(study) == [saved]
    with pytest.raises(StudyError, match="present or absent"):
        records.save(study, Reading(study.id, "Dr A", 1, "none", {"nodule": None}, {"nodule": 70}))
    with pytest.raises(StudyError, match="not in the study"):
        records.save(study, Reading(study.id, "Dr A", 1, "gradcam", {"nodule": True}, {"nodule": 70}))
    with pytest.raises(Exception, match="lies off the scan"):
        mark = {"nodule": {"kind": "point", "points": [[500, 10]]}}
        records.save(study, Reading(study.id, "Dr A", 1, "none", {"nodule": True}, {"nodule": 70}, mark))


def test_readers_saving_at_once_lose_nothing(records, store_url):
    study = a_study(records, count=6)

    def read_all(reader: str) -> None:
        mine = StudyStore(ReviewStore(store_url))  # each reader's session has its own store, as in the app
        position = mine.join(study, reader)
        for case, arm in study.order(position):
            mine.save(study, Reading(study.id, reader, case, arm, {"nodule": True}, {"nodule": 50}))

    threads = [threading.Thread(target=read_all, args=(f"Dr {n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    saved = records.readings(study)
    assert len(saved) == 4 * 6 * 2 and sorted(records.readers(study).values()) == [0, 1, 2, 3]


# Two readers' readings of two positive (p1, p2) and two negative (n1, n2) cases: (call, confidence).
HAND = {
    ("Dr A", "none"): {"p1": (True, 80), "p2": (False, 60), "n1": (False, 90), "n2": (True, 20)},
    ("Dr A", "attention"): {"p1": (True, 100), "p2": (True, 50), "n1": (False, 100), "n2": (False, 20)},
    ("Dr B", "none"): {"p1": (True, 60), "p2": (False, 100), "n1": (False, 40), "n2": (False, 80)},
    ("Dr B", "attention"): {"p1": (True, 40), "p2": (True, 80), "n1": (True, 0), "n2": (False, 0)},
}


def test_results_match_a_small_study_computed_by_hand(records):
    """Ratings are 50 ± confidence / 2. Dr A, no overlay: p 90, 20; n 5, 60: sensitivity 1/2, specificity
    1/2, AUC 3/4 (20 < 60 is the one pair out of order). Dr A, attention: p 100, 75; n 0, 40: 1, 1, 1.
    Dr B, no overlay: p 80, 0; n 30, 10: 1/2, 1, 1/2. Dr B, attention: p 70, 90; n 50, 50: 1, 1/2, 1.
    Reader means: no overlay 0.5, 0.75, 0.625; attention 1, 0.75, 1."""
    study = a_study(records)
    truth, masks = truth_of(records, study)
    positives = [c for c in range(4) if truth[c, 0]]
    negatives = [c for c in range(4) if not truth[c, 0]]
    position = dict(zip(["p1", "p2", "n1", "n2"], positives + negatives, strict=True))
    for (reader, arm), calls in HAND.items():
        records.join(study, reader)
        for case, (present, confidence) in calls.items():
            reading = Reading(study.id, reader, position[case], arm, {"nodule": present}, {"nodule": confidence})
            records.save(study, reading)
    results = study_results(study, records.readings(study), truth, masks)
    figures = {f.arm: f for f in results.figures}
    assert (figures["none"].sensitivity, figures["none"].specificity, figures["none"].auc) == (0.5, 0.75, 0.625)
    assert (figures["attention"].sensitivity, figures["attention"].specificity, figures["attention"].auc) == (
        1.0,
        0.75,
        1.0,
    )
    (comparison,) = results.comparisons["nodule"]
    assert (comparison.first, comparison.second, comparison.difference) == ("attention", "none", 0.375)
    assert comparison.ci_low < comparison.difference < comparison.ci_high

    table = readings_table(study, records.readings(study), truth)
    assert len(table) == 16 and set(table["rating"]) >= {90.0, 20.0, 5.0, 60.0}
    back = pd.read_parquet(io.BytesIO(parquet_bytes(table)))
    pd.testing.assert_frame_equal(back, table)


def test_an_unfinished_reader_is_left_out_of_the_results(records):
    study = a_study(records)
    truth, masks = truth_of(records, study)
    records.join(study, "Dr A")
    case, arm = study.order(0)[0]
    records.save(study, Reading(study.id, "Dr A", case, arm, {"nodule": True}, {"nodule": 50}))
    results = study_results(study, records.readings(study), truth, masks)
    assert results.complete_readers == [] and results.incomplete_readers == {"Dr A": 1 / 8}
    assert results.comparisons == {}


def test_a_mark_on_the_true_finding_counts_as_accurate(records):
    study = a_study(records, count=2)
    truth, masks = truth_of(records, study)
    (positive,) = [c for c in range(2) if truth[c, study.findings.index("nodule")]]
    rows, columns = np.nonzero(masks[positive, 0])
    on = {"kind": "point", "points": [[float(columns.mean()), float(rows.mean())]]}
    off = {"kind": "box", "points": [[0, 0], [4, 4]]}
    for reader, mark in (("Dr A", on), ("Dr B", off)):
        records.join(study, reader)
        for case, arm in study.order(records.join(study, reader)):
            marks = {"nodule": mark} if case == positive else {}
            records.save(
                study, Reading(study.id, reader, case, arm, {"nodule": case == positive}, {"nodule": 90}, marks)
            )
    figures = study_results(study, records.readings(study), truth, masks).figures
    assert [(f.mark_accuracy, f.marked) for f in figures] == [(0.5, 2), (0.5, 2)]


def test_a_readings_agreements_count_on_the_model_page_of_the_model_the_study_was_set_up_with(records, store):
    study = a_study(records, count=2)
    case, arm = study.order(records.join(study, "Dr A"))[0]
    agreements = {"nodule": {"attention": {"pointing": 1.0, "mass": 0.6}}}
    mark = {"nodule": {"kind": "point", "points": [[10, 10]]}}
    records.save(study, Reading(study.id, "Dr A", case, arm, {"nodule": True}, {"nodule": 90}, mark, agreements))
    assert store.reader_agreements(MODEL["name"], MODEL["version"]) == [agreements]
    assert store.reader_agreements(MODEL["name"], "another version") == []


def test_truth_and_masks_follow_the_study_s_own_order_of_findings(records):
    study = a_study(records, count=6, findings=("effusion", "nodule"))
    _, _, truth, masks = records.case_set(study)
    cases = [study.case_set.case(index) for index in study.cases]
    for column, finding in enumerate(study.findings):
        assert truth[:, column].tolist() == [float(c.labels[FINDINGS.index(finding)]) for c in cases]
        assert all(np.array_equal(masks[i, column], c.masks[FINDINGS.index(finding)]) for i, c in enumerate(cases))


def test_a_closed_study_takes_no_more_readings(records, store):
    study = a_study(records)
    records.save(study, Reading(study.id, "Dr A", 0, "none", {"nodule": True}, {"nodule": 70}))
    closed = records.close(study, "Dr Lead")
    assert closed.closed_at is not None and records.close(closed, "Dr Other").closed_at == closed.closed_at
    with pytest.raises(StudyError, match="closed"):  # the page's copy of the study is older: the store decides
        records.save(study, Reading(study.id, "Dr A", 1, "none", {"nodule": True}, {"nodule": 70}))
    assert [entry["actor"] for entry in store.audit_entries() if entry["action"] == "study closed"] == ["Dr Lead"]


def test_the_audit_log_names_who_set_a_study_up(records, store):
    records.create(
        "Audited", SyntheticCaseSet(7, 64, 4, 0.5, ("nodule",)), ["none", "attention"], MODEL, by="Dr L <l@h>"
    )
    assert store.audit_entries()[-1]["actor"] == "Dr L <l@h>" and store.audit_entries()[-1]["action"] == "study created"


def test_a_coordinator_enrols_readers_by_e_mail_and_only_they_read_the_study(records, store, store_url):
    study = a_study(records)
    lead = identity({"name": "Dr L", "email": "l@h.org", "roles": ["coordinator"]}, {})
    reader_a = identity({"name": "Dr A", "email": "Dr.A@H.org", "roles": ["reader"]}, {})
    reader_b = identity({"name": "Dr B", "email": "b@h.org", "roles": ["reader"]}, {})
    assert study.enrolled == set() and not may_read(lead, study.enrolled) and may_read(LOCAL_USER, study.enrolled)
    enrolled = records.enrol(study, " dr.a@h.org, l@h.org\n\nDR.A@h.org ", by=lead.label)
    assert enrolled.enrolled == {"dr.a@h.org", "l@h.org"}  # addresses compared without case, each once
    assert may_read(reader_a, enrolled.enrolled) and may_read(lead, enrolled.enrolled)
    assert not may_read(reader_b, enrolled.enrolled)
    assert records.enrol(enrolled, "l@h.org", by=lead.label) == enrolled  # again: nothing changes
    (reopened,) = StudyStore(ReviewStore(store_url)).studies()
    assert reopened.enrolled == {"dr.a@h.org", "l@h.org"}
    assert [(e["actor"], e["action"]) for e in store.audit_entries()][-1] == ("Dr L <l@h.org>", "readers enrolled")
    for typed in ("Dr B", "b@", "b@hospital", "a b@h.org", ""):
        with pytest.raises(StudyError, match="e-mail address"):
            records.enrol(study, typed, by=lead.label)
    assert StudyStore(ReviewStore(store_url)).studies()[0].enrolled == {"dr.a@h.org", "l@h.org"}  # none of those


def test_a_study_reads_only_findings_its_model_reports(records):
    nodule_only = MODEL | {"classes": ["nodule"]}
    with pytest.raises(StudyError, match="from those the model reports: nodule"):
        records.create("Effusion", SyntheticCaseSet(7, 64, 4, 0.5, ("effusion",)), ["none", "attention"], nodule_only)


def test_a_case_set_a_finding_has_no_case_of_is_refused_and_a_small_one_is_warned_about(records):
    """A 4-case study of every finding, none with an effusion, was accepted and its results printed "nan"."""
    every = ("nodule", "effusion", "cardiomegaly")
    with pytest.raises(StudyError, match="effusion is in none of the 4 cases"):
        records.create("Every finding", SyntheticCaseSet(8, 64, 4, 0.5, every), ["none", "attention"], MODEL)
    study = a_study(records, count=8)
    truth, _ = truth_of(records, study)
    assert study.case_mix == {"nodule": [int(truth.sum()), int(len(truth) - truth.sum())]} == {"nodule": [4, 4]}
    (warning,) = size_warnings(study.case_mix, {"nodule": "Pulmonary nodule"}.get)
    error = hanley_mcneil_error(0.75, 4, 4)
    assert warning.startswith("Pulmonary nodule: 4 cases with it and 4 without.")
    assert f"about ±{1.96 * error:.2f} (Hanley and McNeil, 1982); at least 10 of each" in warning
    assert hanley_mcneil_error(0.75, 10, 10) == pytest.approx(0.1117, abs=1e-4)
    assert hanley_mcneil_error(0.75, 40, 40) < hanley_mcneil_error(0.75, 10, 10)
    assert size_warnings({"nodule": [10, 30]}, str) == []
