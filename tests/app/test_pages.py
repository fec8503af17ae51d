"""Every page's logic through Streamlit's AppTest, with the real default model and a real SQLite store."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from medattn import Predictor, load_scan
from medattn.assets import DEFAULT_MODEL_DIR, all_samples, real_samples, synthetic_samples
from medattn.explain import EXPLAINERS
from medattn.explain.overlay import TRUTH_COLOUR
from medattn.pacs.dicomweb import StudySummary
from medattn.review.store import Review, ReviewStore
from medattn.review.text import escape_markdown
from medattn.scan.windowing import IMAGE_RANGE
from medattn.study.design import SyntheticCaseSet
from medattn.study.records import StudyStore
from medattn.training.robustness import SHIFTS
from tests.conftest import PYDICOM_FILES, model_with_diffuse_attention

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    """Each test gets its own review store and installation secret."""
    directory = tmp_path / "data"
    monkeypatch.setenv("MEDATTN_DATA_DIR", str(directory))
    monkeypatch.delenv("MEDATTN_DB_URL", raising=False)
    return directory


# Streamlit's [auth] settings as a shared app has them; AppTest never contacts the provider (the browser
# tests sign in through a real one, tests/app/test_sign_in_browser.py).
AUTH = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "s" * 32,
        "client_id": "medattn", "client_secret": "c" * 32,
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}  # fmt: skip


def app(user: dict | None = None, auth: bool = True) -> AppTest:
    """The app; with ``user``, as that signed-in user of a shared app (``auth``: whether sign-in is configured)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    if auth:
        at.secrets["auth"] = AUTH
    if user is not None:
        at.user = user
    return at.run()


def signed_in(name: str, *roles: str) -> dict:
    """ID-token claims of a signed-in user with ``roles``, as st.user holds them."""
    email = name.lower().replace(" ", ".") + "@hospital.example"
    return {"is_logged_in": True, "sub": f"sub-{email}", "iss": "http://idp", "name": name, "email": email,
            "roles": list(roles), "auth_time": int(time.time())}  # fmt: skip


def short_key(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()[:12]


def image_captions(at: AppTest) -> list[str]:
    return [caption for image in at.get("image") for caption in image.captions]


def captions(at: AppTest) -> list[str]:
    return [caption.value for caption in at.caption]


def viewer_arguments(at: AppTest) -> dict:
    """What the page handed the reading viewer: its JSON arguments, and its bytes ones inflated."""
    (element,) = at.get("component_instance")
    arguments = json.loads(element.proto.json_args)
    for special in element.proto.special_args:  # the overlay deflated, the scan's values as they are
        arguments[special.key] = special.bytes if special.key == "pixels" else zlib.decompress(special.bytes)
    return arguments


def choose_opacity(at: AppTest, opacity: float) -> AppTest:
    """As a reader lets go of the viewer's opacity slider: the viewer draws it, then tells the page."""
    at.session_state["viewer"] = {"opacity": opacity, "id": f"opacity-{opacity}"}
    return at.run()


def open_sample(name: str = "synthetic nodule", user: dict | None = None) -> AppTest:
    at = app(user)
    at.selectbox(key="sample").set_value(name).run()
    assert not at.exception
    return at


def test_review_starts_with_the_notice_and_a_prompt(predictor):
    at = app()
    assert not at.exception
    assert any("not for diagnosis" in w.value for w in at.warning)
    assert predictor.card.intended_use in [c.value for c in at.caption]
    assert "Upload a scan" in at.info[0].value


def test_sample_case_shows_image_overlay_and_probabilities():
    at = open_sample()
    assert "Pulmonary nodule" in at.subheader[0].value
    assert "Attention overlay — Pulmonary nodule" in captions(at)  # no compute time in a caption
    assert any(c.startswith("**Map stability: holds.**") for c in captions(at))  # beside the faithfulness check
    assert image_captions(at) == ["Attention relative to uniform (1x: spread evenly), on one scale for every scan"]
    assert viewer_arguments(at)["overlay_shape"] == [512, 512]  # the map over the scan in the viewer
    table = at.dataframe[0].value
    assert table["Finding"].iloc[0] == "Pulmonary nodule"
    assert table["Probability"].iloc[0] == "> 99%" and table["Threshold"].str.endswith("%").all()
    assert at.get("vega_lite_chart")  # the probability bars with their thresholds
    assert "medattn-cxr-synthetic" in " ".join(c.value for c in at.caption)  # model name and version


@pytest.mark.parametrize("sample", list(all_samples()))
def test_every_sample_case_opens_and_real_scans_are_called_unlike_the_training_data(sample):
    at = open_sample(sample)
    warnings = [e.value for e in at.error]
    if sample.startswith("real"):  # the default model saw only synthetic radiographs
        (warning,) = warnings
        assert warning.startswith("This scan does not look like the images this model was trained on")
        assert_withheld(at)
    else:
        assert warnings == [] and at.subheader and viewer_arguments(at)["overlay"]


def verdicts(at: AppTest) -> list:
    """The review form's verdict radios, one per finding."""
    return [radio for radio in at.radio if radio.key.startswith("verdict-")]


def assert_withheld(at: AppTest) -> None:
    """Nothing of the model's output is on the page: no headline, no number, no map; the scan is."""
    assert not at.subheader and not at.dataframe and not at.get("vega_lite_chart") and not at.get("image")
    assert viewer_arguments(at)["overlay"] is None  # the scan alone
    assert any("withheld" in caption for caption in captions(at))
    assert not verdicts(at)  # nor in the review form: with no call seen, there is no verdict to give


def test_an_unlike_scan_is_shown_only_on_request_and_every_number_stays_marked():
    at = open_sample("real CR chest, JPEG 2000")
    assert_withheld(at)
    case = at.session_state["workspace"].current_case
    at.toggle(key=f"reveal-{case.key[:12]}").set_value(True).run()
    assert not at.exception
    assert at.subheader[0].value.endswith("— not meaningful for this scan")
    (explained,) = [caption for caption in captions(at) if caption.startswith("Attention overlay — ")]
    assert "not meaningful" in explained
    assert set(at.dataframe[0].value["Call"]) == {"not meaningful"}
    assert sum(e.value.startswith("Not meaningful for this scan") for e in at.error) == 1  # beside the bars
    assert len(verdicts(at)) == 3 and all("not meaningful for this scan" in radio.label for radio in verdicts(at))


def test_every_explanation_method_and_overlay_control_can_be_used():
    at = open_sample("synthetic effusion")
    for method, title in (("gradcam", "Grad-CAM"), ("occlusion", "Occlusion")):
        at.selectbox(key="method").set_value(method).run()
        assert not at.exception
        assert f"{title} overlay — Pleural effusion" in captions(at)
    at.slider(key="threshold").set_value(0.5).run()
    at.slider(key="outline").set_value(5).run()
    choose_opacity(at, 0.8)
    at.selectbox(key="colormap").set_value("viridis").run()
    assert not at.exception


def test_uploaded_compressed_dicom_gets_window_presets(cr_jpeg2000_file):
    at = app()
    content = cr_jpeg2000_file.read_bytes()
    at.file_uploader(key="upload").set_value([("radiograph.dcm", content, "application/dicom")]).run()
    assert not at.exception
    assert [e.value[:44] for e in at.error] == ["This scan does not look like the images this"]  # a real CR
    assert_withheld(at)
    (details,) = [t.value for t in at.text if t.value.startswith("Modality: ")]
    assert "Modality: CR\n" in details and "Transfer syntax: JPEG 2000 Image Compression (Lossless Only)" in details
    window = at.selectbox(key=f"window-{short_key(content)}")
    assert {"File default", "Full range", "Lung", "Soft tissue", "Bone"} <= set(window.options)
    window.set_value("Bone").run()
    assert not at.exception
    scan = load_scan(content)
    assert viewer_arguments(at)["window"] == list(scan.window_presets()["Bone"])  # the viewer starts from it


def test_multi_frame_scan_has_a_frame_slider():
    at = open_sample("real MR, 10 frames, JPEG-LS")
    case = at.session_state["workspace"].current_case
    frame = at.slider(key=f"frame-{case.key[:12]}")
    assert (frame.min, frame.max) == (1, 10)
    frame.set_value(7).run()
    handed = viewer_arguments(at)  # a real MR: its output withheld, its frames not
    assert not at.exception and (handed["frame"], handed["frames"], handed["first"]) == (6, 10, 0)  # all 10, at 7
    at.toggle(key=f"cine-{case.key[:12]}").set_value(True).run()
    assert not at.exception
    assert image_captions(at)[0] == "All 10 frames, 10 per second"  # the loop stands where the still was


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("notes.txt", b"[click](javascript:alert(1)) not a scan", "not a DICOM, PNG, JPEG, TIFF or BMP image"),
        ("plan.dcm", (PYDICOM_FILES / "rtplan.dcm").read_bytes(), "holds no image (it is an RT Plan)"),
        ("cut.dcm", (PYDICOM_FILES / "CT_small.dcm").read_bytes()[:-3000], "truncated"),
    ],
)
def test_a_rejected_upload_gets_one_message_no_traceback_and_changes_nothing(
    name, content, message, data_dir, caplog, capfd
):
    at = app()
    at.file_uploader(key="upload").set_value([(name, content, "application/octet-stream")]).run()
    assert not at.exception
    (error,) = at.error
    shown = error.value.replace("\\", "")  # the page escapes Markdown: the text shows literally
    assert shown.startswith("This file cannot be shown.") and message in shown
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]  # nothing logged as a failure
    assert "ScanError" not in "".join(capfd.readouterr())  # and no traceback of it printed
    assert not (data_dir / "reviews.sqlite3").exists() or ReviewStore.open(data_dir).reviews() == []
    at.selectbox(key="sample").set_value("synthetic normal").run()  # and the next file still opens
    assert not at.exception and at.subheader


