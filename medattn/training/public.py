"""Public chest radiograph datasets, read in the layouts they are published in.

**NIH ChestX-ray14** (Wang et al., CVPR 2017; the NIH Clinical Center's release at
https://nihcc.app.box.com/v/ChestXray-NIHCC, mirrored on Kaggle as nih-chest-xrays/data), a folder holding:

- ``Data_Entry_2017.csv`` (or the 2020 release's ``Data_Entry_2017_v2020.csv``): one row per image, header
  ``Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,
  OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],``; ``Finding Labels`` holds the findings joined by
  ``|``, or ``No Finding``;
- ``train_val_list.txt`` and ``test_list.txt``: the official split, by patient, one image name per line;
- ``BBox_List_2017.csv``: 984 boxes for 8 findings, ``Image Index,Finding Label,Bbox [x,y,w,h]`` in the 1024 px
  images' pixels (it spells Infiltration "Infiltrate");
- the images, ``images/`` or ``images_001/images/`` to ``images_012/images/``: a download of some parts only
  is indexed as far as it goes, and says how many listed images it lacks.

The official test list is the test split; the validation split is a share of the official train-and-validation
patients, chosen by a hash of the patient: no patient is ever in two splits.

**CheXpert** (Irvin et al., AAAI 2019; Stanford AIMI's release, full or "-small"), a folder holding ``train.csv``
and ``valid.csv``, header ``Path,Sex,Age,Frontal/Lateral,AP/PA`` and then its 14 observations, each 1.0
(positive), 0.0 (negative), -1.0 (uncertain) or empty (not mentioned); ``Path`` starts with the folder's own name
(``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg``). Its 13 observations other than "No Finding"
are the classes. Uncertain labels follow a stated policy (``UNCERTAIN``: as negative by default, or as positive,
the paper's U-Zeros and U-Ones); frontal views only by default. The official validation set (valid.csv, labelled by
a consensus of radiologists; the test set is not public) is the test split, and a tenth of train.csv's patients,
by a hash of the patient, the validation split.

**RSNA Pneumonia Detection Challenge** (Shih et al., Radiology: AI 2019; Kaggle, 2018), a folder holding
``stage_2_train_labels.csv`` (``patientId,x,y,width,height,Target``: a row per box of lung opacity, or one row with
Target 0 and no box) and the DICOM files ``stage_2_train_images/{patientId}.dcm``. One class, "Lung Opacity", with
its boxes. Its own test images carry no labels, so its labelled images are split three ways by a hash of the
patientId (each names one patient's one study), 70 / 15 / 15.

**VinDr-CXR** (Nguyen et al., Scientific Data 2022; PhysioNet's release 1.0.0), a folder holding
``annotations/image_labels_train.csv`` (``image_id,rad_id,`` then its 28 labels ending in ``No finding``, each 0 or
1: a row per reading, three radiologists per training image), ``annotations/image_labels_test.csv`` (the same
labels without ``rad_id``: a consensus of five radiologists), ``annotations/annotations_{train,test}.csv``
(``image_id,rad_id,class_name,x_min,y_min,x_max,y_max``: a row per box, empty corners for "No finding") and the
DICOM files ``train/{image_id}.dicom`` and ``test/{image_id}.dicom``. The classes are the label columns other than
"No finding", as the training file's header names them (the test file spells "Other diseases" "Other disease").
A training image has a finding where most of its readers marked it (``READERS_AGREEING``); the test images'
consensus is the test split, and a tenth of the training images, by a hash of the image (each is one patient's one
study), the validation split. Every reader's boxes are kept.

**SIIM-ACR Pneumothorax Segmentation** (Kaggle, 2019; its stage 1 release), a folder holding ``train-rle.csv``
(header ``ImageId, EncodedPixels``: a row per pneumothorax outline, several for one image where it has several, or
one row of ``-1`` for an image without) and the DICOM files ``dicom-images-train/{study}/{series}/{ImageId}.dcm``.
One class, "Pneumothorax", with its outlines, run-length encoded as the challenge's ``mask_functions.py`` reads
them (``Outline``). Its test images carry no labels, and the listing names no patient, so its labelled images are
split three ways by a hash of the image, 70 / 15 / 15.

The index holds paths, not pixels, so a dataset of 10⁵ films is indexed in seconds and read as it is used.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from medattn.errors import DatasetError
from medattn.model.preprocessing import Letterbox

NIH_FINDINGS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
    "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
)  # fmt: skip
NO_FINDING = "No Finding"
NIH_HEADER = ("Image Index", "Finding Labels", "Follow-up #", "Patient ID")  # how each Data_Entry file begins
BOX_SPELLINGS = {"Infiltrate": "Infiltration"}  # BBox_List_2017.csv's names where Data_Entry's differ
VALIDATION_SHARE = 0.1  # of the official train-and-validation patients
TEST_SHARE = 0.15  # of a dataset's patients where it has no labelled test set of its own; as many validate
RSNA_LABELS = "stage_2_train_labels.csv"
RSNA_HEADER = ("patientId", "x", "y", "width", "height", "Target")
RSNA_CLASS = "Lung Opacity"
SIIM_LABELS = "train-rle.csv"
SIIM_HEADER = ("ImageId", "EncodedPixels")
SIIM_CLASS = "Pneumothorax"
SIIM_SIZE = 1024  # every image of the challenge is 1024 x 1024; its outlines are encoded over that
CHEXPERT_HEADER = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")
CHEXPERT_OBSERVATIONS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
    "Support Devices",
)  # fmt: skip
CHEXPERT_FINDINGS = CHEXPERT_OBSERVATIONS[1:]
UNCERTAIN = {"zeros": 0.0, "ones": 1.0}  # what an uncertain (-1.0) label is taken as
UNCERTAIN_POLICIES = tuple(UNCERTAIN)
CHEXPERT_VALUES = {"1.0": 1.0, "1": 1.0, "0.0": 0.0, "0": 0.0, "": 0.0}  # an empty cell: not mentioned
VINDR_LABELS = "annotations/image_labels_{}.csv"
VINDR_BOXES = "annotations/annotations_{}.csv"
VINDR_BOX_HEADER = ("image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max")
VINDR_SPELLINGS = {"Other disease": "Other diseases"}  # the test file's names where the training file's differ
READERS_AGREEING = 0.5  # a training image has a finding where more than this share of its readers marked it


@dataclass(frozen=True)
class Box:
    """A finding's box in the image's pixels: (x, y) its top left corner."""

    finding: str
    x: float
    y: float
    width: float
    height: float

    def on_input(self, letterbox: Letterbox) -> np.ndarray:
        """Where the box lies on the image's model input: (S, S) bool, every input pixel it covers any part of (a
        box narrower than a pixel still marks one)."""
        region = np.zeros((letterbox.size, letterbox.size), dtype=bool)
        scale_x, scale_y = letterbox.inner_width / letterbox.width, letterbox.inner_height / letterbox.height
        left, top = letterbox.left + self.x * scale_x, letterbox.top + self.y * scale_y
        right, bottom = left + self.width * scale_x, top + self.height * scale_y
        # Clipped at 0: a box drawn past the image's top or left edge would otherwise slice from the far side.
        rows = slice(max(0, int(np.floor(top))), int(np.ceil(bottom)))
        columns = slice(max(0, int(np.floor(left))), int(np.ceil(right)))
        region[rows, columns] = True
        return region


@dataclass(frozen=True)
class Outline:
    """A finding's mask as SIIM-ACR encodes it over its ``width`` x ``height`` image: pairs of (start, length)
    whose starts count from the end of the run before, over the pixels taken column by column, as the challenge's
    own ``mask_functions.rle2mask`` reads them (``mask.reshape(width, height).T``)."""

    finding: str
    runs: tuple[int, ...]
    width: int
    height: int

    @classmethod
    def parse(cls, finding: str, encoded: str, width: int, height: int) -> Outline:
        """The outline ``encoded`` describes; a ValueError where it is not pairs of whole numbers that stay inside
        the image."""
        runs = tuple(int(cell) for cell in encoded.split())
        ends = np.cumsum(runs)  # each run's start and end, counted from the first pixel
        if not runs or len(runs) % 2 or min(runs) < 0 or min(runs[1::2]) < 1 or ends[-1] > width * height:
            raise ValueError(encoded)
        return cls(finding, runs, width, height)

    def pixels(self) -> np.ndarray:
        """The mask, (height, width) bool."""
        flat = np.zeros(self.width * self.height, dtype=bool)
        ends = np.cumsum(self.runs)
        for start, end in zip(ends[0::2], ends[1::2], strict=True):
            flat[start:end] = True
        return flat.reshape(self.width, self.height).T

    def on_input(self, letterbox: Letterbox) -> np.ndarray:
        """Where the mask lies on the image's model input: (S, S) bool, every input pixel it covers any part of."""
        region = np.zeros((letterbox.size, letterbox.size), dtype=bool)
        covered = cv2.resize(self.pixels().astype(np.float32), (letterbox.inner_width, letterbox.inner_height),
                             interpolation=cv2.INTER_AREA) > 0  # fmt: skip
        region[letterbox.inner] = covered
        return region


