"""No patient identifier reaches the database, the logs, a report or an export.

A real CT file is given marker strings in the attributes the DICOM PS3.15 Basic Profile removes, and a
marker file name; it is then reviewed through the app, exported, and reported.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import matplotlib
import pytest
from streamlit.testing.v1 import AppTest

from medattn.review.report import render_report
from medattn.review.store import ReviewStore
from tests.conftest import dicom_with

ROOT = Path(__file__).resolve().parents[2]
UID = "1.2.826.0.1.3680043.9.7777.424242"  # a UID cannot hold letters: it is searched for as it is
IDENTIFIERS = {
    "PatientName": "ZZPHI^NAME",
    "PatientID": "ZZPHI-ID",
    "OtherPatientIDs": "ZZPHI-OTHER",
    "PatientAddress": "ZZPHI street",
    "PatientComments": "ZZPHI comments",
    "InstitutionName": "ZZPHI hospital",
    "InstitutionAddress": "ZZPHI institution address",
    "ReferringPhysicianName": "ZZPHI^REFERRER",
    "OperatorsName": "ZZPHI^OPERATOR",
    "PerformingPhysicianName": "ZZPHI^PERFORMER",
    "AccessionNumber": "ZZPHI-ACC",
    "StudyID": "ZZPHI-STUDY",
    "StudyDescription": "ZZPHI study description",
    "SeriesDescription": "ZZPHI series description",
    "ImageComments": "ZZPHI image comments",
    "DeviceSerialNumber": "ZZPHI-SERIAL",
    "SOPInstanceUID": UID,
}
FILE_NAME = "ZZFILE-smith-john.dcm"  # file names often carry a patient's name


def pdf_text(pdf: bytes) -> str:
    """The text of an uncompressed matplotlib PDF: its kerned string pieces joined, a line per TJ run."""
    pieces = re.findall(rb"\(((?:\\.|[^\\()])*)\)|(\]\s*TJ)", pdf)
    return "".join("\n" if end else text.decode("latin-1") for text, end in pieces)


def leaks(text: str) -> list[str]:
    return [marker for marker in ("ZZPHI", "ZZFILE", UID) if marker in text]


@pytest.fixture
def reviewed(tmp_path, monkeypatch, ct_file, caplog, capfd):
    """The marked file uploaded, reviewed and saved through the app; what the app showed and logged."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("MEDATTN_DATA_DIR", str(data_dir))
    caplog.set_level("DEBUG")
    content = dicom_with(ct_file, **IDENTIFIERS)
    assert b"ZZPHI" in content and UID.encode() in content  # the markers are really in the file
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.file_uploader(key="upload").set_value([(FILE_NAME, content, "application/dicom")]).run()
    at.text_input(key="reviewer").set_value("Dr Privacy").run()
    at.text_area[0].set_value("No identifier typed here.")
    next(b for b in at.button if b.label == "Save review").click().run()
    assert at.success, [e.value for e in at.error]
    at.switch_page("pages/views/history.py").run()
    at.switch_page("pages/views/worklist.py").run()
    assert not at.exception
    return at, data_dir, caplog, capfd


def test_the_database_holds_no_identifier(reviewed):
    _, data_dir, _, _ = reviewed
    files = [path for path in data_dir.iterdir() if path.is_file()]
    assert any(path.suffix == ".sqlite3" for path in files)
    for path in files:  # the database, its write-ahead log, and the secret
        assert not leaks(path.read_bytes().decode("latin-1")), path.name


def test_exports_and_reports_hold_no_identifier(reviewed, monkeypatch):
    at, data_dir, _, _ = reviewed
    store = ReviewStore.open(data_dir)
    exported = store.export_csv("Dr Privacy", store.reviews())
    store.close()
    assert next(csv.DictReader(io.StringIO(exported)))["reviewer"] == "Dr Privacy"
    assert not leaks(exported)
    report = at.session_state["report"]  # exactly what the page's download buttons draw
    assert not leaks(repr({k: v for k, v in vars(report).items() if isinstance(v, str | dict)}))
    monkeypatch.setitem(matplotlib.rcParams, "pdf.compression", 0)  # so the PDF's text can be read back
    text = pdf_text(render_report(report, "pdf"))
    assert "medattn" in text and "Scan key" in text  # the reader works
    assert not leaks(text)
    assert render_report(report, "png").startswith(b"\x89PNG")


def test_logs_and_the_page_hold_no_identifier(reviewed):
    at, _, caplog, capfd = reviewed
    logged = caplog.text + "".join(capfd.readouterr())
    assert not leaks(logged)
    at.switch_page("pages/views/review.py").run()
    shown = [str(getattr(element, "value", "")) for element in at.main] + [t.value for t in at.text]
    # The file name is the user's own and is shown to them; no attribute of the file is.
    assert not [text for text in shown if "ZZPHI" in text or UID in text]
