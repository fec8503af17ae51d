"""An open study's cases are recognised in any copy a reader could take to Review, and nothing else is."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from medattn.scan.load import load_scan
from medattn.study.blinding import SAME_CASE, fingerprint, fingerprints, is_a_case
from medattn.study.design import SyntheticCaseSet
from tests.conftest import PYDICOM_DATA_FILES


def copies(image: np.ndarray) -> dict[str, np.ndarray]:
    """What a reader can make of a study's image (uint8): the browser's save, re-encoded, resized, re-windowed."""
    jpeg = io.BytesIO()
    Image.fromarray(image).save(jpeg, "JPEG", quality=70)
    unit = image / 255.0
    return {
        "JPEG q70": np.asarray(Image.open(jpeg)),
        "300 px": np.asarray(Image.fromarray(image).resize((300, 300))),
        "inverted": 255 - image,
        "gamma 2": unit**2,
        "gamma 0.5": unit**0.5,
        "clipped window": np.clip(unit * 1.5 - 0.25, 0, 1),
        "RGB": np.repeat(image[..., None], 3, axis=2),
    }


def test_a_case_is_recognised_in_every_copy_and_no_other_case_is_taken_for_it():
    """The synthetic benchmark's cases are far more alike than real films: the hardest place to tell them apart."""
    case_set = SyntheticCaseSet(7, 256, 24, 0.5, ("nodule", "effusion", "cardiomegaly"))
    images = [np.round(case_set.case(i).image * 255).astype(np.uint8) for i in range(24)]
    cases = fingerprints(images)
    likeness = np.abs(cases @ cases.T)
    np.fill_diagonal(likeness, 0)
    assert likeness.max() < SAME_CASE - 0.03, likeness.max()  # different cases: at most about 0.84 measured
    for position, image in enumerate(images[:8]):
        for kind, copy in copies(image).items():
            assert abs(cases[position] @ fingerprint(copy)) > SAME_CASE + 0.03, kind  # about 0.95 at least
            assert is_a_case(cases, copy), kind


def test_a_real_radiograph_is_recognised_in_its_copies_and_not_among_synthetic_cases():
    pixels = load_scan(PYDICOM_DATA_FILES / "RG1_J2KR.dcm").frame(0)
    shown = np.round((pixels - pixels.min()) / np.ptp(pixels) * 255).astype(np.uint8)
    study = fingerprints([shown])
    assert is_a_case(study, pixels)  # the file itself, in its own units
    assert all(is_a_case(study, copy) for copy in copies(shown).values())
    synthetic = SyntheticCaseSet(7, 256, 12, 0.5, ("nodule",))
    assert not is_a_case(study, synthetic.case(0).image)
    assert not is_a_case(fingerprints([synthetic.case(i).image for i in range(12)]), pixels)
    assert not is_a_case(fingerprints([]), pixels)  # a study with no case holds nothing