Region = Box | Outline  # where a dataset's readers put a finding


@dataclass(frozen=True)
class Record:
    """One image of a dataset: where it is, the findings it has, whose it is and which split it belongs to."""

    path: Path
    findings: tuple[str, ...]
    patient: str
    split: str  # "train", "val" or "test"
    view: str  # "PA", "AP", ...
    regions: tuple[Region, ...] = ()  # where its readers put its findings: boxes, or SIIM-ACR's outlines


@dataclass(frozen=True)
class DatasetIndex:
    """A dataset's images as records, and what its listing named that its folder lacks."""

    name: str
    classes: tuple[str, ...]
    records: tuple[Record, ...]
    absent: int  # images listed but not found under the folder

    def split(self, name: str) -> list[Record]:
        return [record for record in self.records if record.split == name]

    def labels(self, records: list[Record]) -> np.ndarray:
        """float32 (N, classes): 1 where the record has the finding."""
        labels = np.zeros((len(records), len(self.classes)), dtype=np.float32)
        for row, record in enumerate(records):
            labels[row, [self.classes.index(finding) for finding in record.findings]] = 1.0
        return labels


def is_nih_chestxray14(folder: Path) -> bool:
    return folder.is_dir() and _data_entry(folder) is not None


def nih_chestxray14(folder: Path | str) -> DatasetIndex:
    """NIH ChestX-ray14 in ``folder``, as published (see the module's docstring)."""
    folder = Path(folder)
    entries = _data_entry(folder)
    if entries is None:
        raise DatasetError(f"{folder} holds no Data_Entry_2017.csv: it is not NIH ChestX-ray14 as published.")
    official = {name: _image_list(folder / f"{name}_list.txt") for name in ("train_val", "test")}
    if both := official["train_val"] & official["test"]:
        raise DatasetError(f"{sorted(both)[0]} is in both train_val_list.txt and test_list.txt.")
    boxes = _boxes(folder / "BBox_List_2017.csv")
    found = {path.name: path for path in folder.glob("images*/**/*.png")}
    records, absent, patients_in = [], 0, {}
    for line, row in _rows(entries):
        image, findings, patient, view = row[0], _findings(entries, line, row[1]), row[3].strip(), row[6].strip()
        if not patient:
            raise DatasetError(f"{entries.name} line {line}: no Patient ID.")
        official_split = (
            "test" if image in official["test"] else "train_val" if image in official["train_val"] else None
        )
        if official_split is None:
            raise DatasetError(
                f"{entries.name} line {line}: {image} is in neither train_val_list.txt nor test_list.txt."
            )
        if patients_in.setdefault(patient, official_split) != official_split:
            raise DatasetError(f"{entries.name} line {line}: patient {patient} has images in both official splits.")
        if image not in found:
            absent += 1
            continue
        split = "test" if official_split == "test" else _train_or_validation(patient)
        records.append(Record(found[image], findings, patient, split, view, boxes.get(image, ())))
    if not records:
        raise DatasetError(f"None of the {absent} images {entries.name} lists is under {folder}/images*/.")
    return DatasetIndex("NIH ChestX-ray14", NIH_FINDINGS, tuple(records), absent)


