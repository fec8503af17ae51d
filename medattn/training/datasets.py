"""Labelled image sets for training and evaluation, from every source the trainer accepts.

- ``synthetic``: the built-in benchmark (multi-label, with ground-truth masks).
- a MedMNIST ``.npz`` in the official layout (``train_images``, ``train_labels``, ``val_*``, ``test_*``):
  labels of shape (N, 1) are one class index per image (multi-class); (N, K) are K binary labels.
- a folder with one sub-folder per class (multi-class), of any files ``load_scan`` reads.
- a CSV manifest ``path,label[,label...]`` (paths relative to the CSV); multi-label when any row has
  more than one label.
- a public chest radiograph dataset's folder, as published (``medattn.training.public``): NIH ChestX-ray14, with
  its official patient-level split, CheXpert (uncertain labels as negative, frontal views), RSNA Pneumonia,
  VinDr-CXR (the readers' majority, the consensus test set) or SIIM-ACR (its pneumothorax outlines).

Folders and manifests have no split of their own: each file goes to ``train``, ``val`` or ``test`` by a
hash of its path, so the split is stable as files are added. ``val`` picks the epoch, fits the temperatures
and sets the thresholds; ``test`` is never touched by training, so the card's figures from it are
held out. Files are read through ``Scan.model_pixels``, as the app reads them.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np

from medattn import benchmark
from medattn.errors import DatasetError, ScanError
from medattn.scan import load_scan
from medattn.training import public

SPLITS = ("train", "val", "test")
# Shares of a folder's or manifest's files held out for validation and for testing; the rest trains.
VALIDATION_SHARE, TEST_SHARE = 0.15, 0.15


@dataclass
class LabelledImages:
    """``images``: arrays H x W or H x W x C; ``labels``: float32 (N, classes), one-hot when multi-class."""

    images: Sequence[np.ndarray]
    labels: np.ndarray
    classes: tuple[str, ...]
    task: str  # "multi-label" or "multi-class"
    source: str
    split: str  # "train", "val" or "test": only "test" was never used to train, select or calibrate a model
    masks: np.ndarray | None = None  # bool (N, classes, H, W) where ground truth exists
    # Where a public dataset's readers put each image's findings (boxes, outlines), where it has them
    regions: Sequence[tuple[public.Region, ...]] | None = None

    def __len__(self) -> int:
        return len(self.images)


def for_model(dataset: LabelledImages, classes: Sequence[str], names: Mapping[str, str], task: str) -> LabelledImages:
    """``dataset`` with a model's ``classes`` as its columns, in the model's order, so that column ``c`` is the
    model's output ``c``. A dataset's class matches a model's class by name or display name (``names``), ignoring
    case, spaces and underscores, or by one of its names joined by "/": NIH's "Effusion" and CheXpert's "Pleural
    Effusion" are the benchmark's "effusion" (display name "Pleural effusion"), VinDr-CXR's "Nodule/Mass" its
    "nodule". A model's class the dataset lacks has unknown labels (NaN), no mask and no regions; its regions'
    findings take the model's names (None where none is of the model's findings). A DatasetError where no class
    matches, where two match one, or where the data or the model (``task``) is multi-class and their classes do
    not match one to one (a case of an unmatched class would have no label at all, and the top class would be
    taken among the known ones)."""
    if dataset.classes == tuple(classes):
        return dataset
    wanted = {}
    for c in classes:
        for alias in {_comparable(c), _comparable(names.get(c, c))}:
            if wanted.setdefault(alias, c) != c:
                raise DatasetError(f"The model's classes {wanted[alias]} and {c} share the name {alias!r}.")
    matched = {}
    for i, name in enumerate(dataset.classes):
        found = {wanted[alias] for alias in _aliases(name) if alias in wanted}
        if len(found) > 1:
            raise DatasetError(f"{dataset.source}'s {name} matches the model's {' and '.join(sorted(found))}.")
        if found:
            matched[i] = found.pop()
    twice = [c for c in classes if list(matched.values()).count(c) > 1]
    one_to_one = len(matched) == len(dataset.classes) and set(matched.values()) == set(classes)
    multi_class = "multi-class" in (dataset.task, task)
    problem = None
    if not matched:
        problem = "none of them match by name."
    elif twice:
        problem = f"two of them match {twice[0]}."
    elif multi_class and not one_to_one:
        problem = "a multi-class model or data needs the same classes, each matched once."
    if problem:
        raise DatasetError(
            f"{dataset.source} labels {', '.join(dataset.classes)}; the model finds {', '.join(classes)}: {problem}"
        )
    column = {model_class: i for i, model_class in matched.items()}
    labels = np.full((len(dataset), len(classes)), np.nan, dtype=np.float32)
    masks = None if dataset.masks is None else np.zeros((len(dataset), len(classes), *dataset.masks.shape[2:]), bool)
    for c, model_class in enumerate(classes):
        if model_class in column:
            labels[:, c] = dataset.labels[:, column[model_class]]
            if masks is not None:
                masks[:, c] = dataset.masks[:, column[model_class]]
    regions = None
    if dataset.regions is not None:
        model_name = {dataset.classes[i]: model_class for i, model_class in matched.items()}
        regions = [
            tuple(dataclasses.replace(r, finding=model_name[r.finding]) for r in found if r.finding in model_name)
            for found in dataset.regions
        ]
        regions = regions if any(regions) else None  # as open_dataset leaves data with no region: none at all
    return dataclasses.replace(dataset, labels=labels, classes=tuple(classes), masks=masks, regions=regions)


def _comparable(name: str) -> str:
    return re.sub(r"[\s_]+", " ", name).strip().casefold()


def _aliases(name: str) -> set[str]:
    """A dataset's class as it may name a model's: whole, or each of its names joined by "/"."""
    return {_comparable(name)} | {_comparable(part) for part in name.split("/") if part.strip()}


def synthetic(
    seed: int,
    count: int,
    size: int = 128,
    split: str = "train",
    subtle_share: float = 0.0,
    subtle: tuple[str, ...] = benchmark.FINDINGS,
) -> LabelledImages:
    """The benchmark's cases ``0..count-1`` of ``seed``: each seed is its own split, so ``split`` only names
    the role the caller gives it. ``subtle_share`` and ``subtle``: see ``synthetic.generate``."""
    images, masks = benchmark.generate(seed, count, size, subtle_share=subtle_share, subtle=subtle)
    labels = masks.any(axis=(2, 3)).astype(np.float32)
    source = f"synthetic seed {seed}"
    if subtle_share and subtle:
        source += f", {subtle_share:.0%} of {', '.join(subtle)} findings drawn subtler"
    return LabelledImages(list(images), labels, benchmark.FINDINGS, "multi-label", source, split, masks)


def open_dataset(location: str | Path, split: str, uncertain: str = "zeros") -> LabelledImages:
    """A MedMNIST .npz file, a class-folder tree, a CSV manifest or a public dataset's folder at ``location``, one
    split of it; CheXpert's uncertain labels as ``uncertain`` says (``public.UNCERTAIN``)."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    path = Path(location)
    if path.suffix == ".npz":
        return medmnist(path, split)
    if path.suffix == ".csv":
        return manifest(path, split)
    if index := public.open_index(path, uncertain):
        records = index.split(split)
        images = _read_images([record.path for record in records])
        regions = [record.regions for record in records] if any(record.regions for record in records) else None
        return LabelledImages(
            images, index.labels(records), index.classes, "multi-label", f"{index.name} {split}", split, regions=regions
        )
    if path.is_dir():
        return image_folder(path, split)
    raise DatasetError(f"{path} is not a .npz file, a .csv manifest or a folder of class folders.")


