"""The MRMC analysis against a published worked example: the Van Dyke et al. (1993) study (5 readers,
114 cases, cine MRI against spin-echo MRI), as analysed by the R package MRMCaov (Smith & Hillis), whose
output for it is printed in its documentation (docs/jss/MRMCaov.tex: jackknife covariances, random
readers and cases). The ratings are the study's, as distributed with RJafroc (inst/extdata/datasets/VD.lrc)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from medattn.study.analysis import compare, empirical_auc, figures_of_merit, sensitivity, variance_components

VAN_DYKE = Path(__file__).parent / "data" / "vandyke.csv"


def van_dyke() -> tuple[np.ndarray, np.ndarray]:
    """Ratings (2 treatments, 5 readers, 114 cases) and the cases' truth."""
    with VAN_DYKE.open() as handle:
        rows = list(csv.DictReader(handle))
    scores = np.zeros((2, 5, 114))
    truth = np.zeros(114, dtype=bool)
    for row in rows:
        reader, case = int(row["reader"]) - 1, int(row["case"]) - 1
        truth[case] = row["truth"] == "1"
        scores[:, reader, case] = int(row["rating_treatment_1"]), int(row["rating_treatment_2"])
    return scores, truth


def test_reader_aucs_match_the_published_ones():
    scores, truth = van_dyke()
    published = [[0.9196457, 0.8587762, 0.9038647, 0.9731079, 0.8297907],
                 [0.9478261, 0.9053140, 0.9217391, 0.9993559, 0.9299517]]  # fmt: skip
    np.testing.assert_allclose(figures_of_merit(scores, truth, empirical_auc), published, atol=5e-8)


def test_auc_variance_components_match_the_published_ones():
    parts = variance_components(*van_dyke(), empirical_auc)
    assert parts.error == pytest.approx(0.0008022883, rel=1e-6)
    assert parts.cov1 == pytest.approx(0.0003466137, rel=1e-6)
    assert parts.cov2 == pytest.approx(0.0003440748, rel=1e-6)
    assert parts.cov3 == pytest.approx(0.0002390284, rel=1e-6)
    assert parts.ms_treatment == pytest.approx(0.004796171, rel=1e-6)
    assert parts.ms_treatment_reader == pytest.approx(0.0005510306, rel=1e-6)


def test_the_auc_comparison_matches_hillis_published_test():
    """Hillis (2008) and MRMCaov: F = 4.46 on 15.26 degrees of freedom, p = 0.0517."""
    result = compare(*van_dyke(), empirical_auc, ("1", "2"))
    assert result.difference == pytest.approx(-0.04380032, rel=1e-6)
    assert result.f_statistic == pytest.approx(4.456, abs=5e-4)
    assert result.degrees_of_freedom == pytest.approx(15.26, abs=5e-3)
    assert result.p_value == pytest.approx(0.0517, abs=5e-5)
    assert result.ci_low < 0 < result.ci_high  # not significant at 5%


def test_the_sensitivity_comparison_matches_the_published_one_to_six_digits():
    """MRMCaov's binary sensitivity example (a rating of 3 or more is a positive call)."""
    scores, truth = van_dyke()
    result = compare(scores >= 3, truth, sensitivity, ("1", "2"))
    assert result.difference == pytest.approx(-0.09777778, rel=1e-6)
    assert result.standard_error == pytest.approx(0.03780451, rel=1e-6)
    assert result.degrees_of_freedom == pytest.approx(15.71732, rel=1e-6)
    assert (result.ci_low, result.ci_high) == pytest.approx((-0.1780371, -0.0175185), rel=1e-6)
    assert result.f_statistic == pytest.approx(6.689493, rel=1e-6)
    assert result.p_value == pytest.approx(0.02008822, rel=1e-6)


def test_auc_counts_a_tie_as_one_half():
    assert empirical_auc(np.array([1, 0]), np.array([5, 5])) == 0.5
    assert empirical_auc(np.array([1, 1, 0, 0]), np.array([4, 2, 3, 1])) == 0.75
    assert np.isnan(empirical_auc(np.array([1, 1]), np.array([1, 2])))