def open_index(folder: Path, uncertain: str = "zeros") -> DatasetIndex | None:
    """The public dataset in ``folder``, indexed, or None where it holds none this module reads; CheXpert's
    uncertain labels as ``uncertain`` says (``UNCERTAIN``)."""
    if not folder.is_dir():
        return None
    if is_nih_chestxray14(folder):
        return nih_chestxray14(folder)
    if is_chexpert(folder):
        return chexpert(folder, uncertain)
    if (folder / RSNA_LABELS).is_file():
        return rsna_pneumonia(folder)
    if (folder / VINDR_LABELS.format("train")).is_file():
        return vindr_cxr(folder)
    if (folder / SIIM_LABELS).is_file():
        return siim_acr(folder)
    return None


def siim_acr(folder: Path | str) -> DatasetIndex:
    """SIIM-ACR Pneumothorax Segmentation's labelled images in ``folder`` (see the module's docstring)."""
    folder = Path(folder)
    header, rows = _csv_rows(folder / SIIM_LABELS)
    if header != SIIM_HEADER:
        raise DatasetError(f"{SIIM_LABELS} does not have the challenge's header ({', '.join(SIIM_HEADER)}).")
    outlines: dict[str, list[Outline]] = {}
    without: set[str] = set()  # the images listed with -1: no pneumothorax
    for line, row in rows:
        image, encoded = (row[0].strip(), row[1].strip()) if len(row) == 2 else ("", "")
        if not image or not encoded:
            raise DatasetError(f"{SIIM_LABELS} line {line}: not an ImageId and its EncodedPixels.")
        drawn = outlines.setdefault(image, [])
        if (encoded == "-1" and drawn) or (encoded != "-1" and image in without):
            raise DatasetError(f"{SIIM_LABELS} line {line}: {image} has both outlines and a row of -1.")
        if encoded == "-1":
            without.add(image)
            continue
        try:
            drawn.append(Outline.parse(SIIM_CLASS, encoded, SIIM_SIZE, SIIM_SIZE))
        except ValueError:
            raise DatasetError(
                f"{SIIM_LABELS} line {line}: EncodedPixels are not pairs of whole numbers (start, length) inside a "
                f"{SIIM_SIZE} x {SIIM_SIZE} image."
            ) from None
    found = {path.stem: path for path in (folder / "dicom-images-train").rglob("*.dcm")}
    records = []
    for image, drawn in outlines.items():
        if image in found:
            split = hashed_split(f"image:{image}", TEST_SHARE, TEST_SHARE)
            records.append(Record(found[image], (SIIM_CLASS,) if drawn else (), image, split, "", tuple(drawn)))
    if not records:
        raise DatasetError(
            f"None of the {len(outlines)} images {SIIM_LABELS} lists is under {folder}/dicom-images-train/."
        )
    return DatasetIndex("SIIM-ACR Pneumothorax", (SIIM_CLASS,), tuple(records), len(outlines) - len(records))


