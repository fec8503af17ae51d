"""A reader study's design: its case set, its arms, and the order in which each reader reads.

Every reader reads every case once per arm. The readings come in as many blocks as there are arms;
each block holds every case once. Within a block, case ``c`` is read in arm ``(c + block + reader)
mod A``: over the blocks every case meets every arm, and the rotation by reader position
counterbalances the arms' order across readers (a Latin square). The order of cases within a block
is shuffled per reader, but each case stays in the same half of every block, so that two readings of
one case are always more than half a block apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from medattn.benchmark import FINDINGS, SyntheticCase, generate_case
from medattn.errors import StudyError

OVERLAYS = {"none": "No overlay", "attention": "Attention", "gradcam": "Grad-CAM", "occlusion": "Occlusion"}
WITH_PROBABILITIES = "+probabilities"
MAX_CASES, MAX_SIDE = 400, 1024


@dataclass(frozen=True)
class Arm:
    """What the reader is shown beside the scan: one method's maps (or none), and the model's
    probabilities or not."""

    overlay: str
    probabilities: bool

    @classmethod
    def parse(cls, name: str) -> Arm:
        overlay = name.removesuffix(WITH_PROBABILITIES)
        if overlay not in OVERLAYS:
            raise StudyError(f"'{name}' is not an arm; choose from {', '.join(all_arms())}.")
        return cls(overlay, name.endswith(WITH_PROBABILITIES))

    @property
    def name(self) -> str:
        return self.overlay + (WITH_PROBABILITIES if self.probabilities else "")

    @property
    def title(self) -> str:
        return OVERLAYS[self.overlay] + (", with the model's probabilities" if self.probabilities else "")


def all_arms() -> list[str]:
    return [Arm(overlay, shown).name for overlay in OVERLAYS for shown in (False, True)]


@dataclass(frozen=True)
class SyntheticCaseSet:
    """Cases from the built-in synthetic benchmark: the first ``positives`` cases (in the benchmark's own
    order for ``seed``) with at least one of ``findings`` present, then the first negatives, shuffled
    together. ``prevalence`` is the share of positives. Drawn again whenever needed: nothing is stored."""

    seed: int
    size: int
    count: int
    prevalence: float
    findings: tuple[str, ...]

    def validated(self) -> SyntheticCaseSet:
        if not 2 <= self.count <= MAX_CASES:
            raise StudyError(f"A study needs between 2 and {MAX_CASES} cases; {self.count} were asked for.")
        if not 64 <= self.size <= MAX_SIDE:
            raise StudyError(f"The image size must be between 64 and {MAX_SIDE} pixels.")
        if not self.findings or set(self.findings) - set(FINDINGS):
            raise StudyError(f"Choose the findings to read from {', '.join(FINDINGS)}.")
        positives = round(self.prevalence * self.count)
        if not 0 < positives < self.count:
            raise StudyError(
                f"A prevalence of {self.prevalence:.0%} of {self.count} cases leaves no positive or no negative "
                "case, and sensitivity, specificity and AUC need both. Choose another prevalence or more cases."
            )
        return self

    def indices(self) -> list[int]:
        """Each study case's index in the benchmark's stream for ``seed``, in study order."""
        return self.selection()[0]

    def selection(self) -> tuple[list[int], np.ndarray]:
        """Each study case's index in the benchmark's stream for ``seed``, and its truth (cases, findings) in
        the order of ``findings``, in study order."""
        wanted = {True: round(self.prevalence * self.count)}
        wanted[False] = self.count - wanted[True]
        chosen: list[tuple[int, np.ndarray]] = []
        index = 0
        columns = [FINDINGS.index(f) for f in self.findings]
        while wanted[True] or wanted[False]:
            labels = self.case(index).labels[columns]
            if wanted[bool(labels.any())]:
                chosen.append((index, labels))
                wanted[bool(labels.any())] -= 1
            index += 1
        order = np.random.default_rng([self.seed, 7]).permutation(len(chosen))
        return [chosen[i][0] for i in order], np.array([chosen[i][1] for i in order]).reshape(len(order), -1)

    def case(self, index: int) -> SyntheticCase:
        return generate_case(self.seed, index, self.size)


def reading_order(cases: int, arms: list[str], reader_position: int, seed: int) -> list[tuple[int, str]]:
    """Reader ``reader_position``'s readings, in order: (case position, arm name), every case once per arm."""
    rng = np.random.default_rng([seed, reader_position])
    half = cases // 2
    first, second = rng.permutation(half), half + rng.permutation(cases - half)
    order = []
    for block in range(len(arms)):
        first, second = rng.permutation(first), rng.permutation(second)
        order += [(int(c), arms[(c + block + reader_position) % len(arms)]) for c in np.concatenate([first, second])]
    return order


# The fewest positive and negative cases per finding a study is advised to have. With 10 of each, one reader's
# empirical AUC of 0.75 has a standard error of 0.11 (Hanley and McNeil, 1982, Radiology 143:29, equation 2):
# a 95% interval of about ±0.22, as wide as any effect a reader study of explanations hopes to find. Fewer
# cases are allowed, with this warning; none at all of either kind cannot be analysed and is refused.
ADVISED_CASES_PER_CLASS = 10


def _cases(count: int) -> str:
    return f"{count} case" if count == 1 else f"{count} cases"


def hanley_mcneil_error(auc: float, positives: int, negatives: int) -> float:
    """The standard error of an empirical AUC over ``positives`` and ``negatives`` cases (Hanley and McNeil,
    1982)."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)
    return float(np.sqrt(variance / (positives * negatives)))


def case_mix(truth: np.ndarray, findings: tuple[str, ...]) -> dict[str, list[int]]:
    """finding -> [cases with it, cases without it], from ``truth`` (cases, findings) in the order of
    ``findings``. Raises ``StudyError`` where a finding has no positive or no negative case: its sensitivity,
    specificity and AUC cannot be computed, and results would print "nan"."""
    truth = np.asarray(truth, dtype=bool).reshape(len(truth), len(findings))
    mix = {finding: [int(truth[:, c].sum()), int((~truth[:, c]).sum())] for c, finding in enumerate(findings)}
    for finding, (positives, negatives) in mix.items():
        if not positives or not negatives:
            raise StudyError(
                f"{finding} is {'in none' if not positives else 'in every one'} of the {len(truth)} cases: its "
                "sensitivity, specificity and AUC need cases with it and cases without it. Choose more cases, "
                f"another prevalence, or leave {finding} out."
            )
    return mix


def size_warnings(mix: dict[str, list[int]], name: Callable[[str], str]) -> list[str]:
    """Each finding with fewer than ``ADVISED_CASES_PER_CLASS`` positive or negative cases, and what that costs."""
    return [
        f"{name(finding)}: {_cases(positives)} with it and {negatives} without. One reader's AUC over so few has a "
        f"95% interval of about ±{1.96 * hanley_mcneil_error(0.75, positives, negatives):.2f} (Hanley and McNeil, "
        f"1982); at least {ADVISED_CASES_PER_CLASS} of each are advised."
        for finding, (positives, negatives) in mix.items()
        if min(positives, negatives) < ADVISED_CASES_PER_CLASS
    ]