def save_review(at: AppTest, reviewer: str | None = "Dr Test", disagree: bool = True) -> AppTest:
    """Agree with every call of the model, or disagree with the first; the reading follows the verdicts.
    ``reviewer`` None: the signed-in identity, which is not typed."""
    if reviewer is not None:
        at.text_input(key="reviewer").set_value(reviewer).run()
    reading = []
    for number, radio in enumerate(verdicts(at)):
        verdict = "disagree" if disagree and number == 0 else "agree"
        radio.set_value(verdict)
        finding = radio.key.split("-")[1]
        if ("says present" in radio.label) == (verdict == "agree"):
            reading.append(finding)
    at.multiselect(key=next(m.key for m in at.multiselect if m.key.startswith("corrected-"))).set_value(reading)
    at.text_area[0].set_value("Reviewed in a test.")
    (submit,) = [button for button in at.button if button.label == "Save review"]
    return submit.click().run()


def literal(column) -> list[str]:
    """A table's cells as the reader sees them: the page escapes Markdown in names and notes."""
    return [value.replace("\\", "") for value in column]


def saved(at: AppTest) -> list[str]:
    """The success messages of saving a review (the faithfulness check's verdict is a success message too)."""
    return [s.value for s in at.success if s.value.startswith("Review saved")]


def test_feedback_is_saved_once_and_listed_on_history(data_dir):
    at = open_sample()
    save_review(at)
    assert saved(at)[0].startswith("Review saved (number 1)")
    save_review(at)  # the same answers again, as a double click or a rerun would send them
    assert saved(at)[0].startswith("Review saved (number 1)")
    at.switch_page("pages/views/history.py").run()
    assert not at.exception
    history = at.table[0].value
    assert literal(history["Reviewer"]) == ["Dr Test"] and history["Disagreed on"].iloc[0] == "Pulmonary nodule"
    store = ReviewStore.open(data_dir)
    assert len(store.reviews()) == 1 and len(store.audit_entries()) == 1
    store.close()
    # The scan is open in this session: History names it, shows it and reopens it into Review.
    assert literal(history["Scan"]) == ["synthetic-nodule.png"] and len(at.get("image")) == 1  # its thumbnail
    reviewed = at.session_state["workspace"].current
    at.switch_page("pages/views/review.py").run()
    at.selectbox(key="sample").set_value("synthetic effusion").run()  # another scan on screen
    at.switch_page("pages/views/history.py").run()
    (reopen,) = [b for b in at.button if b.label == "Open in Review"]
    reopen.click().run()
    assert at.session_state["workspace"].current == reviewed and not at.exception


def test_a_review_without_a_reviewer_is_refused_and_nothing_is_stored(data_dir):
    at = open_sample()
    save_review(at, reviewer="  ")
    assert "Enter your name as the reviewer" in at.error[0].value
    store = ReviewStore.open(data_dir)
    assert store.reviews() == [] and store.audit_entries() == []
    store.close()


def test_history_filters_disagreements():
    at = open_sample()
    save_review(at, reviewer="Dr Agree", disagree=False)
    at.selectbox(key="sample").set_value("synthetic effusion").run()
    save_review(at, reviewer="Dr Disagree", disagree=True)
    at.switch_page("pages/views/history.py").run()
    assert "2 of 2 reviews" in at.caption[0].value
    at.checkbox(key="history-disagree").check().run()
    assert literal(at.table[0].value["Reviewer"]) == ["Dr Disagree"]
    at.multiselect(key="history-reviewer").set_value(["Dr Agree"]).run()
    assert "0 of 2 reviews" in at.caption[0].value


