"""Reports are made for sharing: a scan that declares text burned into its pixels is shown in none."""

from datetime import UTC, datetime

import numpy as np
import pytest

from medattn import load_scan
from medattn.review.report import ReportContent, render_report
from tests.conftest import dicom_with


def report(pixels_withheld: bool) -> ReportContent:
    image = np.full((64, 64), 200, dtype=np.uint8)
    return ReportContent(
        image=image,
        overlay=np.stack([image] * 3, axis=-1),
        probabilities={"Pulmonary nodule": 0.9},
        thresholds={"Pulmonary nodule": 0.3},
        model="medattn-cxr-synthetic 2026.11.24",
        explanation="Attention overlay — Pulmonary nodule",
        study_key="k" * 64,
        created=datetime(2026, 11, 25, tzinfo=UTC),
        pixels_withheld=pixels_withheld,
    )


@pytest.mark.parametrize("withheld", [False, True])
def test_a_report_embeds_the_pictures_only_when_they_can_be_shared(withheld):
    pdf = render_report(report(withheld), "pdf")
    assert pdf.startswith(b"%PDF") and (b"/Subtype /Image" in pdf) is not withheld


def test_a_dicom_with_burned_in_annotation_is_flagged(ct_file):
    assert load_scan(dicom_with(ct_file, BurnedInAnnotation="YES")).burned_in_annotation
    assert not load_scan(dicom_with(ct_file, BurnedInAnnotation="NO")).burned_in_annotation
    assert not load_scan(ct_file).burned_in_annotation
