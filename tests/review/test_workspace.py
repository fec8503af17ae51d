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


def prediction(top: float, unlike: bool = False) -> Prediction:
    return Prediction({"a": top, "b": top / 2}, {"a": 0.5, "b": 0.5}, [], {}, 50.0 if unlike else 1.0, 10.0)


def test_worklist_ranks_by_the_highest_probability_and_puts_unlike_scans_last():
    workspace = Workspace()
    keys = [workspace.add(path.name, path.read_bytes()).key for path in list(synthetic_samples().values())[:3]]
    workspace.add("notes.txt", b"not a scan")
    predictions = {keys[0]: prediction(0.2), keys[1]: prediction(0.99, unlike=True), keys[2]: prediction(0.7)}
    assert [case.key for case in workspace.ranked(predictions)] == [keys[2], keys[0], keys[1]]