def test_worklist_scores_a_batch_most_suspicious_first_and_opens_one_in_review():
    at = app()
    at.switch_page("pages/views/worklist.py").run()
    assert "Add scans" in at.info[0].value
    at.button(key="add-samples").click().run()
    assert not at.exception
    assert [m.value for m in at.markdown[:4]] == ["**Scan**", "**File**", "**Model's findings**", "**Review**"]
    texts = [t.value for t in at.text]
    names, findings = texts[0::3], texts[1::3]
    samples = synthetic_samples()
    assert len(names) == len(samples) + len(real_samples())
    # Synthetic cases first, most suspicious first, each with every finding above threshold (or none).
    highest = [max(float(p.rstrip("%)")) for p in re.findall(r"\d+%\)?", text)) for text in findings[: len(samples)]]
    assert highest == sorted(highest, reverse=True)
    assert findings[names.index("synthetic-normal.png")].startswith("No finding above threshold (highest: ")
    assert findings[names.index("synthetic-nodule.png")].startswith("Pulmonary nodule ")
    # The real scans, unlike the training data, last, least unlike first, with no probability shown.
    unlike = [float(text.split("unlikeness ")[1].split(" ")[0]) for text in findings[len(samples) :]]
    assert unlike == sorted(unlike) and not any("%" in text for text in findings[len(samples) :])
    assert names.index("synthetic-normal.png") > names.index("synthetic-nodule.png")
    normal = hashlib.sha256(samples["normal"].read_bytes()).hexdigest()[:12]
    at.button(key=f"open-{normal}").click().run()
    assert not at.exception
    assert at.session_state["workspace"].current_case.name == "synthetic-normal.png"


def test_model_page_shows_the_card_curves_and_explanation_quality():
    at = app()
    at.switch_page("pages/views/model.py").run()
    assert not at.exception
    assert [m.label for m in at.metric] == ["Macro AUC", "ECE after calibration", "Attention pointing game"]
    assert "a test split never used to train the model, pick its epoch or calibrate it" in at.caption[0].value
    assert len(at.get("vega_lite_chart")) >= 2  # ROC curves and the reliability diagram
    quality = next(table.value for table in at.table if "Method" in table.value)
    titles = [explainer.title for explainer in EXPLAINERS.values()]
    assert list(quality["Method"]) == [*titles, "Random order (reference)"]
    assert quality["Deletion ↓"].astype(float).between(0, 1).all()
    # Two decimals in every row, and a dash, never "None", where the reference has no pointing game.
    assert all(len(value.split(".")[1]) == 2 for value in quality["Pointing ↑"].iloc[: len(titles)])
    assert list(quality["Pointing ↑"].iloc[-1:]) == ["—"] and "None" not in quality.to_string()
    assert all(metric.help for metric in at.metric)  # "ECE after calibration" is explained where it is shown
    shifts = next(table.value for table in at.table if "Shift" in table.value and "Verdict" in table.value)
    assert len(shifts) == len(SHIFTS) and shifts["Shift"].iloc[0] == "none"
    assert set(shifts["Verdict"]) <= {"holds", "flagged as unlike", "⚠ fails silently"}
    # Every shift that fails silently is named in words too, not only in the table.
    warnings = " ".join(warning.value for warning in at.warning)
    assert all(shift in warnings for shift in shifts["Shift"][shifts["Verdict"] == "⚠ fails silently"])
    # The gate as selective prediction: what it withholds, the error among what it shows, and the curve.
    withheld = dict(zip(shifts["Shift"], shifts["Withheld"], strict=True))
    assert withheld["gamma 2.0"] == "0%" and withheld["film noise sd 0.05-0.08"] == "100%"
    assert any('"field": "Shift family"' in chart.proto.spec for chart in at.get("vega_lite_chart"))
    assert any("Selective prediction: for each family of shifts" in caption.value for caption in at.caption)


