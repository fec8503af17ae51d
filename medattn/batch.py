"""Batch scoring of an archive: every file ``load_scan`` reads, scored in batches, resumably.

Decoding runs in ``torch.utils.data.DataLoader`` worker processes while the main process runs the model,
so memory stays bounded by the batches in flight, not by the archive. Results go to a CSV journal one
batch at a time; a run restarted with the same output skips every file already in it. A Parquet
output is written from the journal when the run completes. A file that cannot be read gets a row
with its ``ScanError`` message and never stops the run.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from medattn.errors import BatchError, ScanError
from medattn.explain.overlay import blend
from medattn.model.predictor import Predictor
from medattn.model.preprocessing import Letterbox, Preprocessing
from medattn.scan import load_scan
from medattn.scan.resizing import shrink

OVERLAY_SIDE = 512
FORMATS = (".csv", ".parquet")


@dataclass
class Scored:
    """One file after decoding (in a worker process): its model input, or why it has none."""

    index: int
    model_input: torch.Tensor | None = None
    letterbox: Letterbox | None = None
    preview: np.ndarray | None = None  # the image at most OVERLAY_SIDE px, when overlays are asked for
    error: str | None = None


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
    """Files from folders (recursively, hidden files left out), glob patterns and CSV manifests.

    A manifest has a ``path`` column (or paths in its first column); relative paths are read from the
    manifest's own folder.
    """
    found: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
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


def _manifest(path: Path) -> list[Path]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return []
    column = rows[0].index("path") if "path" in rows[0] else 0
    body = rows[1:] if "path" in rows[0] else rows
    return [path.parent / row[column] for row in body if row and row[column].strip()]


class ScanFiles(Dataset):
    def __init__(self, paths: list[Path], recipe: Preprocessing, previews: bool):
        self.paths, self.recipe, self.previews = paths, recipe, previews

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Scored:
        try:
            scan = load_scan(self.paths[index], filename=self.paths[index].name)
        except ScanError as error:
            return Scored(index, error=str(error))
        model_input, letterbox = self.recipe.prepare(scan.model_pixels(0))  # as the app feeds the model
        preview = shrink(scan.display(0), OVERLAY_SIDE) if self.previews else None
        return Scored(index, torch.from_numpy(model_input), letterbox, preview)


def _single_threaded_worker(_: int) -> None:
    """Decoding workers share the cores with the model: one thread each, no oversubscription."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _as_list(batch: list[Scored]) -> list[Scored]:
    return batch


def score(
    predictor: Predictor,
    sources: list[str],
    out: Path,
    overlays: Path | None = None,
    batch_size: int = 64,
    workers: int = 2,
    progress: bool = True,
) -> Timings:
    """Score every input file not already in ``out``; return where the time went."""
    if out.suffix.lower() not in FORMATS:
        raise BatchError(f"The output must end in {' or '.join(FORMATS)}, not {out.suffix or 'nothing'}.")
    started = time.perf_counter()
    paths = find_inputs(sources)
    journal = out if out.suffix.lower() == ".csv" else out.with_name(out.name + ".partial.csv")
    fields = ["path", "status", "error", *(f"probability_{c}" for c in predictor.classes), "labels", "unlikeness"]
    _drop_unfinished_row(journal)
    done = _already_scored(journal, out)
    todo = [path for path in paths if str(path) not in done]
    timings = Timings(skipped=len(paths) - len(todo))
    loader = DataLoader(
        ScanFiles(todo, predictor.preprocessing, overlays is not None),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_as_list,
        worker_init_fn=_single_threaded_worker if workers else None,
        prefetch_factor=2 if workers else None,
        # Workers forked from a process already running threads (torch's, or a web server's) can inherit
        # a lock held mid-call and hang: they are forked from a clean server process instead.
        multiprocessing_context="forkserver" if workers else None,
    )
    new_journal = not journal.exists()
    with journal.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        if new_journal:
            writer.writeheader()
        bar = tqdm(total=len(todo), unit="img", file=sys.stderr, disable=not progress)
        waited = time.perf_counter()
        for batch in loader:
            timings.waiting += time.perf_counter() - waited
            rows = _score_batch(predictor, batch, todo, overlays, timings)
            wrote = time.perf_counter()
            writer.writerows(rows)
            handle.flush()
            timings.writing += time.perf_counter() - wrote
            bar.update(len(batch))
            waited = time.perf_counter()
        bar.close()
    if out.suffix.lower() == ".parquet":
        _journal_to_parquet(journal, out, fields)
    timings.seconds = time.perf_counter() - started
    return timings


