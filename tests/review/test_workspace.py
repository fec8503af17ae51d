from medattn import Prediction
from medattn.assets import synthetic_samples
from medattn.review.workspace import Workspace
from tests.conftest import PYDICOM_FILES


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


def prediction(top: float, unlikeness: float = 1.0) -> Prediction:
    return Prediction({"a": top, "b": top / 2}, {"a": 0.5, "b": 0.5}, [], {}, unlikeness, 10.0)


def test_worklist_ranks_by_the_highest_probability_and_puts_unlike_scans_last_least_unlike_first():
    workspace = Workspace()
    keys = [workspace.add(path.name, path.read_bytes()).key for path in list(synthetic_samples().values())]
    workspace.add("notes.txt", b"not a scan")
    predictions = {
        keys[0]: prediction(0.2),
        keys[1]: prediction(0.99, unlikeness=80.0),
        keys[2]: prediction(0.7),
        keys[3]: prediction(0.5, unlikeness=float("nan")),  # a NaN distance raises the alarm, and sorts last
        keys[4]: prediction(0.1, unlikeness=20.0),
    }
    assert [case.key for case in workspace.ranked(predictions)] == [keys[2], keys[0], keys[4], keys[1], keys[3]]