def vindr_cxr(folder: Path | str) -> DatasetIndex:
    """VinDr-CXR in ``folder``, as PhysioNet publishes it (see the module's docstring)."""
    folder = Path(folder)
    classes, records, absent = (), [], 0
    for official in ("train", "test"):
        listing = VINDR_LABELS.format(official)
        header, rows = _csv_rows(folder / listing)
        readers = len(header) > 1 and header[1].lower() == "rad_id"
        names = tuple(VINDR_SPELLINGS.get(name, name) for name in header[1 + readers :])
        if header[:1] != ("image_id",) or names[-1:] != ("No finding",) or (official == "train") != readers:
            raise DatasetError(f"{listing} does not have VinDr-CXR's header (image_id, rad_id, …, No finding).")
        classes = classes or names[:-1]
        if names[:-1] != classes:
            raise DatasetError(f"{listing} names other labels than image_labels_train.csv.")
        votes: dict[str, list[np.ndarray]] = {}
        for line, row in rows:
            if len(row) != len(header):
                raise DatasetError(f"{listing} line {line}: {len(row)} fields, where the header has {len(header)}.")
            try:
                marked = np.array([float(cell) for cell in row[1 + readers :]])[:-1] > 0  # all checked, No finding too
            except ValueError:
                raise DatasetError(f"{listing} line {line}: a label that is not 0 or 1.") from None
            votes.setdefault(row[0].strip(), []).append(marked)
        boxes = _vindr_boxes(folder, official, classes)
        for image, marks in votes.items():
            path = folder / official / f"{image}.dicom"
            if not path.is_file():
                absent += 1
                continue
            agreed = np.mean(marks, axis=0) > READERS_AGREEING
            split = "test" if official == "test" else _train_or_validation(image)
            findings = tuple(name for name, present in zip(classes, agreed, strict=True) if present)
            records.append(Record(path, findings, image, split, "", boxes.get(image, ())))
    if not records:
        raise DatasetError(f"None of the {absent} images VinDr-CXR's label files list is under {folder}/train or test.")
    return DatasetIndex("VinDr-CXR", classes, tuple(records), absent)


