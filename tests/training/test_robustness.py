import json
import shutil

import numpy as np
import pytest

from medattn import load_scan
from medattn.assets import DEFAULT_MODEL_DIR, SAMPLES_DIR
from medattn.benchmark import FINDINGS, generate_case
from medattn.cli import main
from medattn.model.card import read_card
from medattn.training.robustness import (
    ROBUSTNESS_SEED,
    SHIFTS,
    inserted_lesion_pointing,
    measure,
    risk_at_coverage,
    shifted_cases,
    verdict,
    wrong_calls,
)
from tests.conftest import CHEST_CR_LUNG_FIELDS, SYNTHETIC_LUNG_FIELDS, chest_cr_pixels

SHIFT = {shift.name: shift for shift in SHIFTS}
HEART = FINDINGS.index("cardiomegaly")
# A share of inserted nodules the nodule attention must peak on, of 40 placed in the lung fields in turn.
INSERTED_FOUND = 0.5


def centre_of(mask: np.ndarray) -> np.ndarray:
    rows, columns = np.nonzero(mask)
    return np.array([rows.mean(), columns.mean()])


def test_mirroring_and_rotation_move_the_findings_with_the_image():
    images, masks = shifted_cases(SHIFT["none"], 30)
    mirrored_images, mirrored = shifted_cases(SHIFT["mirrored left-right"], 30)
    np.testing.assert_array_equal(mirrored_images, images[:, :, ::-1])
    hearts = [i for i in range(30) if masks[i, HEART].any()]
    # The heart sits right of the image's centre (the patient's left) and moves to the left when mirrored.
    assert all(centre_of(masks[i, HEART])[1] > 64 > centre_of(mirrored[i, HEART])[1] for i in hearts)
    _, rotated = shifted_cases(SHIFT["rotated +10 degrees"], 30)
    for i in hearts:  # anticlockwise about the centre: a heart right of centre and below it moves up
        assert centre_of(rotated[i, HEART])[0] < centre_of(masks[i, HEART])[0]
        assert abs(rotated[i, HEART].sum() - masks[i, HEART].sum()) < 0.05 * masks[i, HEART].sum()


def test_subtler_findings_are_smaller_and_everything_else_is_drawn_as_before():
    _, usual = shifted_cases(SHIFT["none"], 60)
    _, subtle = shifted_cases(SHIFT["small, faint nodules"], 60)
    both = [i for i in range(60) if usual[i, 0].any()]
    assert both and all(subtle[i, 0].sum() < usual[i, 0].sum() for i in both)
    np.testing.assert_array_equal(subtle[:, 1:], usual[:, 1:])  # the same effusions and hearts
    _, shallow = shifted_cases(SHIFT["shallow effusions"], 60)
    effusions = [i for i in range(60) if usual[i, 1].any()]
    assert np.mean([shallow[i, 1].sum() < usual[i, 1].sum() for i in effusions]) > 0.9


def test_the_default_model_holds_on_clean_cases_and_flags_heavy_noise(predictor):
    clean = measure(predictor, *shifted_cases(SHIFT["none"], 120))
    assert clean["macro_auc"] > 0.97 and clean["flagged"] < 0.05
    noisy = measure(predictor, *shifted_cases(SHIFT["Gaussian noise sd 0.10"], 120))
    assert noisy["flagged"] > 0.9 and verdict(noisy, clean["error"]) in ("holds", "flagged")


def test_a_shift_that_is_worse_and_not_flagged_fails_silently():
    figures = {"macro_auc": 0.9, "macro_pointing": 0.9, "flagged": 0.2, "error": 0.05}
    assert verdict(figures, clean_error=0.02) == "fails silently"
    assert verdict(figures | {"flagged": 0.95}, clean_error=0.02) == "flagged"
    assert verdict(figures | {"macro_auc": 0.96}, clean_error=0.02) == "holds"
    assert verdict({"macro_auc": 0.99, "macro_pointing": 0.8, "flagged": 0.0, "error": 0.02}, 0.02) == "fails silently"
    # Ranked well and pointed well, but a blurred vessel called a nodule in one image of five: not "holds".
    blurred = {"macro_auc": 0.997, "macro_pointing": 1.0, "flagged": 0.01, "error": 0.22}
    assert verdict(blurred, clean_error=0.012) == "fails silently"
    assert verdict(blurred | {"error": 0.11}, clean_error=0.012) == "holds"  # within 10 points of clean


