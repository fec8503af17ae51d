"""A round trip with a real PACS: Debian's Orthanc and its DICOMweb plugin, started by the tests."""

from __future__ import annotations

import csv
import http.server
import threading
from dataclasses import replace

import numpy as np
import pydicom
import pytest

from medattn import load_scan
from medattn.cli import main
from medattn.errors import PacsError
from medattn.pacs.dicomweb import Pacs, content_digest
from medattn.pacs.outputs import build_results, dicom_bytes, map_values, scored_image, source_dataset
from tests.conftest import PYDICOM_DATA_FILES, free_port
from tests.pacs.conftest import dciodvfy_errors, dicom_of_sample

SECRET = b"test secret"


def series_uids(pacs: Pacs, study_uid: str) -> set[str]:
    return {answer["0020000E"]["Value"][0] for answer in pacs.client.search_for_series(study_uid)}


def connect(orthanc) -> Pacs:
    return Pacs(orthanc.dicomweb, orthanc.user, orthanc.password)


def test_a_chest_radiograph_on_the_server_is_listed_opened_scored_and_its_results_stored_back(
    orthanc, predictor, tmp_path
):
    orthanc.upload(PYDICOM_DATA_FILES / "RG1_J2KR.dcm")
    pacs = connect(orthanc)
    [study] = pacs.studies(SECRET)
    assert study.modalities == "CR" and study.instances == 1 and study.date == "2004-08-26"
    [image] = list(pacs.images(study.study_uid))
    content = dicom_bytes(image)
    scored = scored_image(predictor, load_scan(content), shown_anyway=True)  # unlike the training data
    results = build_results(source_dataset(content), scored)
    series_before = series_uids(pacs, study.study_uid)
    pacs.store(results.datasets)

    new_series = {ds.SeriesInstanceUID for ds in results.datasets}
    assert series_uids(pacs, study.study_uid) - series_before == new_series and len(new_series) == 4
    stored = [ds for series_uid in new_series for ds in pacs.client.retrieve_series(study.study_uid, series_uid)]
    assert sorted(ds.Modality for ds in stored) == ["OT", "OT", "SEG", "SR"]
    for ds in stored:
        assert dciodvfy_errors(dicom_bytes(ds), tmp_path) == [], ds.Modality
    [parametric_map] = [ds for ds in stored if ds.SOPClassUID == pydicom.uid.ParametricMapStorage]
    np.testing.assert_allclose(
        parametric_map.pixel_array, map_values(scored.maps[scored.finding])[0], rtol=0, atol=1e-6
    )
    # Stored again (a retried or resumed run): the same content, not sent again, not added.
    pacs.store(build_results(source_dataset(content), scored).datasets)
    assert len(pacs.client.search_for_instances(study.study_uid)) == 5
    # Other content under the same UIDs (the overlay as another screen drew it): Orthanc would keep the first copy
    # and answer success, so it is a conflict, reported before anything is sent.
    redrawn = replace(scored, overlay=255 - scored.overlay)
    with pytest.raises(PacsError, match="already holds 1 of these result objects with other content"):
        pacs.store(build_results(source_dataset(content), redrawn).datasets)
    [capture] = [ds for ds in stored if ds.Modality == "OT" and ds.SOPClassUID != pydicom.uid.ParametricMapStorage]
    assert content_digest(pacs.client.retrieve_instance(study.study_uid, capture.SeriesInstanceUID,
                                                        capture.SOPInstanceUID)) == content_digest(capture)  # fmt: skip
    # Opening the study again shows the image, not medattn's own results.
    assert [ds.SOPInstanceUID for ds in pacs.images(study.study_uid)] == [image.SOPInstanceUID]