def test_model_picker_offers_every_model_and_review_uses_the_choice(tmp_path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(DEFAULT_MODEL_DIR, models / "default")
    shutil.copytree(DEFAULT_MODEL_DIR, models / "retrained")
    card = (models / "retrained" / "model.json").read_text()
    (models / "retrained" / "model.json").write_text(card.replace('"version": "', '"version": "retrained-', 1))
    monkeypatch.setattr("pages.views.shared.MODELS_DIR", models)
    at = app()
    at.switch_page("pages/views/model.py").run()
    picker = at.selectbox(key="model-picker")
    assert picker.options == ["default", "retrained"]
    picker.set_value("retrained").run()
    assert "retrained-" in at.subheader[0].value
    at.switch_page("pages/views/review.py").run()
    assert any("retrained-" in c.value for c in at.caption)


def test_moving_the_overlay_controls_never_reruns_the_model(monkeypatch):
    """The model and the explainers run once per file, frame, method and finding; the sliders only redraw."""

    calls = []

    def counted(name: str):
        original = getattr(Predictor, name)

        def run(self, *args, **kwargs):
            calls.append(name)
            return original(self, *args, **kwargs)

        return run

    for name in ("predict", "explain"):
        monkeypatch.setattr(Predictor, name, counted(name))
    at = open_sample("synthetic cardiomegaly")
    at.selectbox(key="method").set_value("occlusion").run()
    settled = len(calls)
    choose_opacity(at, 0.9)
    for key, value in (("threshold", 0.3), ("outline", 10)):
        at.slider(key=key).set_value(value).run()
    choose_opacity(at, 0.2)
    at.selectbox(key="colormap").set_value("inferno").run()
    at.selectbox(key="method").set_value("attention").run()
    at.selectbox(key="method").set_value("occlusion").run()
    assert not at.exception
    assert len(calls) == settled


def test_a_broken_model_folder_gets_a_clear_message_on_every_page(tmp_path, monkeypatch):
    models = tmp_path / "models"
    shutil.copytree(DEFAULT_MODEL_DIR, models / "default")
    shutil.copytree(DEFAULT_MODEL_DIR, models / "broken")
    card = json.loads((models / "broken" / "model.json").read_text())
    card["preprocessing"]["input_size"] = 100_000
    (models / "broken" / "model.json").write_text(json.dumps(card))
    monkeypatch.setattr("pages.views.shared.MODELS_DIR", models)
    at = app()
    at.switch_page("pages/views/model.py").run()
    picker = at.selectbox(key="model-picker")
    assert [picker.format_func(name) for name in picker.options] == ["broken (cannot be loaded)", "default"]
    picker.set_value("broken").run()
    for page in ("pages/views/model.py", "pages/views/review.py", "pages/views/worklist.py"):
        at.switch_page(page).run()
        assert not at.exception, page
        messages = [e.value.replace("\\", "") for e in at.error]
        assert any("'preprocessing.input_size' is 100000; it must be 16 to 1024 pixels" in m for m in messages), page
    at.switch_page("pages/views/model.py").run()
    at.selectbox(key="model-picker").set_value("default").run()  # and the good model still works
    at.switch_page("pages/views/review.py").run()
    at.selectbox(key="sample").set_value("synthetic nodule").run()
    assert not at.exception and not at.error and at.subheader


def test_a_bad_database_address_is_explained_and_the_scan_still_shows(monkeypatch):
    monkeypatch.setenv("MEDATTN_DB_URL", "postgres:/nobody@nowhere")
    at = open_sample(user=signed_in("Dr Store", "reader"))
    assert at.subheader and viewer_arguments(at)["overlay"]  # the review itself still works
    (error,) = [e.value.replace("\\", "") for e in at.error]
    assert error.startswith("Reviews cannot be saved or shown: MEDATTN_DB_URL is not a database address")
    assert next(b for b in at.button if b.label == "Save review").disabled
    at.switch_page("pages/views/history.py").run()
    assert not at.exception and "MEDATTN_DB_URL is not a database address" in at.error[0].value.replace("\\", "")


def test_a_database_that_refuses_the_write_says_so_and_keeps_the_form(data_dir):
    at = open_sample()
    store = ReviewStore.open(data_dir)
    with store.engine.begin() as connection:  # the database now refuses every new review
        connection.exec_driver_sql(
            "CREATE TRIGGER no_reviews BEFORE INSERT ON reviews BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    at = save_review(at, reviewer="Dr Refused")
    assert not at.exception
    assert any("could not be written: the database refused" in e.value.replace("\\", "") for e in at.error)
    assert not saved(at) and store.reviews() == []
    assert at.text_area[0].value == "Reviewed in a test."  # the reviewer's note is still in the form


def test_a_scan_with_text_burned_into_its_pixels_says_its_reports_leave_the_pictures_out(ct_file):
    from tests.conftest import dicom_with

    at = app()
    content = dicom_with(ct_file, BurnedInAnnotation="YES")
    at.file_uploader(key="upload").set_value([("burned.dcm", content, "application/dicom")]).run()
    assert not at.exception
    assert any("burned into its pixels" in w.value for w in at.warning)
    assert at.session_state["report"].pixels_withheld


def test_an_ultrasound_that_does_not_say_whether_text_is_burned_in_keeps_its_pictures_in_until_a_reader_looks():
    """pydicom-data's US1_UNCR.dcm shows 'BAPTIST MED CTR' in its pixels and has no Burned In Annotation: no
    warning was shown, and the PDF carried both pictures with the text."""
    from tests.conftest import PYDICOM_DATA_FILES

    at = app()
    content = (PYDICOM_DATA_FILES / "US1_UNCR.dcm").read_bytes()
    at.file_uploader(key="upload").set_value([("us.dcm", content, "application/dicom")]).run()
    assert not at.exception
    assert any("does not say whether text is burned into its pixels" in w.value for w in at.warning)
    assert at.session_state["report"].pixels_withheld
    case = at.session_state["workspace"].current_case
    at.toggle(key=f"pixels-checked-{case.key[:12]}").set_value(True).run()
    assert not at.session_state["report"].pixels_withheld  # the reader looked and found none


def test_the_worklist_keeps_working_when_the_store_fails_mid_session(data_dir):
    at = app()
    at.switch_page("pages/views/worklist.py").run()
    at.button(key="add-samples").click().run()
    assert not at.exception and "Not reviewed" in [t.value for t in at.text]
    store = ReviewStore.open(data_dir)
    with store.engine.begin() as connection:  # the database loses its table under the running app
        connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
        connection.exec_driver_sql("DROP TABLE reviews")
    at.run()
    assert not at.exception
    assert any("could not be read: the database refused" in e.value.replace("\\", "") for e in at.error)
    texts = [t.value for t in at.text]
    assert texts.count("Review status unknown") == len(all_samples()) and "Not reviewed" not in texts


@pytest.mark.slow
def test_a_database_that_never_answers_costs_the_timeout_once_not_on_every_rerun(monkeypatch):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    monkeypatch.setenv("MEDATTN_DB_URL", f"postgresql+psycopg://u:p@127.0.0.1:{listener.getsockname()[1]}/db")
    try:
        at = open_sample(user=signed_in("Dr Wait", "reader"))  # the first run waits for the connect timeout
        assert any("Reviews cannot be saved or shown" in e.value for e in at.error)
        started = time.monotonic()
        for opacity in (0.3, 0.6, 0.9):
            choose_opacity(at, opacity)
            assert not at.exception and any("Reviews cannot be saved or shown" in e.value for e in at.error)
        assert time.monotonic() - started < 5  # three reruns, no wait for the server
    finally:
        listener.close()


def test_the_form_starts_unanswered_and_an_unanswered_form_is_not_saved(data_dir):
    at = open_sample()
    assert [radio.value for radio in verdicts(at)] == [None] * 3
    assert next(m for m in at.multiselect if m.key.startswith("corrected-")).value == []
    at.text_input(key="reviewer").set_value("Dr Hasty").run()
    next(b for b in at.button if b.label == "Save review").click().run()
    assert "Give a verdict on every finding" in at.error[0].value and not saved(at)
    store = ReviewStore.open(data_dir)
    assert store.reviews() == []
    store.close()


def test_a_reading_that_contradicts_its_verdicts_is_pointed_out_before_it_is_saved(data_dir):
    at = open_sample()  # the model calls the nodule present
    at.text_input(key="reviewer").set_value("Dr Contrary").run()
    for radio in verdicts(at):
        radio.set_value("disagree" if radio.key.startswith("verdict-nodule") else "unsure")
    at.multiselect(key=next(m.key for m in at.multiselect if m.key.startswith("corrected-"))).set_value(["nodule"])
    next(b for b in at.button if b.label == "Save review").click().run()
    assert at.warning[-1].value.startswith("Your reading contradicts your verdict on: Pulmonary nodule")
    store = ReviewStore.open(data_dir)
    assert store.reviews() == []
    at.button(key="save-contradicted").click().run()
    assert saved(at)[0].startswith("Review saved (number 1)") and not any(
        w.value.startswith("Your reading contradicts") for w in at.warning
    )
    (review,) = store.reviews()
    assert review.verdicts["nodule"] == "disagree" and review.corrected_labels == ["nodule"]
    assert review.model_labels == ["nodule"] and review.unlike_training_data is False
    store.close()


def test_a_review_of_an_unlike_scan_is_stored_and_listed_as_such(data_dir):
    at = open_sample("real CR chest, JPEG 2000")
    save_review(at, reviewer="Dr Unlike", disagree=False)
    assert saved(at), [e.value for e in at.error]
    store = ReviewStore.open(data_dir)
    (review,) = store.reviews()
    assert review.unlike_training_data is True and review.unlikeness > review.unlikeness_limit
    assert review.verdicts == {}  # the model's calls were withheld: no verdict was given, none is stored
    exported = store.export_csv("Dr Unlike", [review])
    assert exported.splitlines()[1].count(",not given,") == 3  # one per finding, never "unsure"
    store.close()
    at.switch_page("pages/views/history.py").run()
    history = at.table[0].value
    assert history["Output withheld"].iloc[0] == "yes — output not meaningful"


def test_maps_are_on_a_model_wide_scale_and_an_absent_or_diffuse_finding_says_so(tmp_path, monkeypatch):
    at = open_sample("synthetic normal")
    case = at.session_state["workspace"].current_case
    at.selectbox(key=f"shown-{case.key[:12]}").set_value("cardiomegaly").run()
    assert any(c.startswith("Attention overlay — Cardiomegaly (finding not present — where the") for c in captions(at))
    assert at.toggle(key=f"absent-{case.key[:12]}").value is False  # an absent finding's map: only on request
    assert any(i.value.startswith("The model does not call Cardiomegaly present") for i in at.info)
    at.toggle(key=f"absent-{case.key[:12]}").set_value(True).run()
    assert not [i for i in at.info if "diffuse" in i.value]  # the default model's attention is focal
    at.radio(key="scale").set_value("peak").run()
    assert image_captions(at)[0] == "Attention relative to this map's own peak"
    at.radio(key="scale").set_value("model-wide").run()
    at.selectbox(key="method").set_value("gradcam").run()
    assert image_captions(at)[0] == "Grad-CAM relative to this map's own peak (it has no model-wide scale)"
    # A model whose attention for a finding is spread evenly over the image: the page says so, in words.
    monkeypatch.setattr("pages.views.shared.MODELS_DIR", tmp_path)
    model_with_diffuse_attention("cardiomegaly", tmp_path / "diffuse")
    at.session_state["model"] = "diffuse"
    at.selectbox(key="method").set_value("attention").run()
    (diffuse,) = [i.value for i in at.info if "diffuse" in i.value]
    assert diffuse.startswith("The attention for Cardiomegaly is diffuse: spread over 100% of the image")
    assert at.toggle(key=f"diffuse-{case.key[:12]}").value is False  # painted only on request
    at.selectbox(key="method").set_value("gradcam").run()
    assert not [i for i in at.info if "diffuse" in i.value]  # a property of the attention, not of Grad-CAM


def test_the_faithfulness_check_stands_beside_the_map_of_a_present_finding():
    at = open_sample("synthetic cardiomegaly")
    (verdict,) = [s.value for s in at.success if "Faithfulness check" in s.value]
    assert verdict.startswith("**Faithfulness check: the model relies on the highlighted area.** Hiding the")
    # The flagship case read "does not rely … 99.95% to 99.92% (+0.6 log-odds fall)": a 5% grey disc hid the
    # nodule and drew a new one. Its attention now gets a region its own size, hidden as the card says for
    # nodules (the hiding that separated best on validation cases), and the check says so.
    at = open_sample("synthetic nodule")
    (verdict,) = [s.value for s in at.success if "Faithfulness check" in s.value]
    filled = Predictor.default().card.faithfulness_hiding.get("nodule") == "inpaint"
    assert (
        "filled in from its surroundings" in verdict
    ) == filled and "lowers Pulmonary nodule from > 99% to" in verdict
    assert "log-odds" not in verdict
    case = at.session_state["workspace"].current_case
    at.selectbox(key=f"shown-{case.key[:12]}").set_value("effusion").run()  # absent: no call to check
    assert "tests the map of a finding the model calls present" in " ".join(c.value for c in at.caption)


def test_how_to_read_the_screen_is_one_text_in_the_app_and_the_documentation():
    text = (ROOT / "docs" / "how-to-read.md").read_text()
    assert "how-to-read.md" in (ROOT / "mkdocs.yml").read_text()  # a page of the site, not a copy
    at = open_sample()
    assert any(m.value.strip() == text.strip() for m in at.markdown)


def test_view_settings_persist_across_pages_and_scans(caplog):
    at = open_sample("synthetic effusion")
    chosen = {"method": "gradcam", "colormap": "inferno", "scale": "peak"}
    for key, value in chosen.items():
        (at.selectbox if key != "scale" else at.radio)(key=key).set_value(value).run()
    choose_opacity(at, 0.8)
    at.slider(key="threshold").set_value(0.3).run()
    for page in ("pages/views/history.py", "pages/views/model.py", "pages/views/worklist.py", "pages/views/review.py"):
        at.switch_page(page).run()
        assert not at.exception, page
    at.selectbox(key="sample").set_value("synthetic nodule").run()  # and another scan
    for key, value in chosen.items():
        assert (at.selectbox if key != "scale" else at.radio)(key=key).value == value, key
    assert viewer_arguments(at)["opacity"] == 0.8 and at.slider(key="threshold").value == 0.3
    assert any(caption.startswith("Grad-CAM overlay — Pulmonary nodule") for caption in captions(at))
    # Kept settings are defaults in the session state, not in the widgets: Streamlit logs a warning with a
    # stack trace on every return to Review when a widget has both.
    assert not [r for r in caplog.records if "set via the Session State API" in r.getMessage()]


def test_a_window_chosen_on_one_frame_stays_on_the_next():
    """pydicom's 15-frame RT dose offered "Image range" on some frames only: chosen there, it fell off the list."""
    at = app()
    content = (PYDICOM_FILES / "rtdose.dcm").read_bytes()
    at.file_uploader(key="upload").set_value([("dose.dcm", content, "application/dicom")]).run()
    window, frame = at.selectbox(key=f"window-{short_key(content)}"), at.slider(key=f"frame-{short_key(content)}")
    window.set_value(IMAGE_RANGE).run()
    chosen = viewer_arguments(at)["window"]
    assert chosen == list(load_scan(content).window_presets(0)[IMAGE_RANGE])
    for shown in range(2, 16):
        frame.set_value(shown).run()
        assert not at.exception, shown
        assert at.selectbox(key=f"window-{short_key(content)}").value == IMAGE_RANGE, shown
        assert viewer_arguments(at)["window"] == chosen, shown  # one window down the stack, as readers scroll


def test_a_review_draft_outlives_other_pages_and_scans(caplog):
    """Verdicts, reading and note answered but not saved were gone after History and back: the reader typed them
    again. Each scan keeps its own draft."""
    at = open_sample("synthetic effusion")
    for radio in verdicts(at):
        radio.set_value("unsure").run()
    (reading,) = [m for m in at.multiselect if m.key.startswith("corrected-")]
    reading.set_value(["effusion"]).run()
    (note,) = [t for t in at.text_area if t.key.startswith("note-")]
    note.set_value("Blunted left costophrenic angle.").run()
    draft = {k: at.session_state[k] for k in (*[r.key for r in verdicts(at)], reading.key, note.key)}
    for page in ("pages/views/history.py", "pages/views/model.py", "pages/views/review.py"):
        at.switch_page(page).run()
        assert not at.exception, page
    at.selectbox(key="sample").set_value("synthetic nodule").run()  # another scan: a draft of its own, blank
    assert [r.value for r in verdicts(at)] == [None] * 3 and not at.text_area[0].value
    at.selectbox(key="sample").set_value("synthetic effusion").run()
    kept = {r.key: r.value for r in verdicts(at)}
    kept |= {w.key: w.value for w in (*at.multiselect, *at.text_area) if w.key in draft}
    assert kept == draft and "Blunted left costophrenic angle." in kept.values() and ["effusion"] in kept.values()
    assert not [r for r in caplog.records if "set via the Session State API" in r.getMessage()]


def test_a_synthetic_sample_shows_its_ground_truth_and_every_map_side_by_side(ct_file):
    at = open_sample("synthetic nodule-effusion")
    at.toggle(key="ground-truth").set_value(True).run()
    assert not at.exception
    truth = next(c.value for c in at.caption if c.value.startswith("Ground truth of this synthetic sample"))
    assert truth.startswith("Ground truth of this synthetic sample: Pulmonary nodule, Pleural effusion.")
    assert "Pulmonary nodule" in at.subheader[0].value  # a hit, beside the truth
    handed = viewer_arguments(at)
    lines = np.frombuffer(handed["lines"], np.uint8).reshape(*handed["overlay_shape"], 4)
    assert (lines == (*TRUTH_COLOUR, 255)).all(axis=-1).sum() > 100  # the truth is outlined in the viewer too
    at.toggle(key="compare").set_value(True).run()
    every_finding, every_method = image_captions(at)[1:4], image_captions(at)[4:]
    assert every_finding == [
        "Attention — Pleural effusion", "Attention — Pulmonary nodule", "Attention — Cardiomegaly (not present)",
    ]  # fmt: skip
    assert every_method == [f"{explainer.title} — Pleural effusion" for explainer in EXPLAINERS.values()]
    at.file_uploader(key="upload").set_value([("ct.dcm", ct_file.read_bytes(), "application/dicom")]).run()
    assert not [t for t in at.toggle if t.key == "ground-truth"]  # a file that is not a sample has no truth


def test_the_chart_and_the_table_list_the_findings_in_one_order():
    at = open_sample("synthetic nodule-effusion")
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    table_order = list(at.dataframe[0].value["Finding"])
    assert all(layer["encoding"]["y"]["sort"] == table_order for layer in spec["layer"])


def test_model_page_charts_name_their_axes_and_their_aucs():
    at = app()
    at.switch_page("pages/views/model.py").run()
    assert not at.exception
    specs = [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]
    text = [json.dumps(spec) for spec in specs]
    roc = next(chart for chart in at.get("vega_lite_chart") if "True-positive rate" in chart.proto.spec)
    assert "category10" in roc.proto.spec  # distinct colours, not near-identical blues
    legend = roc.proto.SerializeToString()  # the data travel beside the spec
    assert all(f"{name} (AUC ".encode() in legend for name in ("Pulmonary nodule", "Pleural effusion", "Cardiomegaly"))
    reliability = next(spec for spec in specs if "Observed frequency" in json.dumps(spec))
    titles = {layer["encoding"]["x"].get("title") for layer in reliability["layer"]}
    assert titles == {"Predicted probability"}  # one title, not "x, Predicted probability"
    assert "Share of predictions" in json.dumps(reliability)
    training = next(t for t in text if "Validation macro AUC" in t)
    assert '"Epoch"' in training


def shown_scan(at: AppTest) -> str:
    """The file name the Scan picker shows."""
    picker = at.selectbox(key="scan-choice")
    return picker.format_func(picker.value)


def test_the_sample_picker_and_the_scan_picker_follow_the_scan_on_screen(ct_file):
    at = open_sample("synthetic nodule")
    at.file_uploader(key="upload").set_value([("ct.dcm", ct_file.read_bytes(), "application/dicom")]).run()
    assert at.selectbox(key="sample").value == "—"  # the CT is on screen, not the sample
    assert shown_scan(at) == "ct.dcm"
    at.selectbox(key="sample").set_value("synthetic effusion").run()
    assert at.session_state["workspace"].current_case.name == "synthetic-effusion.png"
    assert (
        at.selectbox(key="scan-choice").format_func(at.selectbox(key="scan-choice").value) == "synthetic-effusion.png"
    )
    ct_key = next(key for key, case in at.session_state["workspace"].cases.items() if case.name == "ct.dcm")
    at.selectbox(key="scan-choice").set_value(ct_key).run()
    assert at.session_state["workspace"].current_case.name == "ct.dcm"
    assert at.selectbox(key="sample").value == "—"
    at.selectbox(key="sample").set_value("synthetic effusion").run()  # the same sample again opens it again
    assert at.session_state["workspace"].current_case.name == "synthetic-effusion.png"


@pytest.mark.parametrize(
    ("sample", "dtype"),
    [
        ("real CR chest, JPEG 2000", "uint16"),
        ("real CT, JPEG 2000", "int16"),
        ("real ultrasound, 2 frames, RLE", "uint8"),
    ],
)
def test_the_viewer_gets_every_stored_value_exactly_and_the_files_pixel_spacing(sample, dtype):
    at = open_sample(sample)
    scan = at.session_state["workspace"].current_case.scan
    handed = viewer_arguments(at)
    values = np.frombuffer(handed["pixels"], dtype=np.dtype(handed["dtype"]).newbyteorder("<"))
    expected = np.stack([scan.display(i) if scan.is_colour else scan.frame(i) for i in range(scan.frame_count)])
    assert handed["dtype"] == dtype and [handed["frames"], handed["rows"], handed["columns"]] == list(
        expected.shape[:3]
    )
    np.testing.assert_array_equal(values.reshape(expected.shape), expected)  # lossless, every value of every frame
    assert handed["spacing"] == (list(scan.pixel_spacing) if scan.pixel_spacing else None)


def test_a_study_set_up_wrongly_says_why_and_a_study_set_up_rightly_is_read_with_the_arm_it_names():
    at = app()
    at.switch_page("pages/views/study.py").run()
    assert "No study has been set up yet" in at.info[0].value
    at.radio(key="study-mode").set_value("Set up a study").run()
    at.text_input[0].input("Pilot")
    at.number_input[2].set_value(4)
    at.slider[0].set_value(0.05)  # one in twenty of four cases: no positive case at all
    at.button[0].click().run()
    assert not at.exception and "leaves no positive or no negative case" in at.error[0].value
    at.slider[0].set_value(0.5)
    at.multiselect[1].set_value(["attention+probabilities", "none"])  # the first arm is the control
    at.button[0].click().run()  # every finding read: four cases cannot hold each of them, with and without
    assert not at.exception and "is in none of the 4 cases" in at.error[0].value
    at.multiselect[0].set_value(["nodule"])
    at.button[0].click().run()
    assert not at.exception and "4 cases in 2 arms, 8 readings per reader" in at.success[0].value
    assert "Pulmonary nodule: 2 cases with it and 2 without" in at.warning[-1].value  # allowed, with the cost

    at.radio(key="study-mode").set_value("Read").run()
    assert "Enter your name" in at.info[0].value
    at.text_input(key="study-reader").input("Dr A").run()
    assert not at.exception and at.subheader[0].value == "Reading 1 of 8"
    shown = next(c.value for c in at.caption if c.value.startswith("Shown with this reading"))
    probabilities = [m.value for m in at.markdown if "The model's probabilities" in m.value]
    handed = viewer_arguments(at)  # every arm: the same viewer, the scan at its own size
    assert not at.get("image") and handed["frames"] == 1 and handed["rows"] == handed["columns"] > 0
    if "attention" in shown:  # the arm decides what lies over the scan and beside it: maps and numbers, or neither
        assert probabilities and any(c.startswith("Attention overlay — ") for c in captions(at)) and handed["overlay"]
    else:
        assert not probabilities and not any(c.startswith("Attention overlay — ") for c in captions(at))
        assert handed["overlay"] is None
    at.button[-1].click().run()  # nothing answered
    assert not at.exception and "present or absent" in at.error[0].value
    assert at.subheader[0].value == "Reading 1 of 8"


def test_a_shared_app_shows_nothing_before_sign_in_and_says_what_to_configure(monkeypatch, data_dir):
    """An anonymous browser read every review of a shared store, and listed and opened PACS studies."""
    monkeypatch.setenv("MEDATTN_DICOMWEB_URL", "http://127.0.0.1:9/dicom-web")  # never contacted
    unconfigured = app(auth=False)
    assert unconfigured.title[0].value == "Sign-in is not configured"
    assert "a PACS is configured (MEDATTN_DICOMWEB_URL)" in unconfigured.error[0].value
    visitor = app(user={"is_logged_in": False})  # every page's address shows this (the browser test visits each)
    assert not visitor.exception and [b.label for b in visitor.button] == ["Sign in with your hospital account"]
    assert [t.value for t in visitor.title] == ["medattn"] and not visitor.get("image") and not visitor.dataframe
    nobody = app(user=signed_in("Dr Visitor"))
    assert nobody.title[0].value == "No role in this app" and "Dr Visitor" in nobody.error[0].value


def test_a_signed_in_reader_reviews_under_their_identity_sees_their_own_reviews_and_no_pacs(monkeypatch, data_dir):
    monkeypatch.setenv("MEDATTN_DICOMWEB_URL", "http://127.0.0.1:9/dicom-web")
    reader = signed_in("Dr Jane Radiologist", "reader")
    at = open_sample(user=reader)
    (field,) = [t for t in at.text_input if t.label == "Reviewer"]
    name = field.value
    assert field.disabled and name == "Dr Jane Radiologist <dr.jane.radiologist@hospital.example>"
    assert any("Signed in as Dr Jane Radiologist" in c.value for c in at.sidebar.caption)
    at = save_review(at, reviewer=None)
    assert saved(at)
    store = ReviewStore.open(data_dir)
    (review,) = store.reviews()
    store.close()
    assert review.verified and (review.reviewer_issuer, review.reviewer_subject) == (
        "http://idp",
        "sub-dr.jane.radiologist@hospital.example",
    )  # the provider's stable name for the reviewer, beside the display name
    at.switch_page("pages/views/worklist.py").run()
    assert not [e for e in at.expander if "Studies on the PACS" in e.label]  # the reader's role has no PACS
    at.switch_page("pages/views/history.py").run()
    assert literal(at.table[0].value["Reviewer"]) == [name]
    other = app(user=signed_in("Dr Other", "reader"))
    other.switch_page("pages/views/history.py").run()
    assert "No review has been saved yet" in other.info[0].value  # another reader's reviews are not theirs to see
    coordinator = app(user=signed_in("Dr Lead", "coordinator", "pacs"))
    coordinator.switch_page("pages/views/history.py").run()
    assert literal(coordinator.table[0].value["Reviewer"]) == [name]
    coordinator.switch_page("pages/views/worklist.py").run()
    assert [e for e in coordinator.expander if "Studies on the PACS" in e.label]


def test_in_a_shared_app_a_reader_only_reads_studies_and_reads_as_themselves(monkeypatch, data_dir):
    """Session Y typed "Dr A" and read as Dr A; any reader could open the results, with every case's truth."""
    monkeypatch.setenv("MEDATTN_DICOMWEB_URL", "http://127.0.0.1:9/dicom-web")
    lead = app(user=signed_in("Dr Lead", "coordinator"))
    lead.switch_page("pages/views/study.py").run()
    assert lead.radio(key="study-mode").options == ["Read", "Results", "Set up a study"]
    reader = app(user=signed_in("Dr A", "reader"))
    reader.switch_page("pages/views/study.py").run()
    assert reader.radio(key="study-mode").options == ["Read"]  # no set-up, no results
    not_enrolled = "You are not enrolled in any reader study. A study coordinator enrols readers by the e-mail address"
    assert reader.info[0].value.replace("\\", "").startswith(not_enrolled)
    store = ReviewStore.open(data_dir)
    model = {"name": "medattn-cxr-synthetic", "version": "v", "classes": ["nodule", "effusion", "cardiomegaly"]}
    records = StudyStore(store)
    study = records.create("Pilot", SyntheticCaseSet(8, 64, 4, 0.5, ("nodule",)), ["none", "attention"], model)
    reader.run()
    assert reader.info[0].value.replace("\\", "").startswith(not_enrolled)  # set up, but not for Dr A
    records.enrol(study, "dr.a@hospital.example", by="Dr Lead")
    store.close()
    reader.run()
    assert not [t for t in reader.text_input if t.key == "study-reader"]  # no name to type
    assert "Reading as Dr A <dr.a@hospital.example>" in [c.value.replace("\\", "") for c in reader.caption]
    assert reader.subheader[0].value == "Reading 1 of 8"


def test_the_pacs_listing_stays_open_while_studies_from_it_are_opened(monkeypatch, data_dir):
    """The panel folded away after the second study was opened: opening one filled the workspace."""
    monkeypatch.setenv("MEDATTN_DICOMWEB_URL", "http://127.0.0.1:9/dicom-web")  # listed studies are kept, not asked
    at = app(user=signed_in("Dr P", "reader", "pacs"))
    at.switch_page("pages/views/worklist.py").run()
    at.session_state["pacs_studies"] = []  # nothing listed, nothing open: the panel opens to invite a listing
    at.run()
    assert next(e for e in at.expander if "Studies on the PACS" in e.label).proto.expanded
    at.button(key="add-samples").click().run()  # the workspace now holds scans, as after opening a study
    assert not next(e for e in at.expander if "Studies on the PACS" in e.label).proto.expanded
    listed = StudySummary("1.2.3", "k" * 64, "2004-08-26", "CR", 1)
    at.session_state["pacs_studies"] = [listed]  # a listing on screen keeps it open, scans or not
    at.run()
    assert next(e for e in at.expander if "Studies on the PACS" in e.label).proto.expanded


def test_in_a_shared_app_a_review_saved_under_a_typed_name_says_so(monkeypatch, data_dir):
    store = ReviewStore.open(data_dir)
    typed = Review("Dr Typed", "k" * 64, "m", "v", {"nodule": 0.9}, {"nodule": "agree"}, ["nodule"])
    store.save(typed)  # as a personal app, or medattn before sign-in, saved it
    store.close()
    monkeypatch.setenv("MEDATTN_DICOMWEB_URL", "http://127.0.0.1:9/dicom-web")
    lead = app(user=signed_in("Dr Lead", "coordinator"))
    lead.switch_page("pages/views/history.py").run()
    assert literal(lead.table[0].value["Reviewer"]) == ["Dr Typed (name typed, not verified)"]


def test_results_of_an_uploaded_scan_are_not_offered_for_the_pacs(monkeypatch, data_dir, ct_file):
    """An anonymous upload carrying a real study's UIDs was stored into that patient's record."""
    monkeypatch.setenv("MEDATTN_DICOMWEB_URL", "http://127.0.0.1:9/dicom-web")
    at = app(user=signed_in("Dr P", "reader", "pacs"))
    at.file_uploader(key="upload").set_value([("ct.dcm", ct_file.read_bytes(), "application/dicom")]).run()
    assert not [b for b in at.button if b.label.startswith("Store the results in the PACS")]
    assert any("only for a scan opened from it on the Worklist" in c.value for c in at.caption)


def test_a_note_and_a_name_are_listed_as_text_not_markdown(data_dir):
    """History lists reviews in a table, which renders Markdown: a note's link must stay text."""
    store = ReviewStore.open(data_dir)
    link = "[open the images](http://elsewhere.example/) **now**"
    store.save(Review("Dr *Emph*", "k" * 64, "m", "v", {"nodule": 0.9}, {"nodule": "agree"}, ["nodule"], link))
    store.close()
    at = app()
    at.switch_page("pages/views/history.py").run()
    history = at.table[0].value
    assert history["Note"].iloc[0] == escape_markdown(link) and history["Reviewer"].iloc[0] == r"Dr \*Emph\*"


def test_next_and_previous_case_walk_the_worklist_from_review():
    at = open_sample("synthetic nodule")
    for sample in ("synthetic effusion", "synthetic normal"):
        at.selectbox(key="sample").set_value(sample).run()
    at.switch_page("pages/views/worklist.py").run()  # ranks them: most suspicious first
    ranked = at.session_state["workspace"].worklist
    at.switch_page("pages/views/review.py").run()
    workspace = at.session_state["workspace"]
    workspace.select(ranked[0])
    at.run()
    assert at.button(key="previous-case").disabled and not at.button(key="next-case").disabled
    walked = [workspace.current]
    while not at.button(key="next-case").disabled:
        at.button(key="next-case").click().run()
        assert not at.exception
        walked.append(at.session_state["workspace"].current)
    assert walked == ranked and at.selectbox(key="scan-choice").value == ranked[-1]  # the picker follows
    at.button(key="previous-case").click().run()
    assert at.session_state["workspace"].current == ranked[-2]


def test_a_scans_values_go_to_the_viewer_once_and_again_when_it_says_it_lacks_them():
    """Every rerun once sent a 2k radiograph's 7 MB again; a viewer drawn in the run before holds them."""
    at = open_sample("real CR chest, JPEG 2000")
    first = viewer_arguments(at)
    assert len(first["pixels"]) == first["rows"] * first["columns"] * 2
    choose_opacity(at, 0.7)  # a rerun: the viewer tells the page an opacity, or a click elsewhere on the page
    assert viewer_arguments(at)["pixels"] is None and viewer_arguments(at)["scan"] == first["scan"]
    at.session_state["viewer"] = {"lacks": first["scan"], "id": "1"}  # a viewer the browser made anew says so
    at.run()
    assert viewer_arguments(at)["pixels"] == first["pixels"]
    at.run()  # heard once: not sent again for the same message
    assert viewer_arguments(at)["pixels"] is None
    at.switch_page("pages/views/history.py").run()
    at.switch_page("pages/views/review.py").run()  # a viewer made anew on coming back: sent again
    assert viewer_arguments(at)["pixels"] == first["pixels"]


def test_the_opacity_the_viewer_tells_is_the_one_reports_and_dicom_results_lay_on():
    """The viewer draws an opacity change itself and tells the page, so that what leaves matches what it drew."""
    at = open_sample("synthetic nodule")
    handed = viewer_arguments(at)
    heat = np.frombuffer(handed["overlay"], np.uint8).reshape(*handed["overlay_shape"], 4)
    assert handed["opacity"] == 0.45 and set(np.unique(heat[..., 3])) == {0, 255}  # painted heat, opaque
    assert at.session_state["report"].layer[..., 3].max() == round(0.45 * 255)
    choose_opacity(at, 0.8)
    assert viewer_arguments(at)["opacity"] == 0.8 and viewer_arguments(at)["pixels"] is None  # nothing sent again
    report_layer = at.session_state["report"].layer
    assert report_layer[..., 3].max() == round(0.8 * 255)
    np.testing.assert_array_equal(report_layer[..., :3][heat[..., 3] > 0], heat[..., :3][heat[..., 3] > 0])
    for refused in ("0.3", 1.5, -0.1, True, None):  # the browser's word: only a number from 0 to 1 is taken
        choose_opacity(at, refused)
        assert not at.exception and viewer_arguments(at)["opacity"] == 0.8
