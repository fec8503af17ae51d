"""The pages' logic through Streamlit's AppTest, with the real default model."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120


def review() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()


def test_review_starts_with_the_notice_and_a_prompt(predictor):
    at = review()
    assert not at.exception
    assert any("not for diagnosis" in w.value for w in at.warning)
    assert predictor.card["intended_use"] in [c.value for c in at.caption]
    assert "Upload a scan" in at.info[0].value


def test_sample_case_shows_image_overlay_and_probabilities():
    at = review()
    at.selectbox(key="sample").set_value("nodule").run()
    assert not at.exception
    assert "Pulmonary nodule" in at.subheader[0].value
    captions = image_captions(at)
    assert captions[0] == "Original" and captions[1].startswith("Attention overlay — Pulmonary nodule (")
    assert captions[2] == "Weight relative to the map's peak"
    table = at.dataframe[0].value
    assert table["Finding"].iloc[0] == "Pulmonary nodule"
    assert table["Probability"].between(0, 1).all()


def image_captions(at: AppTest) -> list[str]:
    return [caption for image in at.get("image") for caption in image.captions]


def test_every_explanation_method_can_be_shown():
    at = review()
    at.selectbox(key="sample").set_value("effusion").run()
    for method, title in (("gradcam", "Grad-CAM"), ("occlusion", "Occlusion")):
        at.selectbox(key="method").set_value(method).run()
        assert not at.exception
        assert image_captions(at)[1].startswith(f"{title} overlay — Pleural effusion (")
    at.slider(key="threshold").set_value(0.5).run()
    at.slider(key="outline").set_value(5).run()
    assert not at.exception


def test_uploaded_dicom_is_analysed(cr_jpeg2000_file):
    at = review()
    at.file_uploader(key="upload").set_value(("radiograph.dcm", cr_jpeg2000_file.read_bytes(), "application/dicom"))
    at.run()
    assert not at.exception and not at.error
    assert at.subheader[0].value.startswith(("Findings above threshold", "No finding above threshold"))
    details = at.dataframe[1].value
    assert dict(zip(details["Attribute"], details["Value"], strict=True))["Modality"] == "CR"


def test_bad_upload_shows_a_message_and_keeps_the_page_running():
    at = review()
    at.file_uploader(key="upload").set_value(("notes.txt", b"[click](javascript:alert(1)) not a scan", "text/plain"))
    at.run()
    assert not at.exception
    assert "cannot be shown" in at.error[0].value
    assert "not a DICOM, PNG, JPEG, TIFF or BMP image" in at.error[0].value


def test_model_page_shows_the_card():
    at = AppTest.from_file(str(ROOT / "pages" / "1_Model.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert [m.label for m in at.metric] == ["Macro AUC", "ECE after calibration", "Attention pointing game"]
    assert "never used in training" in at.caption[0].value
    quality = next(table.value for table in at.dataframe if "Method" in table.value)  # read from the card
    assert list(quality["Method"]) == ["Attention", "Grad-CAM", "Occlusion"]
    assert quality["Deletion AUC ↓"].between(0, 1).all()