def _vindr_boxes(folder: Path, official: str, classes: tuple[str, ...]) -> dict[str, tuple[Box, ...]]:
    """Every reader's boxes per image, as (x, y, width, height); none where the split's box file is absent."""
    listing = VINDR_BOXES.format(official)
    if not (folder / listing).is_file():
        return {}
    header, rows = _csv_rows(folder / listing)
    if header != VINDR_BOX_HEADER:
        raise DatasetError(f"{listing} does not have VinDr-CXR's header ({','.join(VINDR_BOX_HEADER)}).")
    boxes: dict[str, list[Box]] = {}
    for line, row in rows:
        finding = VINDR_SPELLINGS.get(row[2].strip(), row[2].strip()) if len(row) == len(header) else ""
        if finding == "No finding" and not any(cell.strip() for cell in row[3:]):
            continue
        try:
            x_min, y_min, x_max, y_max = (float(cell) for cell in row[3:])
        except ValueError:
            x_min = y_min = x_max = y_max = float("nan")
        if finding not in classes or not (x_max >= x_min and y_max >= y_min):
            raise DatasetError(f"{listing} line {line}: not an image, a reader, one of its findings and a box.")
        boxes.setdefault(row[0].strip(), []).append(Box(finding, x_min, y_min, x_max - x_min, y_max - y_min))
    return {image: tuple(found) for image, found in boxes.items()}


