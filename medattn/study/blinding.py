"""An open reader study stays blind: its readers cannot take one of its cases to Review, where the model's answer
and every map are shown (saving the study's image and uploading it defeated the no-overlay arm).

A case is recognised by its likeness, not its bytes: the copy a browser saves may be re-encoded, resized,
inverted or windowed otherwise. The fingerprint is the image shrunk to 64×64, its values replaced by their
ranks (blind to windowing, gamma and inversion), less a blurred copy (the outline every chest film shares).
``tests/study/test_blinding.py`` measures the margin on the synthetic benchmark, whose images are far more alike
than real films: two different cases correlate at most 0.84; a case and its JPEG, 300 px, inverted, gamma 0.5
or 2, or clipped copy at least 0.94. A crop, or a screenshot with more than the image in it, is not recognised.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import rankdata

from medattn.access import Identity, may_read
from medattn.scan.resizing import resize
from medattn.study.records import Study

SIDE = 64
BLUR_SIDE = 8  # the blurred copy: the image at 8×8, enlarged again
SAME_CASE = 0.9  # |correlation| from which two images are the same case


def fingerprint(image: np.ndarray) -> np.ndarray:
    """(SIDE * SIDE,) unit vector of an image (H, W) or (H, W, 3), in any units."""
    grey = image.astype(np.float32)
    if grey.ndim == 3:
        grey = grey.mean(axis=2)
    ranks = rankdata(resize(grey, SIDE, SIDE)).reshape(SIDE, SIDE).astype(np.float32)
    detail = ranks - resize(resize(ranks, BLUR_SIDE, BLUR_SIDE), SIDE, SIDE)
    detail -= detail.mean()
    return (detail / max(float(np.linalg.norm(detail)), 1e-9)).ravel()


def fingerprints(images: list[np.ndarray]) -> np.ndarray:
    """(cases, SIDE * SIDE): each case's fingerprint, by case position."""
    return np.stack([fingerprint(image) for image in images]) if images else np.zeros((0, SIDE * SIDE), np.float32)


def is_a_case(cases: np.ndarray, image: np.ndarray) -> bool:
    """Whether ``image`` is one of the cases whose ``fingerprints`` are given, in any copy a reader could make."""
    return _holds(cases, fingerprint(image))


def _holds(cases: np.ndarray, image_print: np.ndarray) -> bool:
    return bool(len(cases)) and float(np.abs(cases @ image_print).max()) >= SAME_CASE


def study_holding(
    image_print: np.ndarray, who: Identity, studies: list[Study], cases_of: Callable[[Study], np.ndarray]
) -> Study | None:
    """The open study that signed-in ``who`` reads and that holds the image whose ``fingerprint`` is
    ``image_print`` as a case, if any: Review keeps the image from them until the study closes. ``cases_of``: a
    study's case fingerprints. Both are the caller's to cache: Review asks on every rerun, and a 2k radiograph's
    fingerprint takes about 10 ms. A personal app's one user is kept from nothing: no other reader's study is
    theirs to unblind."""
    if not who.verified:
        return None
    readable = [s for s in studies if s.closed_at is None and may_read(who, s.enrolled)]
    return next((study for study in readable if _holds(cases_of(study), image_print)), None)


def kept_wording(study: Study) -> str:
    return (
        f"This image is a case of the reader study '{study.name}', which you read and which is still open. Review "
        "does not show a study's cases to its readers until it closes, so that the study stays blind."
    )