def _score_batch(
    predictor: Predictor, batch: list[Scored], paths: list[Path], overlays: Path | None, timings: Timings
) -> list[dict]:
    readable = [item for item in batch if item.error is None]
    rows = {item.index: _row(paths[item.index], error=item.error) for item in batch if item.error}
    if readable:
        model_started = time.perf_counter()
        result = predictor.run(torch.stack([item.model_input for item in readable]))
        timings.model += time.perf_counter() - model_started
        unlikeness = result.unlikeness if result.unlikeness is not None else [None] * len(readable)
        maps_per_item = result.attention.numpy()
        outputs = zip(readable, result.probabilities, result.decisions, maps_per_item, unlikeness, strict=True)
        for item, p, chosen, maps, distance in outputs:
            labels = [c for c, yes in zip(predictor.classes, chosen, strict=True) if yes]
            rows[item.index] = _row(paths[item.index], dict(zip(predictor.classes, p, strict=True)), labels)
            if distance is not None:
                rows[item.index]["unlikeness"] = f"{distance:.3f}"
            if overlays is not None:
                top = int(np.argmax(p))
                heat = item.letterbox.to_original(maps[top], item.preview.shape[:2])
                _write_overlay(overlays, paths[item.index], blend(item.preview, heat))
    timings.files += len(batch)
    timings.failed += len(batch) - len(readable)
    return [rows[item.index] for item in batch]


def _row(path: Path, probabilities: dict | None = None, labels: list | None = None, error: str | None = None) -> dict:
    row = {"path": str(path), "status": "error" if error else "ok", "error": error or ""}
    row |= {f"probability_{name}": f"{value:.6f}" for name, value in (probabilities or {}).items()}
    return row | {"labels": ";".join(labels or [])}


def _write_overlay(folder: Path, source: Path, overlay: np.ndarray) -> None:
    """Named by the source's name and a hash of its full path: stable across runs, never colliding."""
    folder.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(str(source).encode()).hexdigest()[:10]
    Image.fromarray(overlay).save(folder / f"{source.stem}-{tag}.overlay.png")


def _drop_unfinished_row(journal: Path) -> None:
    """A run killed mid-write can leave half a row at the journal's end: cut it, so it is scored again."""
    if not journal.exists():
        return
    content = journal.read_bytes()
    if content and not content.endswith(b"\n"):
        with journal.open("r+b") as handle:
            handle.truncate(content.rfind(b"\n") + 1)


def _already_scored(journal: Path, out: Path) -> set[str]:
    done = set()
    for path in (journal, out):
        if path.exists() and path.suffix.lower() == ".csv":
            with path.open(newline="") as handle:
                done |= {row["path"] for row in csv.DictReader(handle)}
        elif path.exists():  # a finished Parquet output
            import pyarrow.parquet as pq

            done |= set(pq.read_table(path, columns=["path"]).column("path").to_pylist())
    return done


def _journal_to_parquet(journal: Path, out: Path, fields: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import csv as pa_csv

    numeric = [name for name in fields if name.startswith("probability_") or name == "unlikeness"]
    types = {name: pa.float64() if name in numeric else pa.string() for name in fields}
    options = pa_csv.ConvertOptions(column_types=types, strings_can_be_null=False)
    table = pa_csv.read_csv(journal, convert_options=options)
    if out.exists():  # a previous run's results: kept, then extended
        table = pa.concat_tables([pq.read_table(out).cast(table.schema), table])
    pq.write_table(table, out)
    journal.unlink()