def rsna_pneumonia(folder: Path | str) -> DatasetIndex:
    """The RSNA Pneumonia Detection Challenge's labelled images in ``folder`` (see the module's docstring)."""
    folder = Path(folder)
    header, rows = _csv_rows(folder / RSNA_LABELS)
    if header != RSNA_HEADER:
        raise DatasetError(f"{RSNA_LABELS} does not have the challenge's header ({','.join(RSNA_HEADER)}).")
    targets: dict[str, bool] = {}
    boxes: dict[str, list[Box]] = {}
    for line, row in rows:
        if len(row) != len(RSNA_HEADER) or row[5].strip() not in ("0", "1"):
            raise DatasetError(f"{RSNA_LABELS} line {line}: not a patientId, a box (or none) and a Target of 0 or 1.")
        patient, target = row[0].strip(), row[5].strip() == "1"
        if targets.setdefault(patient, target) != target:
            raise DatasetError(f"{RSNA_LABELS} line {line}: {patient} has rows with Target 0 and Target 1.")
        if target:
            try:
                boxes.setdefault(patient, []).append(Box(RSNA_CLASS, *(float(cell) for cell in row[1:5])))
            except ValueError:
                raise DatasetError(
                    f"{RSNA_LABELS} line {line}: Target 1 with a box that is not four numbers."
                ) from None
    records, absent = [], 0
    for patient, target in targets.items():
        path = folder / "stage_2_train_images" / f"{patient}.dcm"
        if not path.is_file():
            absent += 1
            continue
        records.append(
            Record(
                path,
                (RSNA_CLASS,) if target else (),
                patient,
                hashed_split(f"patient:{patient}", TEST_SHARE, TEST_SHARE),
                "",
                tuple(boxes.get(patient, ())),
            )
        )
    if not records:
        raise DatasetError(f"None of the {absent} images {RSNA_LABELS} lists is in {folder}/stage_2_train_images/.")
    return DatasetIndex("RSNA Pneumonia", (RSNA_CLASS,), tuple(records), absent)


def is_chexpert(folder: Path) -> bool:
    if not all((folder / name).is_file() for name in ("train.csv", "valid.csv")):
        return False
    try:
        with (folder / "train.csv").open(newline="") as handle:
            return tuple(next(csv.reader(handle), [])[: len(CHEXPERT_HEADER)]) == CHEXPERT_HEADER
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"train.csv cannot be read as a CSV file ({error}).") from None


def chexpert(folder: Path | str, uncertain: str = "zeros", frontal_only: bool = True) -> DatasetIndex:
    """CheXpert in ``folder``, as published (see the module's docstring)."""
    folder = Path(folder)
    if uncertain not in UNCERTAIN:
        raise DatasetError(f"unknown policy for uncertain labels {uncertain!r}; choose from {', '.join(UNCERTAIN)}")
    records, absent, patients_in = [], 0, {}
    for listing, official in (("train.csv", "train"), ("valid.csv", "test")):
        header, rows = _csv_rows(folder / listing)
        if header[: len(CHEXPERT_HEADER)] != CHEXPERT_HEADER or header[5:] != CHEXPERT_OBSERVATIONS:
            raise DatasetError(f"{listing} does not have CheXpert's header ({', '.join(CHEXPERT_HEADER)}, …).")
        for line, row in rows:
            if len(row) != len(header):
                raise DatasetError(f"{listing} line {line}: {len(row)} fields, where the header has {len(header)}.")
            relative = Path(row[0].strip())
            patient = next((part for part in relative.parts if part.startswith("patient")), None)
            if patient is None:
                raise DatasetError(f"{listing} line {line}: no patient folder in its Path ({row[0]!r}).")
            if patients_in.setdefault(patient, official) != official:
                raise DatasetError(f"{listing} line {line}: {patient} is in both train.csv and valid.csv.")
            if frontal_only and row[3].strip() != "Frontal":
                continue
            findings = tuple(
                name
                for name, cell in zip(CHEXPERT_OBSERVATIONS[1:], row[6:], strict=True)
                if _chexpert_value(listing, line, name, cell, uncertain)
            )
            path = folder.parent / relative if relative.parts[0] == folder.name else folder / relative
            if not path.is_file():
                absent += 1
                continue
            split = "test" if official == "test" else _train_or_validation(patient)
            records.append(Record(path, findings, patient, split, row[4].strip() or row[3].strip()))
    if not records:
        raise DatasetError(f"None of the {absent} images train.csv and valid.csv list is under {folder}.")
    return DatasetIndex("CheXpert", CHEXPERT_FINDINGS, tuple(records), absent)


