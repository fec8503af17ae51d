"""DICOM test sources for the results: a synthetic sample inside a DICOM file, and dciodvfy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pytest
from PIL import Image

from medattn.assets import synthetic_samples
from medattn.pacs.outputs import dicom_bytes

# Identifiers written into the test source, to look for in everything made for sharing.
PATIENT = {"patient_name": "Doe^Jane", "patient_id": "MRN-4711", "patient_birth_date": "19500101"}
ACCESSION = "ACC-0815"


def dicom_of_sample(label: str = "nodule") -> bytes:
    """A shipped synthetic sample (like the model's training data) as a DICOM image with a patient's
    identifiers, as a modality would send it. Built with highdicom: test data, not an output."""
    pixels = np.asarray(Image.open(synthetic_samples()[label]))  # 16-bit grey
    image = hd.sc.SCImage(
        pixel_array=pixels,
        photometric_interpretation="MONOCHROME2",
        bits_allocated=16,
        coordinate_system="PATIENT",
        study_instance_uid=hd.UID(),
        series_instance_uid=hd.UID(),
        series_number=1,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="test modality",
        patient_orientation=("L", "F"),
        accession_number=ACCESSION,
        study_date="20260102",
        study_time="101010",
        referring_physician_name="Referrer^Rita",
        **PATIENT,
    )
    image.InstitutionName = "St Elsewhere Hospital"
    return dicom_bytes(image)


def dciodvfy_errors(content: bytes, folder: Path) -> list[str]:
    """dicom3tools' validator's errors for one object (none is the pass mark)."""
    if shutil.which("dciodvfy") is None:
        pytest.skip("dicom3tools is not installed: apt-get install dicom3tools")
    path = folder / "object.dcm"
    path.write_bytes(content)
    checked = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    return [line for line in (checked.stdout + checked.stderr).splitlines() if line.startswith("Error")]
