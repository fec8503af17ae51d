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
