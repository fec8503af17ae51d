"""The DICOM results: valid objects (dciodvfy), the map's values kept exactly, withheld where the output
means nothing, and a shareable variant that carries no identifier."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

from medattn import load_scan
from medattn.errors import PacsError
from medattn.pacs.deidentify import KEPT, results_for_sharing
from medattn.pacs.outputs import build_results, map_values, scored_image, source_dataset
from medattn.review.store import Review
from tests.conftest import PYDICOM_DATA_FILES, PYDICOM_FILES
from tests.pacs.conftest import ACCESSION, PATIENT, dciodvfy_errors, dicom_of_sample

KINDS = ["parametric-map", "segmentation", "structured-report", "secondary-capture"]


def read_back(files: dict[str, bytes]) -> dict[str, pydicom.Dataset]:
    """Kind ("parametric-map", …) -> the object read back from its file."""
    return {name.split("-", 1)[1][:-4]: pydicom.dcmread(io.BytesIO(data)) for name, data in files.items()}


def reader_review(prediction) -> Review:
    return Review(
        reviewer="Dr Who", scan_key="k", model_name="m", model_version="v",
        probabilities=prediction.probabilities, verdicts=dict.fromkeys(prediction.probabilities, "agree"),
        corrected_labels=list(prediction.labels),
    )  # fmt: skip


def report_items(report: pydicom.Dataset) -> list[pydicom.Dataset]:
    found = []

    def walk(items):
        for item in items:
            found.append(item)
            walk(item.get("ContentSequence", []))

    walk(report.ContentSequence)
    return found


def test_results_of_a_scan_like_the_training_data_are_valid_and_hold_the_map_exactly(predictor, tmp_path):
    content = dicom_of_sample("nodule-effusion")
    scan = load_scan(content)
    scored = scored_image(predictor, scan, review=reader_review(predictor.predict(scan)))
    assert not scored.prediction.unlike_training_data and scored.prediction.labels
    source = source_dataset(content)
    results = build_results(source, scored, reader="Dr Who")
    files = results.files()
    objects = read_back(files)
    assert list(objects) == KINDS and results.left_out == []
    for name, data in files.items():
        assert dciodvfy_errors(data, tmp_path) == [], name
    for ds in objects.values():  # the source's study, a new series for each kind of object
        assert ds.StudyInstanceUID == source.StudyInstanceUID and ds.PatientID == source.PatientID
    assert len({ds.SeriesInstanceUID for ds in objects.values()} | {source.SeriesInstanceUID}) == 5
    # The map and the segmentation share a frame of reference: a viewer lays one over the other.
    assert objects["parametric-map"].FrameOfReferenceUID == objects["segmentation"].FrameOfReferenceUID
    stored = objects["parametric-map"].pixel_array
    expected, _ = map_values(scored.maps[scored.finding])
    assert stored.shape == (source.Rows, source.Columns)
    np.testing.assert_allclose(stored, expected, rtol=0, atol=1e-6)
    assert objects["parametric-map"].SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0].LUTExplanation \
        == "Attention weight relative to uniform attention"  # fmt: skip
    segments = [s.SegmentLabel for s in objects["segmentation"].SegmentSequence]
    assert len(segments) == len(scored.prediction.labels)
    assert objects["segmentation"].SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "27925004"
    derived = objects["segmentation"].PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0]
    assert derived.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    numbers = [item for item in report_items(objects["structured-report"]) if item.ValueType == "NUM"]
    probabilities = sorted(
        float(item.MeasuredValueSequence[0].NumericValue) for item in numbers
        if item.ConceptNameCodeSequence[0].CodeValue == "probability"
    )  # fmt: skip
    assert probabilities == pytest.approx(sorted(scored.prediction.probabilities.values()), abs=1e-6)
    codes = [item.ConceptCodeSequence[0].CodeValue for item in report_items(objects["structured-report"])
             if item.ValueType == "CODE" and item.ConceptNameCodeSequence[0].CodeValue == "reader-verdict"]  # fmt: skip
    assert codes == ["agree"] * len(scored.prediction.probabilities)
    assert "Dr Who" in str(objects["structured-report"].ContentSequence)  # the reader, as observer
    assert objects["secondary-capture"].pixel_array.shape == scored.overlay.shape
    # Built again, the same objects: storing them twice replaces rather than adds.
    again = build_results(source, scored, reader="Dr Who").datasets
    assert [ds.SOPInstanceUID for ds in again] == [ds.SOPInstanceUID for ds in results.datasets]
    # Another installation, another secret: UIDs no one outside can compute, and so claim first.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDATTN_SECRET", "another installation's secret, 32 bytes long")
        elsewhere = build_results(source, scored, reader="Dr Who").datasets
    assert not {ds.SOPInstanceUID for ds in elsewhere} & {ds.SOPInstanceUID for ds in results.datasets}


def test_the_real_chest_radiograph_gets_only_a_report_unless_the_output_is_shown_anyway(predictor, tmp_path):
    """pydicom-data's chest CR is unlike the training data: its maps are withheld, as on screen. Shown
    anyway, every object is made, says it is not meaningful, and still validates."""
    content = (PYDICOM_DATA_FILES / "RG1_J2KR.dcm").read_bytes()
    scan, source = load_scan(content), source_dataset(content)
    withheld = build_results(source, scored_image(predictor, scan))
    assert [type(ds).__name__ for ds in withheld.datasets] == ["ComprehensiveSR"]
    assert "unlike the training data" in withheld.left_out[0]
    items = report_items(withheld.datasets[0])
    assert not [item for item in items if item.ConceptNameCodeSequence[0].CodeValue == "probability"]
    unlike = next(item for item in items if item.ConceptNameCodeSequence[0].CodeValue == "unlike-training")
    assert unlike.ConceptCodeSequence[0].CodeMeaning == "Yes"
    # Both of the gate's figures and their limits, as the page and the review store hold them.
    numbers = {
        item.ConceptNameCodeSequence[0].CodeValue: float(item.MeasuredValueSequence[0].NumericValue)
        for item in items
        if item.ValueType == "NUM"
    }
    gate = predictor.card.unlikeness
    assert numbers["unlikeness-limit"] == pytest.approx(gate.threshold) and numbers["unlikeness"] > gate.threshold
    assert numbers["noise-limit"] == pytest.approx(gate.noise_limit) and numbers["noise"] >= 0

    scored = scored_image(predictor, scan, shown_anyway=True)
    shown = build_results(source, scored)
    objects = read_back(shown.files())
    assert list(objects) == KINDS
    for data in shown.files().values():
        assert dciodvfy_errors(data, tmp_path) == []
    assert all(ds.SeriesDescription.startswith("NOT MEANINGFUL") for ds in objects.values())
    # A radiograph has no frame of reference: the map gets one of its own and lies pixel for pixel on it.
    assert "FrameOfReferenceUID" not in source
    assert objects["parametric-map"].pixel_array.shape == (source.Rows, source.Columns)
    np.testing.assert_allclose(
        objects["parametric-map"].pixel_array, map_values(scored.maps[scored.finding])[0], rtol=0, atol=1e-6
    )


def test_results_made_for_sharing_carry_no_identifier_and_still_validate(predictor, tmp_path):
    content = dicom_of_sample("nodule")
    scan, source = load_scan(content), source_dataset(content)
    scored = scored_image(predictor, scan, review=reader_review(predictor.predict(scan)))
    # A secondary capture that does not say whether text is burned in: its overlay is left out until a reader
    # has looked at the pixels, then kept.
    unlooked = results_for_sharing(source, scored, secret=b"installation secret")
    assert len(unlooked.files()) == 3 and "may carry text that identifies the patient" in " ".join(unlooked.left_out)
    shared = results_for_sharing(source, scored, secret=b"installation secret", pixels_checked=True)
    files = shared.files()
    assert len(files) == 4
    identifiers = [
        *PATIENT.values(), ACCESSION, "Referrer", "St Elsewhere", "Dr Who", "20260102",
        source.StudyInstanceUID, source.SeriesInstanceUID, source.SOPInstanceUID,
    ]  # fmt: skip
    for name, data in files.items():
        assert dciodvfy_errors(data, tmp_path) == [], name
        assert not [value for value in identifiers if value.encode() in data], name
    objects = read_back(files)
    assert {ds.PatientIdentityRemoved for ds in objects.values()} == {"YES"}
    assert len({ds.StudyInstanceUID for ds in objects.values()}) == 1  # still one study, consistently renamed
    again = results_for_sharing(source, scored, secret=b"installation secret", pixels_checked=True).datasets
    assert again[0].StudyInstanceUID == objects["parametric-map"].StudyInstanceUID  # the same keyed UIDs


def test_results_of_the_real_ct_validate(predictor, tmp_path):
    content = (PYDICOM_FILES / "CT_small.dcm").read_bytes()
    results = build_results(source_dataset(content), scored_image(predictor, load_scan(content), shown_anyway=True))
    assert len(results.datasets) == 4
    for data in results.files().values():
        assert dciodvfy_errors(data, tmp_path) == []


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("assets/samples/synthetic-nodule.png", "DICOM images only"),
        (PYDICOM_FILES / "SC_rgb_rle_16bit_2frame.dcm", "single-frame images"),
    ],
)
def test_a_source_that_cannot_have_dicom_results_gets_a_clear_message(path, message):
    from pathlib import Path

    with pytest.raises(PacsError, match=message):
        source_dataset(Path(path).read_bytes())


# What the results are built from: its identifiers are replaced by the profile (the test above), the rest is
# geometry and pixel description that the objects must carry.
NOT_MARKED = KEPT
TEXT_VRS = ("AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT")


def marked(tag: int, vr: str, number: int) -> str:
    """A marker value for one attribute: findable in the bytes, and of the attribute's own form."""
    if vr == "UI":
        return f"1.2.826.0.1.3680043.10.{number}.424242"
    if vr == "DA":
        return f"1{number % 1000:03d}0417"  # year 1xxx: no real date in these tests is before 1900
    if vr == "DT":
        return f"1{number % 1000:03d}0417101010"
    if vr == "TM":
        return "235959.424242"
    if vr in ("DS", "IS"):
        return "424242"
    if vr == "AS":
        return "042Y"
    return f"MARK{number:04d}"[: 16 if vr in ("AE", "CS", "SH") else 64]


