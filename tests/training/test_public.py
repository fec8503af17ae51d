"""Public datasets in their published layouts, from small fixtures written here in exactly those formats (headers,
separators, file names), with synthetic pixels."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medattn.errors import DatasetError
from medattn.model.preprocessing import Letterbox
from medattn.training.datasets import open_dataset
from medattn.training.public import (
    CHEXPERT_FINDINGS,
    NIH_FINDINGS,
    UNCERTAIN,
    Outline,
    chexpert,
    nih_chestxray14,
    rsna_pneumonia,
    siim_acr,
    vindr_cxr,
)
from tests.conftest import PYDICOM_FILES

# Data_Entry_2017.csv's header as NIH publishes it: its bracketed names hold commas, and it ends with one.
DATA_ENTRY_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],"
)
BBOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"
# (image, findings, patient, official list): 6 patients, some with several images.
NIH_ROWS = [
    ("00000001_000.png", "Cardiomegaly", 1, "train_val"),
    ("00000001_001.png", "Cardiomegaly|Emphysema", 1, "train_val"),
    ("00000002_000.png", "No Finding", 2, "train_val"),
    ("00000003_000.png", "Hernia|Infiltration", 3, "test"),
    ("00000003_001.png", "No Finding", 3, "test"),
    ("00000004_000.png", "Mass|Nodule", 4, "train_val"),
    ("00000005_000.png", "Effusion", 5, "train_val"),
    ("00000006_000.png", "Pleural_Thickening", 6, "train_val"),
]


def write_nih(folder: Path, rows=NIH_ROWS, absent: tuple[str, ...] = ()) -> Path:
    """A ChestX-ray14 folder as its parts unpack: the CSVs, the official lists, images_001/images/*.png."""
    images = folder / "images_001" / "images"
    images.mkdir(parents=True)
    lines = [DATA_ENTRY_HEADER]
    for number, (image, findings, patient, _) in enumerate(rows):
        lines.append(f"{image},{findings},{number % 3},{patient},{40 + number},M,PA,2500,2048,0.143,0.143")
        if image not in absent:
            pixels = np.random.default_rng(number).integers(0, 255, (64, 64), dtype=np.uint8)
            Image.fromarray(pixels).save(images / image)
    (folder / "Data_Entry_2017.csv").write_text("\n".join(lines) + "\n")
    for listed in ("train_val", "test"):
        names = [image for image, _, _, official in rows if official == listed]
        (folder / f"{listed}_list.txt").write_text("\n".join(names) + "\n")
    (folder / "BBox_List_2017.csv").write_text(
        f"{BBOX_HEADER}\n00000003_000.png,Infiltrate,225.08,547.01,86.77,79.18,,,\n"
        "00000004_000.png,Nodule,600.5,300.25,40.0,38.5,,,\n"
    )
    return folder


def test_chestxray14_is_read_as_published_with_its_patient_level_split(tmp_path):
    index = nih_chestxray14(write_nih(tmp_path))
    assert index.classes == NIH_FINDINGS and len(index.records) == len(NIH_ROWS) and index.absent == 0
    by_name = {record.path.name: record for record in index.records}
    assert by_name["00000001_001.png"].findings == ("Cardiomegaly", "Emphysema")
    assert by_name["00000002_000.png"].findings == ()  # "No Finding"
    assert [r.path.name for r in index.split("test")] == ["00000003_000.png", "00000003_001.png"]  # the official list
    (box,) = by_name["00000003_000.png"].regions
    assert box.finding == "Infiltration" and (box.x, box.y, box.width, box.height) == (225.08, 547.01, 86.77, 79.18)
    patients = {split: {r.patient for r in index.split(split)} for split in ("train", "val", "test")}
    assert not (
        patients["train"] & patients["val"]
        or patients["train"] & patients["test"]
        or patients["val"] & patients["test"]
    )
    assert sum(map(len, patients.values())) == 6
    labels = index.labels(index.split("test"))
    assert labels.shape == (2, 14) and labels[0, NIH_FINDINGS.index("Hernia")] == 1 and labels[1].sum() == 0


def test_a_download_of_some_parts_is_indexed_as_far_as_it_goes_and_says_what_it_lacks(tmp_path):
    index = nih_chestxray14(write_nih(tmp_path, absent=("00000005_000.png", "00000006_000.png")))
    assert index.absent == 2 and len(index.records) == len(NIH_ROWS) - 2


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        ([*NIH_ROWS[:2], ("00000009_000.png", "Cardiomegaly|Tuberculosis", 9, "train_val")], "line 4: 'Tuberculosis'"),
        ([*NIH_ROWS[:2], ("00000003_002.png", "No Finding", 3, "train_val"), *NIH_ROWS[3:5]], "patient 3"),
    ],
)
def test_a_malformed_listing_is_refused_naming_the_row(tmp_path, rows, says):
    with pytest.raises(DatasetError, match=says):
        nih_chestxray14(write_nih(tmp_path, rows))


def test_a_short_row_an_unlisted_image_and_a_wrong_header_are_refused_naming_them(tmp_path):
    folder = write_nih(tmp_path)
    entries = folder / "Data_Entry_2017.csv"
    text = entries.read_text()
    entries.write_text(text + "00000007_000.png,Mass,0\n")
    with pytest.raises(DatasetError, match=r"line 10: 3 fields"):
        nih_chestxray14(folder)
    entries.write_text(text + "00000007_000.png,Mass,0,7,50,F,AP,2500,2048,0.143,0.143\n")
    with pytest.raises(DatasetError, match=r"line 10: 00000007_000\.png is in neither train_val_list\.txt"):
        nih_chestxray14(folder)
    entries.write_text(text.replace("Patient ID", "Patient"))
    with pytest.raises(DatasetError, match="does not begin with NIH's header"):
        nih_chestxray14(folder)


def test_training_opens_chestxray14_by_its_folder(tmp_path):
    test_set = open_dataset(write_nih(tmp_path), "test")
    assert test_set.task == "multi-label" and test_set.classes == NIH_FINDINGS and len(test_set) == 2
    assert test_set.images[0].shape == (64, 64) and test_set.source == "NIH ChestX-ray14 test"


CHEXPERT_HEADER = (
    "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,"
    "Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,Fracture,"
    "Support Devices"
)
# (listing, patient, study/view, frontal or lateral, {observation: value as written})
CHEXPERT_ROWS = [
    ("train", 1, "study1/view1_frontal.jpg", "Frontal", {"Cardiomegaly": "1.0", "Edema": "-1.0"}),
    ("train", 1, "study1/view2_lateral.jpg", "Lateral", {"Cardiomegaly": "1.0"}),
    ("train", 2, "study1/view1_frontal.jpg", "Frontal", {"No Finding": "1.0", "Pleural Effusion": "0.0"}),
    ("train", 3, "study2/view1_frontal.jpg", "Frontal", {"Pleural Effusion": "1.0", "Support Devices": "1.0"}),
    ("valid", 64541, "study1/view1_frontal.jpg", "Frontal", {"Atelectasis": "1.0"}),
]


def write_chexpert(folder: Path, rows=CHEXPERT_ROWS) -> Path:
    """CheXpert-v1.0-small as it unpacks: train.csv, valid.csv, and Paths that begin with the folder's name."""
    observations = CHEXPERT_HEADER.split(",")[5:]
    lines = {"train": [CHEXPERT_HEADER], "valid": [CHEXPERT_HEADER]}
    for number, (listing, patient, view, frontal, values) in enumerate(rows):
        relative = Path(folder.name) / listing / f"patient{patient:05d}" / view
        image = folder.parent / relative
        image.parent.mkdir(parents=True, exist_ok=True)
        pixels = np.random.default_rng(number).integers(0, 255, (48, 40), dtype=np.uint8)
        Image.fromarray(pixels).save(image, format="JPEG")
        cells = [values.get(name, "") for name in observations]
        lines[listing].append(
            ",".join([relative.as_posix(), "Female", "68", frontal, "AP" if frontal == "Frontal" else "", *cells])
        )
    for listing, text in lines.items():
        (folder / f"{listing}.csv").write_text("\n".join(text) + "\n")
    return folder


def test_chexpert_is_read_as_published_with_its_uncertain_labels_by_a_stated_policy(tmp_path):
    folder = write_chexpert(tmp_path / "CheXpert-v1.0-small")
    index = chexpert(folder)
    assert index.classes == CHEXPERT_FINDINGS and len(index.records) == 4  # frontal views only
    first = next(r for r in index.records if r.patient == "patient00001")
    assert first.findings == ("Cardiomegaly",)  # uncertain Edema taken as negative by default (U-Zeros)
    assert chexpert(folder, uncertain="ones").records[0].findings == ("Cardiomegaly", "Edema")  # U-Ones
    assert len(chexpert(folder, frontal_only=False).records) == 5
    assert [r.patient for r in index.split("test")] == ["patient64541"]  # valid.csv, the official validation set
    patients = {split: {r.patient for r in index.split(split)} for split in ("train", "val", "test")}
    assert not (patients["train"] & patients["val"]) and sum(map(len, patients.values())) == 4
    assert open_dataset(folder, "test").source == "CheXpert test"
    edema = CHEXPERT_FINDINGS.index("Edema")  # patient 1's uncertain Edema, as train and evaluate's flag asks
    uncertain = {p: sum(open_dataset(folder, s, p).labels[:, edema].sum() for s in ("train", "val")) for p in UNCERTAIN}
    assert uncertain == {"zeros": 0, "ones": 1}
    with pytest.raises(DatasetError, match="unknown policy"):
        chexpert(folder, uncertain="ignore")


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (
            [*CHEXPERT_ROWS[:2], ("train", 2, "study1/view1_frontal.jpg", "Frontal", {"Edema": "2.0"})],
            "line 4: Edema is '2.0'",
        ),
        ([*CHEXPERT_ROWS, ("valid", 3, "study9/view1_frontal.jpg", "Frontal", {})], "patient00003 is in both"),
    ],
)
def test_a_malformed_chexpert_listing_is_refused_naming_the_row(tmp_path, rows, says):
    with pytest.raises(DatasetError, match=says):
        chexpert(write_chexpert(tmp_path / "CheXpert-v1.0-small", rows))


RSNA_LABELS = """patientId,x,y,width,height,Target
0004cfab-14fd-4e49-80ba-63a80b6bddd6,,,,,0
00436515-870c-4b36-a041-de91049b9ab4,264.0,152.0,213.0,379.0,1
00436515-870c-4b36-a041-de91049b9ab4,562.0,152.0,256.0,453.0,1
00704310-78a8-4b38-8475-49f4573b2dbb,323.0,577.0,160.0,104.0,1
00c0b293-48e7-4e16-ac76-9269ba535a62,,,,,0
"""


def copy_dicom(paths: list[Path], source: str = "MR_small.dcm") -> None:
    """One of pydicom's test files at each of ``paths``, its folders made: a dataset's images, by their names."""
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PYDICOM_FILES / source, path)


def write_rsna(folder: Path, labels: str = RSNA_LABELS) -> Path:
    """The challenge's stage 2 layout: the labels CSV, and one DICOM file per patientId (pydicom's MR_small here)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stage_2_train_labels.csv").write_text(labels)
    patients = [line.split(",")[0] for line in labels.splitlines()[1:]]
    copy_dicom([folder / "stage_2_train_images" / f"{patient}.dcm" for patient in patients])
    return folder


def test_rsna_pneumonia_is_read_with_its_boxes_and_split_by_patient(tmp_path):
    index = rsna_pneumonia(write_rsna(tmp_path))
    assert index.classes == ("Lung Opacity",) and len(index.records) == 4 and index.absent == 0
    by_patient = {record.patient: record for record in index.records}
    two = by_patient["00436515-870c-4b36-a041-de91049b9ab4"]
    assert two.findings == ("Lung Opacity",) and [(b.x, b.width) for b in two.regions] == [
        (264.0, 213.0),
        (562.0, 256.0),
    ]
    assert (
        by_patient["0004cfab-14fd-4e49-80ba-63a80b6bddd6"].findings == ()
        and not by_patient["0004cfab-14fd-4e49-80ba-63a80b6bddd6"].regions
    )
    assert {record.split for record in index.records} <= {"train", "val", "test"}
    every = [open_dataset(tmp_path, split) for split in ("train", "val", "test")]
    assert sum(map(len, every)) == 4 and all(s.classes == ("Lung Opacity",) for s in every)


@pytest.mark.parametrize(
    ("labels", "says"),
    [
        (RSNA_LABELS + "0100515c-5204-4f31-98e0-f35e4b00004a,1,2,3,4,2\n", "line 7: not a patientId"),
        (
            RSNA_LABELS + "00704310-78a8-4b38-8475-49f4573b2dbb,,,,,0\n",
            "line 7: 00704310-78a8-4b38-8475-49f4573b2dbb has rows",
        ),
        (RSNA_LABELS.replace("Target", "target"), "does not have the challenge's header"),
    ],
)
def test_a_malformed_rsna_listing_is_refused_naming_the_row(tmp_path, labels, says):
    with pytest.raises(DatasetError, match=says):
        rsna_pneumonia(write_rsna(tmp_path, labels))


# VinDr-CXR's 28 labels as PhysioNet's image_labels_train.csv names them, "No finding" last.
VINDR_LABELS = (
    "Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Clavicle fracture", "Consolidation",
    "Edema", "Emphysema", "Enlarged PA", "ILD", "Infiltration", "Lung Opacity", "Lung cavity", "Lung cyst",
    "Mediastinal shift", "Nodule/Mass", "Pleural effusion", "Pleural thickening", "Pneumothorax",
    "Pulmonary fibrosis", "Rib fracture", "Other lesion", "COPD", "Lung tumor", "Pneumonia", "Tuberculosis",
    "Other diseases", "No finding",
)  # fmt: skip


def vindr_row(image: str, marked: tuple[str, ...], reader: str | None = None) -> str:
    cells = ["1" if name in marked or (name == "No finding" and not marked) else "0" for name in VINDR_LABELS]
    return ",".join([image, *([reader] if reader else []), *cells])


def write_vindr(folder: Path, train_labels: list[str] | None = None) -> Path:
    """VinDr-CXR as PhysioNet's 1.0.0 unpacks: annotations/*.csv, train/*.dicom and test/*.dicom."""
    (folder / "annotations").mkdir(parents=True)
    train_labels = train_labels or [
        vindr_row("9a5094b2563a1ef3ff50dc5c7ff71345", ("Cardiomegaly", "Aortic enlargement"), "R10"),
        vindr_row("9a5094b2563a1ef3ff50dc5c7ff71345", ("Cardiomegaly",), "R8"),
        vindr_row("9a5094b2563a1ef3ff50dc5c7ff71345", ("Cardiomegaly",), "R9"),  # Aortic enlargement: 1 of 3
        vindr_row("47ed17dcb2cbeec15182ed335a8b5a9e", (), "R9"),
        vindr_row("47ed17dcb2cbeec15182ed335a8b5a9e", ("Nodule/Mass",), "R10"),
        vindr_row("47ed17dcb2cbeec15182ed335a8b5a9e", ("Nodule/Mass",), "R11"),
    ]
    header = "image_id,rad_id," + ",".join(VINDR_LABELS)
    (folder / "annotations" / "image_labels_train.csv").write_text("\n".join([header, *train_labels]) + "\n")
    test_header = "image_id," + ",".join(VINDR_LABELS).replace("Other diseases", "Other disease")
    (folder / "annotations" / "image_labels_test.csv").write_text(
        f"{test_header}\n{vindr_row('002a34c58c5b758217ed1f584ccbcfe9', ('Other diseases', 'Pleural effusion'))}\n"
    )
    (folder / "annotations" / "annotations_train.csv").write_text(
        ",".join(("image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max")) + "\n"
        "9a5094b2563a1ef3ff50dc5c7ff71345,R10,Cardiomegaly,691.0,1375.0,1653.0,1831.0\n"
        "9a5094b2563a1ef3ff50dc5c7ff71345,R10,Aortic enlargement,1264.0,743.0,1611.0,1019.0\n"
        "47ed17dcb2cbeec15182ed335a8b5a9e,R9,No finding,,,,\n"
    )
    images = {"9a5094b2563a1ef3ff50dc5c7ff71345": "train", "47ed17dcb2cbeec15182ed335a8b5a9e": "train"}
    images |= {"002a34c58c5b758217ed1f584ccbcfe9": "test"}
    copy_dicom([folder / official / f"{image}.dicom" for image, official in images.items()])
    return folder


def test_vindr_cxr_is_read_with_its_readers_majority_its_consensus_test_set_and_every_box(tmp_path):
    index = vindr_cxr(write_vindr(tmp_path))
    assert index.classes == VINDR_LABELS[:-1] and len(index.records) == 3 and index.absent == 0
    by_image = {record.patient: record for record in index.records}
    heart = by_image["9a5094b2563a1ef3ff50dc5c7ff71345"]
    assert heart.findings == ("Cardiomegaly",)  # three of three; the aorta one of three
    assert [(box.finding, box.x, box.width) for box in heart.regions] == [
        ("Cardiomegaly", 691.0, 962.0), ("Aortic enlargement", 1264.0, 347.0),
    ]  # every reader's box, kept as drawn  # fmt: skip
    assert by_image["47ed17dcb2cbeec15182ed335a8b5a9e"].findings == ("Nodule/Mass",)  # two of three
    test = by_image["002a34c58c5b758217ed1f584ccbcfe9"]
    assert test.split == "test" and test.findings == ("Pleural effusion", "Other diseases")
    assert {heart.split, by_image["47ed17dcb2cbeec15182ed335a8b5a9e"].split} <= {"train", "val"}
    opened = open_dataset(tmp_path, "test")
    assert len(opened) == 1 and opened.labels[0, VINDR_LABELS.index("Pleural effusion")] == 1.0


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        ([vindr_row("a", ("Cardiomegaly",), "R1") + ",0"], "image_labels_train.csv line 2: 31 fields"),
        ([vindr_row("a", (), "R1").replace(",1", ",yes")], "line 2: a label that is not 0 or 1"),
        ([vindr_row("a", ())], "does not have VinDr-CXR's header"),  # a row without its reader: 29 fields
    ],
)
def test_a_malformed_vindr_listing_is_refused_naming_the_row(tmp_path, rows, says):
    folder = write_vindr(tmp_path, rows)
    if "header" in says:
        (folder / "annotations" / "image_labels_train.csv").write_text("image_id," + ",".join(VINDR_LABELS) + "\n")
    with pytest.raises(DatasetError, match=says):
        vindr_cxr(folder)


# train-rle.csv's rows as the challenge's overview shows one (relative run lengths over the pixels taken column by
# column), one image with two outlines, and images without pneumothorax (-1).
SIIM_SHOWN = "1.2.276.0.7230010.3.1.4.8323329.14508.1517875252.443873"
SIIM_ROWS = (
    f"{SIIM_SHOWN},387620 23 996 33 986 43 977 51 968 58 962 65 956 70 952 74 949 76 946 79\n"
    "1.2.276.0.7230010.3.1.4.8323329.1034.1517875166.8504,-1\n"
    "1.2.276.0.7230010.3.1.4.8323329.5597.1517875188.959090,-1\n"
    "1.2.276.0.7230010.3.1.4.8323329.4904.1517875185.355709,100 10 1014 10\n"
    "1.2.276.0.7230010.3.1.4.8323329.4904.1517875185.355709,900000 5\n"
)


def write_siim(folder: Path, rows: str = SIIM_ROWS) -> Path:
    """The stage 1 layout: train-rle.csv, and dicom-images-train/{study}/{series}/{ImageId}.dcm (pydicom's CT here)."""
    (folder / "train-rle.csv").write_text("ImageId, EncodedPixels\n" + rows)
    images = dict.fromkeys(line.split(",")[0] for line in rows.splitlines())
    study, series = "1.2.276.0.7230010.3.1.2.{}", "1.2.276.0.7230010.3.1.3.{}"
    where = [Path(study.format(n), series.format(n), f"{image}.dcm") for n, image in enumerate(images)]
    copy_dicom([folder / "dicom-images-train" / path for path in where], "CT_small.dcm")
    return folder


def test_siim_acr_is_read_with_its_outlines_decoded_as_the_challenges_own_functions_decode_them(tmp_path):
    index = siim_acr(write_siim(tmp_path))
    assert index.classes == ("Pneumothorax",) and len(index.records) == 4 and index.absent == 0
    by_image = {record.patient: record for record in index.records}
    assert [len(by_image[image].regions) for image in by_image] == [1, 0, 0, 2]
    assert [bool(by_image[image].findings) for image in by_image] == [True, False, False, True]
    mask = by_image[SIIM_SHOWN].regions[0].pixels()
    # 387620 = 378 x 1024 + 548: column 378 from row 548, 23 pixels; then 996 on, column 379 from row 543, 33.
    assert mask.shape == (1024, 1024) and mask[548:571, 378].all() and not mask[[547, 571], 378].any()
    assert mask[543:576, 379].all() and not mask[[542, 576], 379].any() and mask.sum() == 572  # the lengths' sum
    tiny = Outline.parse("Pneumothorax", "5 3 2 1", 4, 4).pixels()
    assert sorted(zip(*np.nonzero(tiny), strict=True)) == [(1, 1), (2, 1), (2, 2), (3, 1)]
    on_input = by_image[SIIM_SHOWN].regions[0].on_input(Letterbox.fit(1024, 1024, 128))
    assert np.array_equal(on_input, mask.reshape(128, 8, 128, 8).any(axis=(1, 3)))  # every 8 x 8 block it touches
    every = [open_dataset(tmp_path, split) for split in ("train", "val", "test")]
    assert sum(map(len, every)) == 4 and all(s.classes == ("Pneumothorax",) for s in every)


@pytest.mark.parametrize(
    ("rows", "says"),
    [
        (SIIM_ROWS + f"{SIIM_SHOWN},-1\n", f"line 7: {SIIM_SHOWN} has both outlines and a row of -1"),
        (SIIM_ROWS + "1.2.276.0.7230010.3.1.4.8323329.1034.1517875166.8504,5 5\n", "line 7: .* has both outlines"),
        (SIIM_ROWS + "1.2.276.9,10 20 30\n", "line 7: EncodedPixels are not pairs of whole numbers"),
        (SIIM_ROWS + "1.2.276.9,1048570 10\n", "line 7: EncodedPixels are not pairs of whole numbers"),
        (SIIM_ROWS + "1.2.276.9\n", "line 7: not an ImageId and its EncodedPixels"),
    ],
)
def test_a_malformed_siim_acr_listing_is_refused_naming_the_row(tmp_path, rows, says):
    with pytest.raises(DatasetError, match=says):
        siim_acr(write_siim(tmp_path, rows))
