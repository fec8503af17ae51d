"""Batch scoring of an archive: every file ``load_scan`` reads, scored in batches, resumably.

Decoding runs in ``torch.utils.data.DataLoader`` worker processes while the main process runs the model,
so memory stays bounded by the batches in flight, not by the archive. Results go to a CSV journal one
batch at a time; a run restarted with the same output skips every file already in it, whatever point
the last run was killed at. A Parquet output is written from the journal when the run completes. A file
that cannot be read gets a row with its ``ScanError`` message and never stops the run.

Archive paths are often named after patients, so rows carry no path unless asked: a file is known by its
``file_key`` (a keyed hash of its path, which resuming matches on) and its ``scan_key`` (the review
store's keyed hash of its SOP Instance UID, or of its bytes), both under the installation secret.
"""

from __future__ import annotations

import csv
import glob
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from medattn.errors import BatchError, ScanError
from medattn.explain.overlay import attention_levels, blend
from medattn.installation import file_key, installation_secret, scan_key
from medattn.model.predictor import Predictor
from medattn.model.preprocessing import Letterbox, Preprocessing
from medattn.review.export import defused
from medattn.runtime import decode_on_every_core
from medattn.scan import DEFAULT_MAX_VALUES, load_scan
from medattn.scan.elsewhere import limit_memory
from medattn.scan.resizing import shrink

if TYPE_CHECKING:
    import pyarrow as pa

OVERLAY_SIDE = 512
FORMATS = (".csv", ".parquet")
# Larger files are refused unread: even float64 pixels at the pixel limit, plus room for the header.
MAX_FILE_BYTES = 8 * DEFAULT_MAX_VALUES + 64 * 2**20


@dataclass
class Scored:
    """One file after decoding (in a worker process): its model input, or why it has none."""

    index: int
    scan_key: str = ""
    model_input: torch.Tensor | None = None
    letterbox: Letterbox | None = None
    preview: np.ndarray | None = None  # the image at most OVERLAY_SIDE px, when overlays are asked for
    error: str | None = None
    burned_in_annotation: bool | None = False  # text in the pixels, or not known: no overlay is written for it


@dataclass
class Timings:
    """Where the main process spent the run: waiting for decoded batches, in the model, or writing."""

    waiting: float = 0.0
    model: float = 0.0
    writing: float = 0.0
    files: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0


def find_inputs(sources: list[str]) -> list[Path]:
    """Files from folders (recursively, hidden files and folders left out), glob patterns and CSV manifests.

    A manifest has a ``path`` column (or paths in its first column); relative paths are read from the
    manifest's own folder. A folder that cannot be listed is named itself, so that it gets a row.
    """
    found: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found += _folder(path)
        elif path.is_file() and path.suffix.lower() == ".csv":
            found += _manifest(path)
        elif path.is_file():
            found.append(path)
        else:
            matches = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
            if not matches:
                raise BatchError(f"{source} is not a file or folder and matches no file.")
            found += matches
    return list(dict.fromkeys(found))  # each file once, in the order first named


def _folder(top: Path) -> list[Path]:
    """Every file under ``top``, and every folder under it that could not be listed (``rglob`` would
    skip those without a word, and their files would silently go unscored)."""
    found: list[Path] = []
    unlisted: list[Path] = []
    for folder, subfolders, files in os.walk(top, onerror=lambda error: unlisted.append(Path(error.filename))):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found += [Path(folder, name) for name in files if not name.startswith(".")]
    return sorted([path for path in found if path.is_file()] + unlisted)


def _manifest(path: Path) -> list[Path]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return []
    column = rows[0].index("path") if "path" in rows[0] else 0
    body = rows[1:] if "path" in rows[0] else rows
    return [path.parent / row[column] for row in body if row and row[column].strip()]