def test_results_for_sharing_hold_no_value_of_any_attribute_the_source_did_not_need(predictor):
    """Markers in every text, date and UID attribute of DICOM's dictionary that the sample does not hold (728
    in the hardening pass leaked 13: birth dates in an alternative calendar, species free text, procedure codes,
    the position reference indicator). The shared objects are built from an allow-list, so none survives."""
    from pydicom.datadict import DicomDictionary, keyword_for_tag

    content = dicom_of_sample("nodule")
    scan, source = load_scan(content), source_dataset(content)
    markers = []
    for number, (tag, entry) in enumerate(sorted(DicomDictionary.items())):
        vr, keyword = entry[0], keyword_for_tag(tag)
        if vr not in TEXT_VRS or not keyword or tag in source or tag >> 16 in (0x0002, 0xFFFE) or "RETIRED" in entry[3]:
            continue
        if keyword in NOT_MARKED:
            continue
        value = marked(tag, vr, number)
        source.add_new(tag, vr, value)
        markers.append(value)
    assert len(markers) > 700
    scored = scored_image(predictor, scan, review=reader_review(predictor.predict(scan)))
    shared = results_for_sharing(source, scored, secret=b"installation secret")
    everything = b"".join(shared.files().values())
    leaked = [value for value in set(markers) if value.encode() in everything]
    assert leaked == []
