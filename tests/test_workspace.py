import numpy as np

from medattn.workspace import CT_WINDOWS, Workspace, submission_id, window_presets
from tests.conftest import PYDICOM_DATA_FILES, PYDICOM_FILES


def test_only_the_case_on_screen_keeps_its_pixels(ct_file):
    workspace = Workspace()
    first = workspace.add("ct.dcm", ct_file.read_bytes())
    second = workspace.add("mr.dcm", (PYDICOM_FILES / "MR_small.dcm").read_bytes())
    bad = workspace.add("notes.txt", b"not a scan")
    assert workspace.current_case is bad and "not a DICOM" in bad.error and bad.thumbnail is None
    assert first._scan is None and second._scan is None  # decoded pixels released
    assert first.thumbnail.shape == (96, 96) and second.instance_uid
    assert [case.name for case in workspace.readable] == ["ct.dcm", "mr.dcm"]
    workspace.select(first.key)
    assert first.scan.modality == "CT" and first._scan is not None  # decoded again on demand
    assert workspace.add("same bytes, other name.dcm", ct_file.read_bytes()) is first


def test_window_presets_follow_the_modality_and_photometric_interpretation(ct_file):
    workspace = Workspace()
    ct = window_presets(workspace.add("ct.dcm", ct_file.read_bytes()).scan)
    assert {"File default", "Full range"} | set(CT_WINDOWS) <= set(ct)
    hand = workspace.add("hand.dcm", (PYDICOM_DATA_FILES / "RG3_UNCR.dcm").read_bytes()).scan  # MONOCHROME1
    presets = window_presets(hand)
    # Dense bone is shown bright; in MONOCHROME1 that is low stored values, so its window sits lower.
    assert presets["Bone"][0] < presets["Lung"][0]
    shown = hand.display(0, presets["Bone"]).astype(float)
    assert np.corrcoef(hand.frames[0].ravel(), shown.ravel())[0, 1] < 0


def test_submission_id_is_the_same_for_the_same_answers_only():
    answers = {"verdicts": {"nodule": "agree"}, "note": "x"}
    key = submission_id("salt", "case", "model", 0, answers)
    assert key == submission_id("salt", "case", "model", 0, dict(answers))
    assert key != submission_id("salt", "case", "model", 0, answers | {"note": "y"})
    assert key != submission_id("other session", "case", "model", 0, answers)