class ScanFiles(Dataset):
    def __init__(self, paths: list[Path], recipe: Preprocessing, previews: bool, secret: bytes):
        self.paths, self.recipe, self.previews, self.secret = paths, recipe, previews, secret

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Scored:
        try:
            content = _read_bounded(self.paths[index])
        except ScanError as error:
            return Scored(index, error=str(error))
        try:
            scan = load_scan(content)
        except ScanError as error:
            return Scored(index, scan_key(self.secret, None, content), error=str(error))
        model_input, letterbox = self.recipe.prepare(scan.model_pixels(0))  # as the app feeds the model
        preview = shrink(scan.display(0), OVERLAY_SIDE) if self.previews else None
        key = scan_key(self.secret, scan.instance_uid, content)
        return Scored(index, key, torch.from_numpy(model_input), letterbox, preview, None, scan.burned_in_annotation)


def _read_bounded(path: Path) -> bytes:
    """The file's bytes, refusing before reading anything that is not a regular file or is too large."""
    try:
        if path.is_dir():
            raise ScanError("This folder could not be listed, so no file in it was scored. Check its permissions.")
        if not path.is_file():
            raise ScanError("This is not a regular file (a device or a pipe); it is skipped unread.")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ScanError(f"The file is {size / 2**20:.0f} MB, above the {MAX_FILE_BYTES / 2**20:.0f} MB limit.")
        return path.read_bytes()
    except OSError as error:
        raise ScanError(f"The file could not be read: {error.strerror}.") from None


def _single_threaded_worker(_: int) -> None:
    """Decoding workers share the cores with the model: one thread each, no oversubscription; and each runs
    under the app's decoder memory limit, so a hostile file costs that file a message, not the run."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    os.environ["OPJ_NUM_THREADS"] = "1"  # OpenJPEG reads it as each decoder is made; the parent may have set more
    limit_memory()


def _as_list(batch: list[Scored]) -> list[Scored]:
    return batch


def score(
    predictor: Predictor,
    sources: list[str],
    out: Path,
    overlays: Path | None = None,
    batch_size: int = 64,
    workers: int = 0,
    progress: bool = True,
    keep_paths: bool = False,
) -> Timings:
    """Score every input file not already in ``out``; return where the time went. ``workers``: processes that
    decode beside this one, each on one thread; none by default, which on 2 cores was faster for small PNGs and
    2k radiographs alike (docs/operations.md), a JPEG 2000 image then decoding here on every core.

    ``keep_paths`` adds each file's path to its row (and its name to its overlay's): only for outputs
    that stay where the archive's own paths may be seen.
    """
    if out.suffix.lower() not in FORMATS:
        raise BatchError(f"The output must end in {' or '.join(FORMATS)}, not {out.suffix or 'nothing'}.")
    started = time.perf_counter()
    secret = installation_secret()
    paths = find_inputs(sources)
    journal = out if out.suffix.lower() == ".csv" else out.with_name(out.name + ".partial.csv")
    fields = result_fields(predictor.classes, keep_paths)
    with naming(journal):
        done = open_journal(journal, fields) | finished_keys(out)
    keys = {path: file_key(secret, path) for path in paths}
    todo = [path for path in paths if keys[path] not in done]
    timings = Timings(skipped=len(paths) - len(todo))
    if not workers:  # decoded here, while the model waits: a JPEG 2000 radiograph on every core (0.27 s, not 0.5)
        decode_on_every_core()
    loader = DataLoader(
        ScanFiles(todo, predictor.preprocessing, overlays is not None, secret),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_as_list,
        worker_init_fn=_single_threaded_worker if workers else None,
        prefetch_factor=2 if workers else None,
        # Spawned, so each worker's parent is this process: a worker forked from a threaded process can
        # inherit a lock held mid-call and hang, and one forked from a forkserver outlives a killed run.
        multiprocessing_context="spawn" if workers else None,
    )
    with (
        naming(journal),
        journal.open("a", newline="", encoding="utf-8") as handle,
        tqdm(total=len(todo), unit="img", file=sys.stderr, disable=not progress) as bar,
    ):
        writer = csv.DictWriter(handle, fields)
        waited = time.perf_counter()
        for batch in loader:
            timings.waiting += time.perf_counter() - waited
            rows = score_batch(predictor, batch, todo, keys, overlays, keep_paths, timings)
            wrote = time.perf_counter()
            writer.writerows(rows)
            handle.flush()
            timings.writing += time.perf_counter() - wrote
            bar.update(len(batch))
            waited = time.perf_counter()
    if out.suffix.lower() == ".parquet":
        with naming(out):
            journal_to_parquet(journal, out, fields)
    timings.seconds = time.perf_counter() - started
    return timings


@contextmanager
def naming(path: Path) -> Iterator[None]:
    """An OSError raised while writing ``path`` names it: a write to a full disk raises one without a file
    name, and the command line would say only 'a file: No space left on device'."""
    try:
        yield
    except OSError as error:
        if error.filename:
            raise
        raise OSError(error.errno, error.strerror, str(path)) from None


def result_fields(classes: list[str], keep_paths: bool) -> list[str]:
    """The columns of a scoring run's rows, in order."""
    return [
        "file_key", "scan_key", *(["path"] if keep_paths else []), "status", "error",
        *(f"probability_{c}" for c in classes), "labels", *GATE_FIELDS, "burned_in_annotation",
    ]  # fmt: skip


