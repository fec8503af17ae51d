"""Scan ingestion: bytes of a DICOM or image file in, a ``Scan`` (or a ``ScanError`` saying why not) out.

- ``load``: sniffs the file kind from its content and hands it to ``dicom`` or ``raster``;
- ``guards``: refuses damaged and hostile files before memory is spent on them;
- ``frames``: the ``Scan`` itself; ``windowing``: modality values to what a reader sees;
- ``metadata``: the allow-list of header attributes that may be shown.
"""

from medattn.errors import ScanError
from medattn.scan.frames import Scan
from medattn.scan.load import DEFAULT_MAX_VALUES, load_scan

__all__ = ["DEFAULT_MAX_VALUES", "Scan", "ScanError", "load_scan"]
