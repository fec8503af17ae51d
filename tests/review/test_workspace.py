from medattn import Prediction
from medattn.assets import synthetic_samples
from medattn.review.workspace import ByteBudget, Workspace
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


def test_next_and_previous_case_walk_the_worklists_order_then_the_cases_it_has_not_ranked():
    workspace = Workspace()
    keys = [workspace.add(path.name, path.read_bytes()).key for path in list(synthetic_samples().values())[:4]]
    workspace.add("notes.txt", b"not a scan")  # unreadable: never stepped onto
    assert workspace.beside(1) is None  # the unreadable file is on screen: it has no place in the walk
    workspace.select(keys[0])
    assert workspace.beside(1) == keys[1] and workspace.beside(-1) is None  # before any ranking: as opened
    workspace.ranked({keys[2]: prediction(0.9), keys[0]: prediction(0.5), keys[1]: prediction(0.1)})
    walked = [keys[2]]
    workspace.select(keys[2])
    while (following := workspace.beside(1)) is not None:
        walked.append(following)
        workspace.select(following)
    assert walked == [keys[2], keys[0], keys[1], keys[3]]  # ranked first, then the one opened after ranking
    assert workspace.beside(-1) == keys[1]


def test_a_session_and_a_server_hold_bounded_bytes_and_a_file_that_fails_holds_none(ct_file):
    """Five 150 MB non-image files took a server from 601 to 3,310 MB: every file's bytes were kept."""
    import gc

    ct, mr = ct_file.read_bytes(), (PYDICOM_FILES / "MR_small.dcm").read_bytes()
    server = ByteBudget(limit=len(ct) + len(mr) + 10)
    first = Workspace(server=server, max_bytes=len(ct) + 6000)
    assert len(mr) > 6000
    assert first.add("ct.dcm", ct).error is None and server.held == len(ct)
    refused = first.add("mr.dcm", mr)  # past this session's bound
    assert "this one would take it past" in refused.error and refused.content == b"" and server.held == len(ct)
    failed = first.add("notes.txt", b"x" * 5000)  # opened, failed: its bytes go at once
    assert "not a DICOM" in failed.error and failed.content == b"" and server.held == len(ct)

    second = Workspace(server=server)
    assert second.add("mr.dcm", mr).error is None and server.held == len(ct) + len(mr)
    crowded = second.add("other.dcm", (PYDICOM_FILES / "CT_small.dcm").read_bytes()[:-1] + b"\0")
    assert "as many files as it can for everyone" in crowded.error  # past the server's bound

    first.remove(next(key for key, case in first.cases.items() if case.name == "ct.dcm"))  # its bytes go back
    assert server.held == len(mr)
    del second, crowded
    gc.collect()  # a session let go gives back all it held
    assert server.held == 0
    few = Workspace(max_cases=2)
    few.add("ct.dcm", ct)
    few.add("mr.dcm", mr)
    assert "the most it keeps" in few.add("notes.txt", b"not a scan").error


def test_only_a_case_opened_from_the_pacs_is_marked_so(ct_file):
    """An uploaded file can carry any study's UIDs: its results must not be stored into that patient's record."""
    workspace = Workspace()
    content = ct_file.read_bytes()
    assert not workspace.add("upload.dcm", content).from_pacs
    assert workspace.add("Study 1a2b, image 1", content, from_pacs=True).from_pacs  # the same bytes, retrieved
    assert workspace.add("upload again.dcm", content).from_pacs  # uploading it again does not unmark it
