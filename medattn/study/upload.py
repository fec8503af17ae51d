"""A labelled case set uploaded as a folder: a manifest (CSV) naming each file's findings, or one
sub-folder per finding.

- With a ``.csv`` in the folder: a ``file`` column (the file's path inside the folder, or its name) and
  one column per finding read, holding 1 / 0 (or yes / no, true / false).
- Without one: each file's folder names its one finding (``nodule/``, ``effusion/``...), and a folder
  named ``normal`` or ``none`` holds cases with no finding.

Any format the app reads. Only pixels are kept for the study, never a file's name or its metadata: the
frame as readers see it (default window) and as the model reads it, at most ``KEPT_SIDE`` pixels on the
long side. A file that says text is burned into its pixels is refused, since it may name the patient.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from medattn.errors import ScanError, StudyError
from medattn.scan import Scan, load_scan
from medattn.scan.resizing import shrink
from medattn.study.design import MAX_CASES

KEPT_SIDE = 1024
NO_FINDING = ("normal", "none")
YES, NO = {"1", "yes", "true", "y"}, {"0", "no", "false", "n", ""}


@dataclass(frozen=True)
class LabelledCase:
    display: np.ndarray  # uint8, as readers see it
    pixels: np.ndarray  # float32, as the model reads it (Scan.model_pixels)
    truth: dict[str, bool]


def labelled_cases(
    files: dict[str, bytes], findings: tuple[str, ...], loader: Callable[[bytes], Scan] = load_scan
) -> list[LabelledCase]:
    """The cases of an uploaded folder (path inside it -> bytes), in the folder's order, each with its
    truth for every one of ``findings``. ``loader`` decodes a file: the app's bounded decoder workers
    (``medattn.scan.elsewhere``), never its server process."""
    manifests = [path for path in files if path.lower().endswith(".csv")]
    if len(manifests) > 1:
        raise StudyError("The folder holds more than one CSV file; keep only the manifest.")
    images = {path: content for path, content in files.items() if path not in manifests}
    if len(images) > MAX_CASES:
        raise StudyError(f"The folder holds {len(images):,} files; a study takes at most {MAX_CASES:,} cases.")
    if manifests:
        truths = _from_manifest(files[manifests[0]], images, findings)
    else:
        truths = {path: _from_folder(path, findings) for path in images}
    if len(truths) < 2:
        raise StudyError("A study needs at least two cases; the folder holds fewer.")
    return [_case(path, images[path], truth, loader) for path, truth in sorted(truths.items())]


def _from_manifest(manifest: bytes, images: dict[str, bytes], findings: tuple[str, ...]) -> dict[str, dict]:
    try:
        rows = list(csv.DictReader(io.StringIO(manifest.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error):
        raise StudyError("The manifest is not a readable CSV file (UTF-8, comma-separated).") from None
    columns = set(rows[0]) if rows else set()
    missing = [column for column in ("file", *findings) if column not in columns]
    if missing:
        raise StudyError(f"The manifest needs the columns file, {', '.join(findings)}; it lacks {', '.join(missing)}.")
    by_name = {PurePosixPath(path).name: path for path in images}
    truths = {}
    for number, row in enumerate(rows, start=2):
        path = row["file"] if row["file"] in images else by_name.get(PurePosixPath(row["file"]).name)
        if path is None:
            raise StudyError(f"Line {number} of the manifest names a file the folder does not hold.")
        values = {finding: (row[finding] or "").strip().lower() for finding in findings}
        if any(value not in YES | NO for value in values.values()):
            raise StudyError(f"Line {number} of the manifest: write 1 or 0 for each finding.")
        truths[path] = {finding: value in YES for finding, value in values.items()}
    unlisted = len(set(images) - set(truths))
    if unlisted:
        raise StudyError(f"{unlisted} file(s) in the folder are not in the manifest; list them or remove them.")
    return truths


def _from_folder(path: str, findings: tuple[str, ...]) -> dict[str, bool]:
    folder = PurePosixPath(path).parent.name.lower()
    if folder not in (*findings, *NO_FINDING):
        raise StudyError(
            f"A file lies in a folder named neither after a finding ({', '.join(findings)}) nor "
            f"{' or '.join(NO_FINDING)}; put a manifest.csv in the folder, or move the file."
        )
    return {finding: folder == finding for finding in findings}


def _case(path: str, content: bytes, truth: dict[str, bool], loader: Callable[[bytes], Scan]) -> LabelledCase:
    try:
        scan = loader(content)
    except ScanError as error:
        raise StudyError(f"{PurePosixPath(path).name} cannot be read: {error}") from None
    if scan.burned_in_annotation is not False:
        why = (
            "says text is burned into its pixels"
            if scan.burned_in_annotation
            else f"does not say whether text is burned into its pixels, and {scan.modality} images often carry it"
        )
        raise StudyError(
            f"{PurePosixPath(path).name} {why}, which may identify the patient; a study keeps pixels, so leave it out."
        )
    return LabelledCase(
        shrink(scan.display(0), KEPT_SIDE), shrink(scan.model_pixels(0).astype(np.float32), KEPT_SIDE), truth
    )


def pixels_bytes(pixels: np.ndarray) -> bytes:
    """An array as .npy bytes: stored without pickling, read back with ``pixels_from``."""
    buffer = io.BytesIO()
    np.save(buffer, pixels, allow_pickle=False)
    return buffer.getvalue()


def pixels_from(stored: bytes) -> np.ndarray:
    return np.load(io.BytesIO(stored), allow_pickle=False)


def truth_table(cases: list[LabelledCase], findings: tuple[str, ...]) -> np.ndarray:
    """(cases, findings) 0/1 in the order of ``findings``, as ``medattn.study.results`` reads truth."""
    return np.array([[float(case.truth.get(finding, False)) for finding in findings] for case in cases])
