"""Reports are made for sharing: a scan that declares text burned into its pixels is shown in none, and a
scan unlike the training data says so on the report's face. Read back as text with poppler's pdftotext."""

import subprocess
from datetime import UTC, datetime

import numpy as np
import pytest

from medattn import load_scan
from medattn.review.report import ReportContent, render_report
from tests.conftest import PYDICOM_DATA_FILES, dicom_with


def report(pixels_withheld: bool = False, unlike_training_data: str | None = None) -> ReportContent:
    image = np.full((64, 64), 200, dtype=np.uint8)
    return ReportContent(
        image=image,
        layer=np.dstack([image, image, image, np.full_like(image, 100)]),
        probabilities={"Pulmonary nodule": 0.9},
        thresholds={"Pulmonary nodule": 0.3},
        model="medattn-cxr-synthetic 2026.11.24",
        explanation="Attention overlay — Pulmonary nodule",
        scan_key="k" * 64,
        created=datetime(2026, 11, 25, tzinfo=UTC),
        pixels_withheld=pixels_withheld,
        unlike_training_data=unlike_training_data,
    )


@pytest.mark.parametrize("withheld", [False, True])
def test_a_report_embeds_the_pictures_only_when_they_can_be_shared(withheld):
    pdf = render_report(report(withheld), "pdf")
    assert pdf.startswith(b"%PDF") and (b"/Subtype /Image" in pdf) is not withheld


def test_a_dicom_with_burned_in_annotation_is_flagged(ct_file):
    assert load_scan(dicom_with(ct_file, BurnedInAnnotation="YES")).burned_in_annotation
    assert not load_scan(dicom_with(ct_file, BurnedInAnnotation="NO")).burned_in_annotation
    assert load_scan(ct_file).burned_in_annotation is False  # a CT that does not say: its devices draw no text
    us = load_scan(PYDICOM_DATA_FILES / "US1_UNCR.dcm")  # text in its pixels, and no attribute saying so
    assert us.modality == "US" and us.burned_in_annotation is None  # not known: withheld until a reader looks
    assert (
        load_scan(dicom_with(PYDICOM_DATA_FILES / "US1_UNCR.dcm", BurnedInAnnotation="NO")).burned_in_annotation
        is False
    )


def pdf_text(pdf: bytes) -> str:
    finished = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True)
    return " ".join(finished.stdout.decode().split())


def test_the_report_of_an_unlike_scan_says_so_above_its_findings():
    warning = "This scan does not look like the images this model was trained on (unlikeness 56; the limit is 29)."
    text = pdf_text(render_report(report(unlike_training_data=warning), "pdf"))
    assert "not look like the images this model was trained on (unlikeness 56; the limit is 29)" in text
    assert text.index("unlikeness 56") < text.index("Findings (not meaningful for this scan)")
    plain = pdf_text(render_report(report(), "pdf"))
    assert "trained on" not in plain and "Findings" in plain and "not meaningful" not in plain