# The gate's figures beside a row's probabilities (medattn.model.unlikeness), and whether the app would withhold
# them: "yes" means the probabilities and labels are not meaningful for that image.
GATE_FIELDS = ("unlikeness", "noise", "withheld")


def scored_columns(
    probabilities: dict[str, float],
    labels: list[str],
    unlikeness: float | None,
    noise: float | None,
    withheld: bool | None,
) -> dict[str, str]:
    """A readable file's model columns as its row writes them: probabilities to 6 decimals, the findings
    above threshold joined by ';', the unlikeness to 3 decimals and the relative noise to 4 (each empty where the
    card has no such limit), and whether the gate withholds the output ("yes", "no"; empty without a gate)."""
    return {
        **{f"probability_{name}": f"{value:.6f}" for name, value in probabilities.items()},
        "labels": ";".join(labels),
        "unlikeness": "" if unlikeness is None else f"{unlikeness:.3f}",
        "noise": "" if noise is None else f"{noise:.4f}",
        "withheld": "" if withheld is None else ("yes" if withheld else "no"),
    }


def result_schema(fields: list[str]) -> pa.Schema:
    """The Parquet columns' types: probabilities, the unlikeness and the noise as numbers, everything else as text."""
    import pyarrow as pa

    numeric = {name for name in fields if name.startswith("probability_") or name in ("unlikeness", "noise")}
    return pa.schema([(name, pa.float64() if name in numeric else pa.string()) for name in fields])


def score_batch(
    predictor: Predictor,
    batch: list[Scored],
    paths: list[Path],
    keys: dict[Path, str],
    overlays: Path | None,
    keep_paths: bool,
    timings: Timings,
) -> list[dict]:
    def row(item: Scored, **values: str) -> dict:
        path = paths[item.index]
        # A name that is not UTF-8 is written with its odd bytes escaped (\xe9) rather than stopping the run.
        named = {"path": defused(os.fsencode(path).decode("utf-8", "backslashreplace"))} if keep_paths else {}
        status = {"status": "error" if item.error else "ok", "error": item.error or ""}
        return {"file_key": keys[path], "scan_key": item.scan_key, **named, **status, **values}

    readable = [item for item in batch if item.error is None]
    rows = {item.index: row(item) for item in batch if item.error}
    if readable:
        model_started = time.perf_counter()
        inputs = torch.stack([item.model_input for item in readable])
        result = predictor.run(inputs, [item.letterbox for item in readable])
        timings.model += time.perf_counter() - model_started
        nothing = [None] * len(readable)
        unlikeness = nothing if result.unlikeness is None else result.unlikeness.tolist()
        noise = nothing if result.noise is None else result.noise.tolist()
        withheld = nothing if result.gate is None else result.withheld.tolist()
        maps_per_item = result.attention.numpy()
        outputs = zip(readable, result.probabilities, result.decisions, maps_per_item, strict=True)
        for (item, p, chosen, maps), gate in zip(outputs, zip(unlikeness, noise, withheld, strict=True), strict=True):
            labels = [c for c, yes in zip(predictor.classes, chosen, strict=True) if yes]
            probabilities = dict(zip(predictor.classes, p, strict=True))
            rows[item.index] = row(
                item,
                **scored_columns(probabilities, labels, *gate),
                burned_in_annotation={True: "yes", None: "unknown", False: "no"}[item.burned_in_annotation],
            )
            if overlays is not None and item.burned_in_annotation is False:  # else its pixels may name the patient
                top = int(np.argmax(p))
                times_uniform = maps[top] * maps[top].size  # on the app's model-wide attention scale
                heat = attention_levels(item.letterbox.to_original(times_uniform, item.preview.shape[:2]))
                path = paths[item.index]
                name = f"{path.stem}-{keys[path][:10]}" if keep_paths else keys[path][:16]
                overlays.mkdir(parents=True, exist_ok=True)
                overlay = overlays / f"{name}.overlay.png"
                with naming(overlay):
                    Image.fromarray(blend(item.preview, heat)).save(overlay)
    timings.files += len(batch)
    timings.failed += len(batch) - len(readable)
    return [rows[item.index] for item in batch]


