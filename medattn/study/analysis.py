"""Multi-reader multi-case (MRMC) analysis: does one arm of a reader study beat another?

The Obuchowski–Rockette model with Hillis's denominator degrees of freedom (Hillis 2008, "Recent
developments in the Dorfman-Berbaum-Metz procedure for multireader ROC study analysis", Acad Radiol
15:351), readers and cases both random, covariances estimated by jackknifing over cases. This is the
analysis of the R package MRMCaov (``mrmc(..., cov = jackknife)``), which has no Python counterpart; the
unit test checks it against MRMCaov's published output for the Van Dyke et al. (1993) study.

What it assumes: every reader read every case in every arm (a fully crossed design; readers who have
not finished are left out by the caller); readers and cases are random samples from their
populations; the figure of merit (AUC, sensitivity, specificity) is computed per reader and arm over
the same cases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

Metric = Callable[[np.ndarray, np.ndarray], float]


def empirical_auc(truth: np.ndarray, ratings: np.ndarray) -> float:
    """The area under the empirical ROC curve (Mann–Whitney; a tie counts one half). NaN without both
    positive and negative cases."""
    truth = np.asarray(truth, dtype=bool)
    positive, negative = np.asarray(ratings)[truth], np.asarray(ratings)[~truth]
    if not len(positive) or not len(negative):
        return float("nan")
    greater = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positive) * len(negative)))


def sensitivity(truth: np.ndarray, calls: np.ndarray) -> float:
    """The share of positive cases called positive; NaN without positive cases."""
    truth = np.asarray(truth, dtype=bool)
    return float(np.asarray(calls, dtype=bool)[truth].mean()) if truth.any() else float("nan")


def specificity(truth: np.ndarray, calls: np.ndarray) -> float:
    """The share of negative cases called negative; NaN without negative cases."""
    truth = np.asarray(truth, dtype=bool)
    return float((~np.asarray(calls, dtype=bool))[~truth].mean()) if (~truth).any() else float("nan")


@dataclass(frozen=True)
class Comparison:
    """Arm ``first`` minus arm ``second``, averaged over readers, with its 95% confidence interval."""

    first: str
    second: str
    difference: float
    standard_error: float
    degrees_of_freedom: float
    ci_low: float
    ci_high: float
    p_value: float
    f_statistic: float


@dataclass(frozen=True)
class VarianceComponents:
    """The Obuchowski–Rockette error variance and covariances, and the two mean squares of the ANOVA."""

    error: float  # Var: same reader, same arm
    cov1: float  # same reader, different arms
    cov2: float  # different readers, same arm
    cov3: float  # different readers, different arms
    ms_treatment: float
    ms_treatment_reader: float


def figures_of_merit(scores: np.ndarray, truth: np.ndarray, metric: Metric) -> np.ndarray:
    """``metric`` per arm and reader, (T, R), from scores (T, R, N) over N cases."""
    return np.array([[metric(truth, reader) for reader in arm] for arm in scores])


def jackknife_covariance(scores: np.ndarray, truth: np.ndarray, metric: Metric) -> np.ndarray:
    """The (T*R, T*R) covariance of the figures of merit, from leaving out one case at a time.

    Only the cases the metric depends on are left out, and counted: the positive ones for sensitivity, the
    negative ones for specificity, all for AUC (as MRMCaov does).
    """
    truth = np.asarray(truth, dtype=bool)
    relevant = {sensitivity: truth, specificity: ~truth}.get(metric, np.ones_like(truth))
    left_out = []
    for case in np.flatnonzero(relevant):
        kept = np.arange(len(truth)) != case
        left_out.append(figures_of_merit(scores[:, :, kept], truth[kept], metric).ravel())
    left_out = np.stack(left_out)  # (N relevant, T*R)
    deviations = left_out - left_out.mean(axis=0)
    count = len(left_out)
    return (count - 1) / count * deviations.T @ deviations


def variance_components(scores: np.ndarray, truth: np.ndarray, metric: Metric) -> VarianceComponents:
    """The OR components for scores (T, R, N): T arms, R readers, N cases."""
    arms, readers, _ = scores.shape
    merit = figures_of_merit(scores, truth, metric)
    covariance = jackknife_covariance(scores, truth, metric)
    arm_of = np.repeat(np.arange(arms), readers)
    reader_of = np.tile(np.arange(readers), arms)
    same_arm, same_reader = arm_of[:, None] == arm_of[None, :], reader_of[:, None] == reader_of[None, :]
    off_diagonal = ~np.eye(arms * readers, dtype=bool)
    grand, arm_means, reader_means = merit.mean(), merit.mean(axis=1), merit.mean(axis=0)
    interaction = merit - arm_means[:, None] - reader_means[None, :] + grand
    return VarianceComponents(
        error=float(np.diag(covariance).mean()),
        cov1=float(covariance[same_reader & ~same_arm].mean()) if arms > 1 else 0.0,
        cov2=float(covariance[same_arm & ~same_reader & off_diagonal].mean()),
        cov3=float(covariance[~same_arm & ~same_reader].mean()) if arms > 1 else 0.0,
        ms_treatment=float(readers * ((arm_means - grand) ** 2).sum() / max(arms - 1, 1)),
        ms_treatment_reader=float((interaction**2).sum() / max((arms - 1) * (readers - 1), 1)),
    )


def compare(scores: np.ndarray, truth: np.ndarray, metric: Metric, names: tuple[str, str]) -> Comparison:
    """Random-reader random-case OR test of two arms: scores (2, R, N), R ≥ 2 readers."""
    arms, readers, _ = scores.shape
    if arms != 2 or readers < 2:
        raise ValueError(f"compare needs two arms and at least two readers; got {arms} arms, {readers} readers")
    parts = variance_components(scores, truth, metric)
    merit = figures_of_merit(scores, truth, metric)
    difference = float(merit[0].mean() - merit[1].mean())
    # Hillis (2008): the denominator MS(T:R) + R * max(Cov2 - Cov3, 0), with its degrees of freedom.
    denominator = parts.ms_treatment_reader + readers * max(parts.cov2 - parts.cov3, 0.0)
    if denominator <= 0:  # every reader agreed exactly in both arms: no spread to test against
        nan = float("nan")
        return Comparison(*names, difference, 0.0, nan, difference, difference, nan, nan)
    freedom = denominator**2 / (parts.ms_treatment_reader**2 / (readers - 1)) if parts.ms_treatment_reader else np.inf
    error = float(np.sqrt(2 * denominator / readers))
    half_width = float(stats.t.ppf(0.975, freedom)) * error
    f_statistic = parts.ms_treatment / denominator
    return Comparison(
        *names,
        difference=difference,
        standard_error=error,
        degrees_of_freedom=float(freedom),
        ci_low=difference - half_width,
        ci_high=difference + half_width,
        p_value=float(stats.f.sf(f_statistic, 1, freedom)),
        f_statistic=float(f_statistic),
    )