def _chexpert_value(listing: str, line: int, name: str, cell: str, uncertain: str) -> bool:
    value = cell.strip()
    if value in ("-1.0", "-1"):
        return bool(UNCERTAIN[uncertain])
    if value not in CHEXPERT_VALUES:
        raise DatasetError(f"{listing} line {line}: {name} is {value!r}, not 1.0, 0.0, -1.0 or empty.")
    return bool(CHEXPERT_VALUES[value])


def _csv_rows(path: Path) -> tuple[tuple[str, ...], list[tuple[int, list[str]]]]:
    """The header's cells, stripped, and the rows after it that hold anything, with their line numbers."""
    try:
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"{path.name} cannot be read as a CSV file ({error}).") from None
    header = tuple(cell.strip() for cell in rows[0]) if rows else ()
    return header, [(line, row) for line, row in enumerate(rows[1:], start=2) if any(cell.strip() for cell in row)]


def _data_entry(folder: Path) -> Path | None:
    for name in ("Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv"):
        if (folder / name).is_file():
            return folder / name
    return None


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """The data rows with their line numbers, after a header that must be NIH's."""
    header, numbered = _csv_rows(path)
    if header[: len(NIH_HEADER)] != NIH_HEADER:
        raise DatasetError(f"{path.name} does not begin with NIH's header ({', '.join(NIH_HEADER)}, …).")
    for line, row in numbered:
        if len(row) < 7:
            raise DatasetError(f"{path.name} line {line}: {len(row)} fields, where each row has at least 7.")
    return numbered


def _findings(path: Path, line: int, cell: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in cell.split("|") if name.strip())
    if names == (NO_FINDING,):
        return ()
    if unknown := [name for name in names if name not in NIH_FINDINGS]:
        raise DatasetError(f"{path.name} line {line}: {unknown[0]!r} is not one of ChestX-ray14's findings.")
    return names


def _image_list(path: Path) -> set[str]:
    try:
        return {line.strip() for line in path.read_text().splitlines() if line.strip()}
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path.name} is needed beside Data_Entry_2017.csv ({error}).") from None


def _boxes(path: Path) -> dict[str, tuple[Box, ...]]:
    """Each image's boxes; none where the file is absent (it covers 880 images of 112,120)."""
    if not path.is_file():
        return {}
    boxes: dict[str, list[Box]] = {}
    for line, row in _csv_rows(path)[1]:
        try:
            numbers = [float(cell) for cell in row[2:6]]
        except ValueError:
            numbers = []
        if len(numbers) != 4:
            raise DatasetError(f"{path.name} line {line}: not an image, a finding and a box's four numbers.")
        image, finding = row[0].strip(), BOX_SPELLINGS.get(row[1].strip(), row[1].strip())
        if finding not in NIH_FINDINGS:
            raise DatasetError(f"{path.name} line {line}: {finding!r} is not one of ChestX-ray14's findings.")
        boxes.setdefault(image, []).append(Box(finding, *numbers))
    return {image: tuple(found) for image, found in boxes.items()}


def hashed_split(key: str, test_share: float, validation_share: float) -> str:
    """ "test", "val" or "train" for ``key`` (a file's path, or a patient), from a hash of it: stable as items are
    added, independent of them, and the same for every image of one patient."""
    position = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") / 2**32
    return "test" if position < test_share else "val" if position < test_share + validation_share else "train"


def _train_or_validation(patient: str) -> str:
    """ "val" for VALIDATION_SHARE of a dataset's patients outside its official test split, else "train"."""
    return hashed_split(f"patient:{patient}", 0.0, VALIDATION_SHARE)