def medmnist(path: Path | str, split: str, classes: Sequence[str] | None = None) -> LabelledImages:
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DatasetError(f"{path} is not a readable .npz file ({error}).") from None
    with archive:
        keys = (f"{split}_images", f"{split}_labels")
        if not all(key in archive for key in keys):
            raise DatasetError(f"{path} has no {keys[0]}/{keys[1]}: it is not in the MedMNIST layout.")
        images, raw = archive[keys[0]], archive[keys[1]]
        # The class count comes from every split: a split that happens to lack the top class has it still.
        every_label = [archive[f"{name}_labels"].reshape(-1) for name in SPLITS if f"{name}_labels" in archive]
    raw = raw.reshape(len(raw), -1)
    if raw.shape[1] == 1:  # one class index per image
        count = len(classes) if classes else int(max(labels.max(initial=0) for labels in every_label)) + 1
        labels = np.eye(count, dtype=np.float32)[raw[:, 0].astype(int)]
        task = "multi-class"
    else:
        count, labels, task = raw.shape[1], raw.astype(np.float32), "multi-label"
    names = tuple(classes) if classes else tuple(f"class {i}" for i in range(count))
    return LabelledImages(list(images), labels, names, task, f"{Path(path).name} {split}", split)


def image_folder(root: Path | str, split: str) -> LabelledImages:
    root = Path(root)
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    if len(classes) < 2:
        raise DatasetError(f"{root} needs at least two class sub-folders; it has {len(classes)}.")
    files = [(f, i) for i, name in enumerate(classes) for f in sorted((root / name).rglob("*")) if f.is_file()]
    chosen = [(f, i) for f, i in files if _split_of(f.relative_to(root)) == split]
    images = _read_images([f for f, _ in chosen])
    labels = np.eye(len(classes), dtype=np.float32)[[i for _, i in chosen]].reshape(len(chosen), len(classes))
    return LabelledImages(images, labels, classes, "multi-class", f"{root.name} {split}", split)