@pytest.mark.slow
def test_the_robustness_command_writes_every_shift_into_the_card(tmp_path, capsys):
    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, model)
    assert main(["robustness", "--model", str(model), "--cases", "40", "--write-card"]) == 0
    robustness = read_card(model).robustness
    assert [s.shift for s in robustness.shifts] == [shift.name for shift in SHIFTS]
    assert all(s.verdict in ("holds", "flagged", "fails silently") for s in robustness.shifts)
    assert set(robustness.capture_rates) >= {"cardiomegaly -> nodule", "nodule -> cardiomegaly"}
    printed = capsys.readouterr().out
    assert "| mirrored left-right | mirroring |" in printed
    json.dumps(read_card(model).to_dict())  # the card stays plain JSON


def test_nodules_inserted_into_a_synthetic_chest_draw_the_nodule_attention(predictor):
    """The control for the real radiograph below: the same insertions into the benchmark's normal sample, at 512 px."""
    pixels = load_scan(SAMPLES_DIR / "synthetic-normal.png").model_pixels(0)
    assert inserted_lesion_pointing(predictor, pixels, SYNTHETIC_LUNG_FIELDS, 40) >= INSERTED_FOUND


@pytest.mark.xfail(
    strict=True,
    reason="not met: the nodule attention does not move to nodules inserted into pydicom-data's real chest "
    "CR (docs/model.md, 'Off the benchmark'); strict, so that the day it does, the documentation is corrected",
)
def test_nodules_inserted_into_a_real_chest_radiograph_draw_the_nodule_attention(predictor):
    assert inserted_lesion_pointing(predictor, chest_cr_pixels(), CHEST_CR_LUNG_FIELDS, 40) >= INSERTED_FOUND


def test_risk_at_coverage_keeps_the_most_familiar_images_first():
    wrong = np.array([False, False, True, False, True, True])
    score = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # the wrong ones are the least familiar, but one
    assert risk_at_coverage(wrong, score, 1.0) == 0.5
    assert risk_at_coverage(wrong, score, 0.5) == pytest.approx(1 / 3)
    assert risk_at_coverage(wrong, score, 2 / 6) == 0.0
    assert risk_at_coverage(wrong, score, 0.01) == 0.0  # at least one image is kept


def test_the_default_model_is_rarely_wrong_on_clean_held_out_cases_and_often_under_heavy_noise(predictor):
    drawn = [generate_case(ROBUSTNESS_SEED, index) for index in range(40)]
    clean_wrong, clean_gate = wrong_calls(predictor, *shifted_cases(SHIFTS[0], 40, ROBUSTNESS_SEED, drawn))
    noisy_wrong, noisy_gate = wrong_calls(predictor, *shifted_cases(SHIFT["Gaussian noise sd 0.10"], 40, drawn=drawn))
    assert clean_wrong.mean() < 0.15 < noisy_wrong.mean()
    assert np.median(noisy_gate) > 1 > np.median(clean_gate)


@pytest.mark.parametrize(
    ("shift", "withheld_at_most", "withheld_at_least"),
    [
        ("gamma 2.0", 0.05, 0.0),  # the distance alone withheld 65% of these, the model calling them as well as clean
        ("blur sigma 1.5 px", 0.05, 0.0),  # and 68% of these
        ("zoomed out (0.85)", 0.05, 0.0),
        ("film noise sd 0.05-0.08", 1.0, 0.9),  # half called wrongly; the distance alone withheld 13%
        ("collimation borders", 1.0, 0.9),
    ],
)
def test_the_gate_keeps_acquisition_variation_and_withholds_what_the_model_gets_wrong(
    predictor, shift, withheld_at_most, withheld_at_least
):
    drawn = [generate_case(ROBUSTNESS_SEED, index) for index in range(40)]
    _, gate = wrong_calls(predictor, *shifted_cases(SHIFT[shift], 40, drawn=drawn))
    assert withheld_at_least <= (~(gate <= 1)).mean() <= withheld_at_most