def open_journal(journal: Path, fields: list[str]) -> set[str]:
    """The file keys a journal already holds, after making it safe to append to.

    A run can be killed at any point: before its header reached the disk (an empty journal), or mid-row.
    A half-written last row is cut (a quoted field can hold a newline, so rows end only at a newline
    outside quotes), and that file is scored again. A new journal gets its header on disk at once.
    """
    content = journal.read_bytes() if journal.exists() else b""
    if not content:
        with journal.open("w", newline="", encoding="utf-8") as handle:
            csv.DictWriter(handle, fields).writeheader()
            handle.flush()
            os.fsync(handle.fileno())
        return set()
    header = content.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if header != ",".join(fields):
        raise BatchError(
            f"{journal} was written with other columns (another model, or with or without --keep-paths); "
            "choose another --out or move it away."
        )
    complete = _last_row_end(content)
    if complete < len(content):
        with journal.open("r+b") as handle:
            handle.truncate(complete)
    with journal.open(newline="", encoding="utf-8") as handle:
        return {row["file_key"] for row in csv.DictReader(handle)}


def _last_row_end(content: bytes) -> int:
    """The length of the journal up to its last complete row."""
    end = len(content)
    while end > 0:
        end = content.rfind(b"\n", 0, end)
        if end < 0:
            return 0
        if content.count(b'"', 0, end) % 2 == 0:
            return end + 1
    return 0


def finished_keys(out: Path) -> set[str]:
    """The file keys of a finished Parquet output (a CSV output is its own journal)."""
    if out.suffix.lower() != ".parquet" or not out.exists():
        return set()
    import pyarrow.parquet as pq

    return set(pq.read_table(out, columns=["file_key"]).column("file_key").to_pylist())


def journal_to_parquet(journal: Path, out: Path, fields: list[str]) -> None:
    """The journal's rows appended to the Parquet output, written whole then swapped in.

    A run killed while writing leaves the previous output intact; one killed after the swap but before
    the journal is removed finds its rows in both, and they are kept once.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pyarrow import csv as pa_csv

    types = {field.name: field.type for field in result_schema(fields)}
    options = pa_csv.ConvertOptions(column_types=types, strings_can_be_null=False)
    table = pa_csv.read_csv(journal, convert_options=options)
    if out.exists():  # a previous run's results: kept, then extended by the rows not already in them
        previous = pq.read_table(out).cast(table.schema)
        table = pa.concat_tables([previous, table.filter(pc.invert(pc.is_in(table["file_key"], previous["file_key"])))])
    draft = out.with_name(out.name + ".writing")
    pq.write_table(table, draft)
    os.replace(draft, out)
    journal.unlink()