def test_the_command_line_scores_a_server_stores_results_and_resumes(orthanc, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDATTN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MEDATTN_DICOMWEB_USER", orthanc.user)
    monkeypatch.setenv("MEDATTN_DICOMWEB_PASSWORD", orthanc.password)
    (tmp_path / "nodule.dcm").write_bytes(dicom_of_sample("nodule"))
    orthanc.upload(tmp_path / "nodule.dcm")
    orthanc.upload(PYDICOM_DATA_FILES / "RG1_J2KR.dcm")
    out = tmp_path / "results.csv"
    command = ["score", "--dicomweb", orthanc.dicomweb, "--store-results", "--out", str(out)]
    assert main(command) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 and {row["status"] for row in rows} == {"ok"}
    assert sorted(row["results"].split(".")[0] for row in rows) == ["1 objects stored", "4 objects stored"]
    assert not any("RG1" in value or "/" in value for row in rows for value in row.values())  # no path, no name
    pacs = connect(orthanc)
    # Two images; four series of results for the synthetic one, a report for the chest CR.
    assert sum(len(series_uids(pacs, study.study_uid)) for study in pacs.studies(SECRET)) == 7
    assert main([*command]) == 0  # resumed: nothing scored or stored twice
    assert len(list(csv.DictReader(out.open()))) == 2
    assert main(["score", "--dicomweb", orthanc.dicomweb, "--query", "ModalitiesInStudy=CT", "--out",
                 str(tmp_path / "ct.csv")]) == 0  # fmt: skip
    assert list(csv.DictReader((tmp_path / "ct.csv").open())) == []


def test_wrong_credentials_a_server_that_is_down_and_an_answer_that_is_not_dicom_get_clear_messages(
    orthanc, capsys, tmp_path
):
    with pytest.raises(PacsError, match="refused the credentials"):
        Pacs(orthanc.dicomweb, orthanc.user, "wrong").studies(SECRET)
    with pytest.raises(PacsError, match="cannot be reached"):
        Pacs(f"http://127.0.0.1:{free_port()}/dicom-web").studies(SECRET)
    with pytest.raises(PacsError, match="error \\(404\\)"):
        Pacs(f"{orthanc.rest}/not-dicom-web", orthanc.user, orthanc.password).studies(SECRET)

    class Html(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>a login page</html>")

        def log_message(self, *_):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(PacsError, match="not DICOM"):
            Pacs(f"http://127.0.0.1:{server.server_port}/dicom-web").studies(SECRET)
    finally:
        server.shutdown()
    # The command line says it in one line, with no traceback.
    out = tmp_path / "results.csv"
    assert main(["score", "--dicomweb", f"http://127.0.0.1:{free_port()}", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: The DICOMweb server at 127.0.0.1")
    assert not out.exists()  # nothing is left behind
    with pytest.raises(PacsError, match="http:// or https://"):
        Pacs("orthanc:8042")


def test_a_frozen_server_costs_one_answer_timeout_and_says_it_timed_out():
    """A server that accepts and never answers held the page 63.5 s (three 20 s timeouts), then said
    'cannot be reached'."""
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        pacs = Pacs(f"http://127.0.0.1:{listener.getsockname()[1]}/dicom-web", answer_timeout=1.0)
        started = time.monotonic()
        with pytest.raises(PacsError, match="timed out: it did not answer within 1 s, so medattn could not list"):
            pacs.studies(SECRET)
        with pytest.raises(PacsError, match=r"timed out: .* could not list the study's series"):
            list(pacs.images("1.2.3"))  # asked again at once: not waited for again
        assert time.monotonic() - started < 3
    finally:
        listener.close()


def test_a_store_the_server_refuses_is_reported_and_nothing_is_half_written(orthanc, predictor):
    content = dicom_of_sample("nodule")
    results = build_results(source_dataset(content), scored_image(predictor, load_scan(content)))
    with pytest.raises(PacsError, match="refused the credentials"):
        Pacs(orthanc.dicomweb, orthanc.user, "wrong").store(results.datasets)
    assert connect(orthanc).studies(SECRET) == []
