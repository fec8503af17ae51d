"""A source image's header de-identified for sharing: DICOM PS3.15's Basic Application Level
Confidentiality Profile, as dicom-anonymizer implements its table of actions (PS3.15 Table E.1-1).

Results made for sharing are built from this copy (``medattn.pacs.outputs.build_results``), so they carry
none of the source's identifiers and reference one another consistently. UIDs are replaced by keyed hashes
of themselves under the installation secret: the same source always maps to the same UIDs, and no table
of real UIDs is kept in memory (dicom-anonymizer's own UID replacement keeps one for the process's life).
"""

from __future__ import annotations

import copy
from dataclasses import replace

from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
from dicomanonymizer.simpledicomanonymizer import anonymize_dataset, initialize_actions
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import generate_uid

from medattn.pacs.outputs import ResultObjects, ScoredImage, build_results
from medattn.scan.metadata import burned_in_text

# The newest edition of PS3.15's table that dicom-anonymizer carries.
PROFILE_EDITION = "dicomfields_2026c"
# PS3.16 CID 7050: the option applied, recorded in the object as PS3.15 E.1.1 asks.
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
# What the results are built from (medattn.pacs.outputs and highdicom's copies of the patient, study and series
# modules, the evidence references and the geometry): every other attribute of the source is dropped after the
# profile's table has been applied. A removal table misses what it does not name (the hardening pass found 13
# such attributes kept, birth dates in an alternative calendar among them); an allow-list cannot.
KEPT = frozenset({
    "SpecificCharacterSet",
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex",
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
    "Modality", "SeriesInstanceUID", "SeriesNumber", "Laterality", "FrameOfReferenceUID",
    "SOPClassUID", "SOPInstanceUID", "InstanceNumber",
    "Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit",
    "PixelRepresentation", "NumberOfFrames", "BurnedInAnnotation",
    "PixelSpacing", "ImagerPixelSpacing", "ImageOrientationPatient", "ImagePositionPatient", "SliceThickness",
    "SpacingBetweenSlices", "PatientOrientation",
})  # fmt: skip
LATERALITIES = ("L", "R")


def results_for_sharing(
    source: Dataset, scored: ScoredImage, secret: bytes, pixels_checked: bool = False
) -> ResultObjects:
    """The results built from a de-identified copy of ``source``, naming no reader, each object marked as
    de-identified. A source whose pixels may carry text (it says so, or does not say and its modality often
    draws it, unless a reader has looked: ``pixels_checked``) gets no overlay picture."""
    text = burned_in_text(source)
    withheld = text is True or (text is None and not pixels_checked)
    results = build_results(deidentified(source, secret), replace(scored, overlay=None) if withheld else scored)
    for ds in results.datasets:
        _mark_deidentified(ds)
    if withheld:
        results.left_out.append("No overlay picture: the scan's pixels may carry text that identifies the patient.")
    return results


def deidentified(source: Dataset, secret: bytes) -> Dataset:
    """A de-identified copy of ``source`` (a header: its pixels are not needed), holding only the attributes in
    ``KEPT``; the source is untouched."""
    copied = copy.deepcopy(source)
    uid_tags = dicom_anonymization_database_selector(PROFILE_EDITION)["U_TAGS"]
    anonymize_dataset(
        copied,
        extra_anonymization_rules={tag: _keyed_uid(secret) for tag in uid_tags},
        delete_private_tags=True,
        base_rules_gen=lambda: initialize_actions(PROFILE_EDITION),
    )
    for element in list(copied):
        if element.keyword not in KEPT:
            del copied[element.tag]
    if str(copied.get("Laterality", "")).strip() not in LATERALITIES:  # a defined term, or nothing: never text
        copied.pop("Laterality", None)
    copied.walk(_empty_dummy_dates)
    _mark_deidentified(copied)
    return copied


def _mark_deidentified(ds: Dataset) -> None:
    """PS3.15 E.1.1: say that the identity was removed, and how."""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "DICOM PS3.15 Basic Application Level Confidentiality Profile"
    method = Dataset()
    method.CodeValue, method.CodingSchemeDesignator, method.CodeMeaning = BASIC_PROFILE_CODE
    ds.DeidentificationMethodCodeSequence = [method]


def _empty_dummy_dates(dataset: Dataset, element) -> None:
    """dicom-anonymizer writes year 0001 as its dummy date, which validators refuse as a DA; every such date
    is in a type 2 attribute (the profile's Z and D actions), so it is left empty instead."""
    if element.VR in ("DA", "DT") and str(element.value).startswith("00010101"):
        element.value = ""


def _keyed_uid(secret: bytes):
    def replace(dataset: Dataset, tag: tuple[int, int]) -> None:
        element = dataset.get(tag)
        if element is None or not element.value:
            return
        values = element.value if isinstance(element.value, MultiValue) else [element.value]
        keyed = [generate_uid(entropy_srcs=[secret.hex(), str(value)]) for value in values]
        element.value = keyed if isinstance(element.value, MultiValue) else keyed[0]

    return replace