def manifest(csv_path: Path | str, split: str) -> LabelledImages:
    csv_path = Path(csv_path)
    try:
        with csv_path.open(newline="") as handle:
            rows = [row for row in csv.reader(handle) if row and not row[0].startswith("#")]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"{csv_path} cannot be read as a CSV manifest ({error}).") from None
    if rows and rows[0][0].strip().lower() == "path":
        rows = rows[1:]
    rows = [[cell.strip() for cell in row if cell.strip()] for row in rows]
    if bad := [n for n, row in enumerate(rows, start=2) if len(row) < 2]:
        raise DatasetError(f"{csv_path} line {bad[0]} has no label: each row is path,label[,label...].")
    classes = tuple(sorted({label for row in rows for label in row[1:]}))
    task = "multi-label" if any(len(row) > 2 for row in rows) else "multi-class"
    chosen = [row for row in rows if _split_of(Path(row[0])) == split]
    labels = np.zeros((len(chosen), len(classes)), dtype=np.float32)
    for n, row in enumerate(chosen):
        labels[n, [classes.index(label) for label in row[1:]]] = 1.0
    images = _read_images([csv_path.parent / row[0] for row in chosen])
    return LabelledImages(images, labels, classes, task, f"{csv_path.name} {split}", split)


def _split_of(relative_path: Path) -> str:
    """ "test", "val" or "train", from a hash of the path: stable as files are added, and independent of them."""
    return public.hashed_split(relative_path.as_posix(), TEST_SHARE, VALIDATION_SHARE)


def _read_images(paths: list[Path]) -> ImageFiles:
    return ImageFiles(paths)


class ImageFiles(Sequence[np.ndarray]):
    """Files' model pixels, each read when it is asked for: a set of 10⁵ radiographs is never whole in memory
    (training keeps each one's model input, 64 KB at 128 px, where a 2,500 px film's pixels take 12 MB). A file
    that cannot be read is a DatasetError naming it, when it is reached."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...
    @overload
    def __getitem__(self, index: slice) -> list[np.ndarray]: ...
    def __getitem__(self, index: int | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        path = self.paths[index]
        try:
            return load_scan(path).model_pixels()
        except ScanError as error:
            raise DatasetError(f"{path}: {error}") from None
