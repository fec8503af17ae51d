"""Scoring the studies on a DICOMweb server, and storing each image's results back beside it.

``python -m medattn score --dicomweb URL [--query Attribute=value ...] --store-results --out results.csv``.
Rows go to a journal as for an archive on disk (``medattn.batch``), one per image, known by the keyed hash of
its SOP Instance UID: a rerun skips the images already in it. An image's results are stored before its row
is written, and their UIDs are derived from the image's, so a run killed mid-store leaves a series that the
rerun stores again whole, replacing what was there rather than adding copies.
"""

from __future__ import annotations

import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset
from tqdm import tqdm

from medattn.batch import FORMATS, GATE_FIELDS, finished_keys, journal_to_parquet, open_journal, scored_columns
from medattn.errors import BatchError, PacsError, ScanError
from medattn.installation import installation_secret, instance_key, scan_key
from medattn.model.predictor import Predictor
from medattn.pacs.dicomweb import Pacs
from medattn.pacs.outputs import build_results, dicom_bytes, scored_image, source_dataset
from medattn.scan import load_scan


@dataclass
class ServerRun:
    images: int = 0
    failed: int = 0
    skipped: int = 0
    stored: int = 0  # result objects stored on the server
    seconds: float = 0.0


def score_server(
    predictor: Predictor,
    pacs: Pacs,
    out: Path,
    filters: dict[str, str] | None = None,
    store_results: bool = False,
    progress: bool = True,
) -> ServerRun:
    """Score every image of the studies matching ``filters`` not already in ``out``."""
    if out.suffix.lower() not in FORMATS:
        raise BatchError(f"The output must end in {' or '.join(FORMATS)}, not {out.suffix or 'nothing'}.")
    started = time.perf_counter()
    secret = installation_secret()
    journal = out if out.suffix.lower() == ".csv" else out.with_name(out.name + ".partial.csv")
    fields = [
        "file_key", "scan_key", "status", "error", *(f"probability_{c}" for c in predictor.classes),
        "labels", *GATE_FIELDS, "results",
    ]  # fmt: skip
    studies = pacs.studies(secret, filters)  # first: a server that cannot be asked leaves no output behind
    done = open_journal(journal, fields) | finished_keys(out)
    run = ServerRun()
    with journal.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fields)
        for study in tqdm(studies, unit="study", file=sys.stderr, disable=not progress):
            for instance in pacs.images(study.study_uid):
                key = instance_key(secret, str(instance.SOPInstanceUID))
                if key in done:
                    run.skipped += 1
                    continue
                writer.writerow(_score_one(predictor, pacs, instance, key, secret, store_results, run))
                handle.flush()
                done.add(key)
    if out.suffix.lower() == ".parquet":
        journal_to_parquet(journal, out, fields)
    run.seconds = time.perf_counter() - started
    return run


def _score_one(
    predictor: Predictor, pacs: Pacs, instance: Dataset, key: str, secret: bytes, store: bool, run: ServerRun
) -> dict:
    content = dicom_bytes(instance)
    row = {"file_key": key, "scan_key": scan_key(secret, str(instance.SOPInstanceUID), content)}
    run.images += 1
    try:
        scan = load_scan(content)
    except ScanError as error:
        run.failed += 1
        return {**row, "status": "error", "error": str(error)}
    scored = scored_image(predictor, scan)
    prediction = scored.prediction
    withheld = None if prediction.unlikeness is None else prediction.unlike_training_data
    gate = prediction.unlikeness, prediction.noise, withheld
    row |= {"status": "ok", **scored_columns(prediction.probabilities, prediction.labels, *gate)}
    if not store:
        return row
    try:
        results = build_results(source_dataset(content), scored)
    except PacsError as error:  # a multi-frame image: scored, with nothing to store
        return {**row, "results": str(error)}
    pacs.store(results.datasets)
    run.stored += len(results.datasets)
    return {**row, "results": " ".join([f"{len(results.datasets)} objects stored.", *results.left_out])}
