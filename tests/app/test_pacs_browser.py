"""The PACS round trip in the browser: a real Orthanc (DICOMweb) holding pydicom-data's chest CR, listed and
opened from the Worklist, its DICOM results downloaded and stored back from the Review page.

Screenshots go to $MEDATTN_ARTIFACTS (default: test-artifacts/).
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pydicom
import pytest

from medattn import load_scan
from medattn.pacs.dicomweb import Pacs
from medattn.pacs.outputs import dicom_bytes, map_values
from medattn.review.store import ReviewStore
from tests.app.browser_support import ARTIFACTS, WAIT_MS, require_chromium, settle
from tests.app.test_sign_in_browser import app_with_sign_in, sign_in
from tests.conftest import PYDICOM_DATA_FILES
from tests.pacs.conftest import dciodvfy_errors

require_chromium()

from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.slow


def downloaded_zip(page, button: str) -> dict[str, bytes]:
    settle(page)
    with page.expect_download(timeout=WAIT_MS) as download:
        page.get_by_role("button", name=button).click()
    with zipfile.ZipFile(download.value.path()) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_study_on_the_pacs_is_listed_opened_reviewed_and_its_results_stored_back(
    browser, orthanc, predictor, tmp_path
):
    pacs_settings = {
        "MEDATTN_DICOMWEB_URL": orthanc.dicomweb,
        "MEDATTN_DICOMWEB_USER": orthanc.user,
        "MEDATTN_DICOMWEB_PASSWORD": orthanc.password,
    }
    chest = PYDICOM_DATA_FILES / "RG1_J2KR.dcm"
    orthanc.upload(chest)
    with app_with_sign_in(tmp_path, pacs_settings) as url:  # a configured PACS makes the app shared
        reader = sign_in(browser, url, "reader-a")  # signed in, but the role allows no PACS
        reader.get_by_role("link", name="Worklist").click()
        expect(reader.get_by_text("Add scans to score them as one batch.")).to_be_visible(timeout=WAIT_MS)
        assert reader.get_by_text("Studies on the PACS").count() == 0
        assert reader.get_by_role("button", name="List studies").count() == 0
        reader.close()
        page = sign_in(browser, url, "pacs-reader", viewport=(1400, 1100))
        page.get_by_role("link", name="Worklist").click()
        page.get_by_role("button", name="List studies").click()
        expect(page.get_by_text("CR", exact=True)).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_text("1 image", exact=True)).to_be_visible()
        page.screenshot(path=ARTIFACTS / "pacs-worklist.png", full_page=True)
        page.get_by_role("button", name="Open", exact=True).click()
        page.get_by_role("button", name="Open in Review").click()

        expect(page.get_by_text("does not look like the images")).to_be_visible(timeout=WAIT_MS)
        # Withheld: the shareable results hold the report alone, without the patient's name.
        shared = downloaded_zip(page, "Download for sharing, de-identified (ZIP)")
        assert sorted(shared) == ["01-structured-report.dcm", "README.txt"]
        assert b"CompressedSamples" not in shared["01-structured-report.dcm"]
        assert "unlike the training data" in shared["README.txt"].decode()

        page.get_by_text("Show the model's output anyway").click()
        expect(page.get_by_text("not meaningful for this scan").first).to_be_visible(timeout=WAIT_MS)
        files = downloaded_zip(page, "Download DICOM results (ZIP)")
        assert [name for name in files if name.endswith(".dcm")] == [
            "01-parametric-map.dcm", "02-segmentation.dcm", "03-structured-report.dcm", "04-secondary-capture.dcm"
        ]  # fmt: skip
        settle(page)
        page.get_by_role("button", name="Store the results in the PACS").click()
        stored = "Stored 4 objects (parametric map, segmentation, structured report, secondary capture) in 4 new series"
        expect(page.get_by_text(stored)).to_be_visible(timeout=WAIT_MS)
        page.screenshot(path=ARTIFACTS / "pacs-review-stored.png", full_page=True)
    store = ReviewStore.open(tmp_path / "data")
    (logged,) = [entry for entry in store.audit_entries() if entry["action"] == "results stored in PACS"]
    store.close()
    assert logged["actor"] == "Dr PACS <dr.pacs@hospital.example>"  # the signed-in user, not a typed name

    pacs = Pacs(orthanc.dicomweb, orthanc.user, orthanc.password)
    source = pydicom.dcmread(chest, stop_before_pixels=True)
    results = [ds for ds in pacs.client.retrieve_study(source.StudyInstanceUID) if ds.Manufacturer == "medattn"]
    assert len(results) == 4 and len({ds.SeriesInstanceUID for ds in results}) == 4
    for ds in results:
        assert dciodvfy_errors(dicom_bytes(ds), tmp_path) == [], ds.Modality
    [parametric_map] = [ds for ds in results if ds.SOPClassUID == pydicom.uid.ParametricMapStorage]
    prediction = predictor.predict(load_scan(chest))
    shown = max(prediction.probabilities, key=prediction.probabilities.get)  # the page's first finding
    np.testing.assert_allclose(parametric_map.pixel_array, map_values(prediction.attention[shown])[0], atol=1e-6)
    stored_in_zip = pydicom.dcmread(io.BytesIO(files["01-parametric-map.dcm"]))
    assert stored_in_zip.SOPInstanceUID == parametric_map.SOPInstanceUID  # the download is what was stored
