"""What of a DICOM file's header may be shown: an allow-list of technical attributes, never an identifier."""

from __future__ import annotations

import numpy as np
import pydicom

# Technical attributes shown to the user. An allow-list, so nothing identifying slips through.
DICOM_DISPLAY_ATTRIBUTES = {
    "Modality": "Modality",
    "BodyPartExamined": "Body part",
    "Manufacturer": "Manufacturer",
    "PhotometricInterpretation": "Photometric interpretation",
    "BitsStored": "Bits stored",
}


# Modalities whose devices routinely draw the patient's details into the image, so a file of theirs that does
# not say (Burned In Annotation absent) may carry them: ultrasound and intravascular ultrasound consoles,
# fluoroscopy and angiography, endoscopy and external photography, and screen captures (secondary capture,
# "other"). pydicom-data's US1_UNCR.dcm shows "BAPTIST MED CTR" in its pixels and has no such attribute.
TEXT_IN_PIXELS_MODALITIES = frozenset({"US", "IVUS", "RF", "XA", "ES", "XC", "SC", "OT"})


def burned_in_text(ds: pydicom.Dataset) -> bool | None:
    """Whether the pixels may carry identifying text: True where the file says so (Burned In Annotation YES),
    False where it says not or its modality does not draw text, None where it does not say and its modality
    routinely does (then nothing made for sharing shows the pixels until a reader has looked)."""
    declared = str(ds.get("BurnedInAnnotation", "")).strip().upper()
    if declared in ("YES", "NO"):
        return declared == "YES"
    return None if str(ds.get("Modality", "")).strip().upper() in TEXT_IN_PIXELS_MODALITIES else False


def dicom_meta(ds: pydicom.Dataset, first_frame: np.ndarray, frame_count: int) -> dict[str, str]:
    meta = {}
    for keyword, label in DICOM_DISPLAY_ATTRIBUTES.items():
        try:
            value = ds.get(keyword)
        except (ValueError, TypeError):
            continue
        if value not in (None, ""):
            meta[label] = str(value)
    meta["Size"] = f"{first_frame.shape[1]}×{first_frame.shape[0]}"
    meta["Frames"] = str(frame_count)
    meta["Transfer syntax"] = transfer_syntax_name(ds)
    return meta


def transfer_syntax_name(ds: pydicom.Dataset) -> str:
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    return syntax.name if syntax else "no transfer syntax"
