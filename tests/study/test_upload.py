"""A labelled folder uploaded as a study's case set: real files, a manifest or class folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medattn import load_scan
from medattn.errors import StudyError
from medattn.study.records import StudyStore
from medattn.study.upload import labelled_cases, truth_table
from tests.conftest import PYDICOM_FILES, dicom_with

SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "samples"
ARMS = ["none", "attention"]


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def folder_by_class() -> dict[str, bytes]:
    return {
        "cases/nodule/a.png": sample("synthetic-nodule.png"),
        "cases/normal/b.png": sample("synthetic-normal.png"),
        "cases/normal/c.dcm": (PYDICOM_FILES / "CT_small.dcm").read_bytes(),
    }


def test_class_folders_give_each_file_its_folders_finding():
    cases = labelled_cases(folder_by_class(), ("nodule",))
    assert [case.truth for case in cases] == [{"nodule": True}, {"nodule": False}, {"nodule": False}]
    ct = load_scan(PYDICOM_FILES / "CT_small.dcm")
    np.testing.assert_array_equal(cases[2].pixels, ct.model_pixels(0))  # as the model reads it, not re-windowed
    np.testing.assert_array_equal(cases[2].display, ct.display(0))
    assert truth_table(cases, ("nodule", "effusion"))[:, 0].tolist() == [1.0, 0.0, 0.0]


def test_a_manifest_names_several_findings_per_file_by_path_or_name():
    files = {
        "cases/one.png": sample("synthetic-nodule-effusion.png"),
        "cases/two.png": sample("synthetic-normal.png"),
        "cases/manifest.csv": b"file,nodule,effusion\ncases/one.png,1,yes\ntwo.png,0,no\n",
    }
    cases = labelled_cases(files, ("nodule", "effusion"))
    assert [case.truth for case in cases] == [{"nodule": True, "effusion": True}, {"nodule": False, "effusion": False}]


@pytest.mark.parametrize(
    "files, message",
    [
        ({"c/x.png": b"not an image", "c/y.png": b"", "c/m.csv": b"file,nodule\nx.png,1\ny.png,0\n"}, "cannot be read"),
        ({"c/a.png": b"", "c/b.png": b"", "c/m.csv": b"file,nodule\na.png,1\n"}, "not in the manifest"),
        ({"c/a.png": b"", "c/m.csv": b"file,nodule\na.png,1\nb.png,0\n"}, "names a file the folder does not"),
        ({"c/a.png": b"", "c/b.png": b"", "c/m.csv": b"file,nodule\na.png,maybe\nb.png,0\n"}, "write 1 or 0"),
        ({"c/a.png": b"", "c/m.csv": b"file,effusion\na.png,1\n"}, "lacks nodule"),
        ({"c/fracture/a.png": b"", "c/normal/b.png": b""}, "neither after a finding"),
    ],
)
def test_a_folder_that_cannot_be_read_as_labelled_cases_says_why(files, message):
    with pytest.raises(StudyError, match=message):
        labelled_cases(files, ("nodule",))


def test_a_file_with_burned_in_text_is_refused():
    files = folder_by_class() | {
        "cases/normal/d.dcm": dicom_with(PYDICOM_FILES / "CT_small.dcm", BurnedInAnnotation="YES")
    }
    with pytest.raises(StudyError, match="burned into its pixels"):
        labelled_cases(files, ("nodule",))


def test_an_uploaded_study_keeps_pixels_and_truth_only_and_needs_both_kinds_of_case(store):
    records = StudyStore(store)
    cases = labelled_cases(folder_by_class(), ("nodule",))
    study = records.create_from_upload(
        "Uploaded", cases, ("nodule",), ARMS, {"name": "m", "version": "1", "classes": ["nodule"]}
    )
    back = records.uploaded_cases(study)
    assert [case.truth for case in back] == [case.truth for case in cases]
    for kept, original in zip(back, cases, strict=True):
        np.testing.assert_array_equal(kept.pixels, original.pixels)
        np.testing.assert_array_equal(kept.display, original.display)
    assert study.cases == [0, 1, 2] and not study.synthetic
    with pytest.raises(StudyError, match="nodule is in none"):
        records.create_from_upload(
            "No nodule", cases[1:], ("nodule",), ARMS, {"name": "m", "version": "1", "classes": ["nodule"]}
        )
