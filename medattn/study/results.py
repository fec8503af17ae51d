"""A reader study's results: per arm and finding, what the readers achieved, and whether the arms differ.

Averaging rule: every figure is computed per reader over all cases, then averaged over readers (each
reader counts once). Only readers who have read every case in every arm are counted, so that every arm
is compared on the same readers and cases, as the analysis assumes (``medattn.study.analysis``).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from medattn.explain.quality import dilate
from medattn.review.marks import POINT_RADIUS, Mark
from medattn.study.analysis import Comparison, compare, empirical_auc, sensitivity, specificity
from medattn.study.design import Arm
from medattn.study.records import Reading, Study


@dataclass(frozen=True)
class ArmFigures:
    arm: str
    finding: str
    readers: int
    sensitivity: float
    specificity: float
    auc: float
    mark_accuracy: float  # share of true findings called present and marked whose mark is on the finding
    marked: int  # how many such marks there were
    seconds: float  # mean time per reading


@dataclass(frozen=True)
class StudyResults:
    complete_readers: list[str]
    incomplete_readers: dict[str, float]  # reader -> share read
    figures: list[ArmFigures]
    comparisons: dict[str, list[Comparison]]  # finding -> each arm against the first (the control)


def mark_on_finding(mark: Mark, truth_mask: np.ndarray) -> bool:
    """Whether the mark's centre lies on the true finding, allowing a point mark's radius around it."""
    side = truth_mask.shape[0]
    region = mark.region(side, side, side, side)
    if not region.any():
        return False
    rows, columns = np.nonzero(region)
    centre = (round(rows.mean()), round(columns.mean()))
    return bool(dilate(truth_mask, round(POINT_RADIUS * side))[centre])


def study_results(study: Study, readings: list[Reading], truth: np.ndarray, masks: np.ndarray | None) -> StudyResults:
    """``truth`` (cases, findings) and ``masks`` (cases, findings, S, S) by case position, findings in the
    study's order (``StudyStore.case_set``). Without masks (an uploaded case set) marks are not scored."""
    expected = len(study.cases) * len(study.arms)
    read: dict[str, dict[tuple[int, str], Reading]] = {}
    for reading in readings:
        read.setdefault(reading.reader, {})[reading.case_position, reading.arm] = reading
    complete = sorted(reader for reader, done in read.items() if len(done) == expected)
    incomplete = {reader: len(done) / expected for reader, done in read.items() if len(done) < expected}
    figures, comparisons = [], {}
    cases = range(len(study.cases))
    for finding in study.findings:
        column = study.findings.index(finding)
        positive = truth[:, column].astype(bool)
        # (arms, readers, cases): each reading's rating and call
        grid = [[[read[r][c, arm] for c in cases] for r in complete] for arm in study.arms]
        ratings = np.array([[[one.rating(finding) for one in reader] for reader in arm] for arm in grid])
        calls = np.array([[[one.present[finding] for one in reader] for reader in arm] for arm in grid], dtype=bool)
        for index, arm in enumerate(study.arms):
            marks = [
                mark_on_finding(Mark.from_json(finding, read[r][c, arm].marks[finding]), masks[c, column])
                for r in complete
                for c in cases
                if masks is not None
                and positive[c]
                and read[r][c, arm].present[finding]
                and finding in read[r][c, arm].marks
            ]
            figures.append(
                ArmFigures(
                    arm,
                    finding,
                    len(complete),
                    _reader_mean(sensitivity, positive, calls[index]),
                    _reader_mean(specificity, positive, calls[index]),
                    _reader_mean(empirical_auc, positive, ratings[index]),
                    float(np.mean(marks)) if marks else float("nan"),
                    len(marks),
                    float(np.mean([read[r][c, arm].seconds for r in complete for c in cases]))
                    if complete
                    else float("nan"),
                )
            )
        if len(complete) >= 2:
            comparisons[finding] = [
                compare(ratings[[index, 0]], positive, empirical_auc, (arm, study.arms[0]))
                for index, arm in enumerate(study.arms)
                if index
            ]
    return StudyResults(complete, incomplete, figures, comparisons)


def _reader_mean(metric, truth: np.ndarray, per_reader: np.ndarray) -> float:
    return float(np.mean([metric(truth, reader) for reader in per_reader])) if len(per_reader) else float("nan")


def readings_table(study: Study, readings: list[Reading], truth: np.ndarray) -> pd.DataFrame:
    """One row per reading and finding, for export. No patient identifier: cases are known by position."""
    rows = [
        {
            "study": study.name,
            "reader": reading.reader,
            "case": reading.case_position,
            "arm": reading.arm,
            "arm_title": Arm.parse(reading.arm).title,
            "finding": finding,
            "truth": bool(truth[reading.case_position, study.findings.index(finding)]),
            "present": reading.present[finding],
            "confidence": reading.confidence[finding],
            "rating": reading.rating(finding),
            "mark": json.dumps(reading.marks[finding]) if finding in reading.marks else "",
            "seconds": reading.seconds,
            "saved_at": reading.saved_at.isoformat() if reading.saved_at else "",
        }
        for reading in readings
        for finding in study.findings
    ]
    return pd.DataFrame(rows)


def parquet_bytes(table: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return buffer.getvalue()
