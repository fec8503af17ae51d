import dataclasses

import numpy as np
import pytest
from PIL import Image

from medattn.training.datasets import DatasetError, LabelledImages, for_model, open_dataset, synthetic
from medattn.training.public import Box


def write_medmnist(path, labels_per_split):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, labels in labels_per_split.items():
        arrays[f"{split}_images"] = rng.integers(0, 255, (len(labels), 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.asarray(labels)
    np.savez_compressed(path, **arrays)


def test_medmnist_multi_class(tmp_path):
    path = tmp_path / "pneumoniamnist.npz"
    write_medmnist(path, {"train": [[0], [1], [1], [2]], "val": [[2]], "test": [[0], [2]]})
    train = open_dataset(path, "train")
    assert train.task == "multi-class" and len(train) == 4
    assert train.labels.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert train.images[0].shape == (28, 28)
    assert open_dataset(path, "test").labels.argmax(axis=1).tolist() == [0, 2]


def test_medmnist_multi_label(tmp_path):
    path = tmp_path / "chestmnist.npz"
    write_medmnist(path, {"train": [[1, 0, 1], [0, 0, 0]], "val": [[0, 1, 0]], "test": [[1, 1, 1]]})
    train = open_dataset(path, "train")
    assert train.task == "multi-label" and train.classes == ("class 0", "class 1", "class 2")
    assert train.labels.tolist() == [[1, 0, 1], [0, 0, 0]]


def test_medmnist_class_count_comes_from_every_split(tmp_path):
    """A split that lacks the top class still has every class: the count is not that split's max + 1."""
    path = tmp_path / "organmnist.npz"
    write_medmnist(path, {"train": [[0], [1], [2], [3]], "val": [[0], [1]], "test": [[2]]})
    for split in ("train", "val", "test"):
        data = open_dataset(path, split)
        assert data.classes == ("class 0", "class 1", "class 2", "class 3") and data.labels.shape[1] == 4, split


def test_medmnist_without_the_official_keys_is_refused(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(DatasetError, match="not in the MedMNIST layout"):
        open_dataset(path, "train")


def write_png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 10), value, dtype=np.uint8)).save(path)


def test_class_folders_split_stably_by_path(tmp_path):
    for name in ("normal", "pneumonia"):
        for i in range(40):
            write_png(tmp_path / name / f"{i:03d}.png", i + 100 * (name == "pneumonia"))
    train, val, test = (open_dataset(tmp_path, split) for split in ("train", "val", "test"))
    assert train.classes == ("normal", "pneumonia") and train.task == "multi-class"
    assert len(train) + len(val) + len(test) == 80 and 0 < len(val) < 30 and 0 < len(test) < 30
    assert open_dataset(tmp_path, "val").labels.tolist() == val.labels.tolist()
    # Held out means held out: no file is both tested on and used to train, select or calibrate.
    pixels = [{image.tobytes() for image in data.images} for data in (train, val, test)]
    assert not pixels[2] & (pixels[0] | pixels[1]) and test.split == "test"


def test_csv_manifest_multi_label(tmp_path):
    rows = ["path,labels"]
    for i in range(30):
        write_png(tmp_path / "img" / f"{i}.png", i)
        rows.append(f"img/{i}.png,effusion" + (",nodule" if i % 3 == 0 else ""))
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    train, val, test = (open_dataset(tmp_path / "manifest.csv", split) for split in ("train", "val", "test"))
    assert train.task == "multi-label" and train.classes == ("effusion", "nodule")
    assert len(train) + len(val) + len(test) == 30 and len(test) > 0
    assert (train.labels[:, 0] == 1).all()


def test_manifest_naming_a_broken_file_says_which(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (tmp_path / "m.csv").write_text("bad.png,a\n")
    errors = []
    for split in ("train", "val", "test"):  # the file belongs to exactly one of them
        try:
            list(open_dataset(tmp_path / "m.csv", split).images)  # read when reached: never all held at once
        except DatasetError as error:
            errors.append(str(error))
    assert len(errors) == 1 and "bad.png" in errors[0]


def test_synthetic_carries_masks():
    data = synthetic(seed=5, count=3, size=64)
    assert data.masks.shape == (3, 3, 64, 64) and data.task == "multi-label"
    assert (data.masks.any(axis=(2, 3)) == data.labels.astype(bool)).all()


def test_a_datasets_classes_are_matched_to_the_models_by_name_in_the_models_order():
    pixels = [np.zeros((8, 8), np.float32)] * 3
    nih = LabelledImages(
        pixels,
        np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], np.float32),
        ("Cardiomegaly", "Effusion", "Hernia", "Nodule"),
        "multi-label",
        "NIH ChestX-ray14 test",
        "test",
        regions=[(Box("Cardiomegaly", 1, 1, 4, 4), Box("Hernia", 0, 0, 2, 2)), (), (Box("Nodule", 2, 2, 1, 1),)],
    )
    names = {"nodule": "Pulmonary nodule", "effusion": "Pleural effusion", "cardiomegaly": "Cardiomegaly"}
    seen = for_model(nih, ("nodule", "effusion", "cardiomegaly", "fracture"), names, "multi-label")
    assert seen.classes == ("nodule", "effusion", "cardiomegaly", "fracture")
    np.testing.assert_array_equal(seen.labels[:, :3], [[0, 0, 1], [0, 1, 0], [1, 0, 0]])
    assert np.isnan(seen.labels[:, 3]).all()  # NIH does not label it: unknown, not absent
    assert seen.regions == [(Box("cardiomegaly", 1, 1, 4, 4),), (), (Box("nodule", 2, 2, 1, 1),)]
    assert for_model(nih, ("effusion",), names, "multi-label").regions is None  # no box of its findings: none
    chexpert = dataclasses.replace(nih, classes=("Enlarged Cardiomediastinum", "Pleural Effusion", "Edema", "Fracture"))
    assert for_model(chexpert, ("effusion",), names, "multi-label").labels.tolist() == [[0], [1], [0]]
    vindr = dataclasses.replace(nih, classes=("Aortic enlargement", "Pleural effusion", "ILD", "Nodule/Mass"))
    assert for_model(vindr, ("nodule",), names, "multi-label").labels.tolist() == [[0], [0], [1]]
    assert for_model(nih, nih.classes, {}, "multi-label") is nih


@pytest.mark.parametrize(
    "classes, task, model, says",
    [
        (
            ("Cardiomegaly", "Effusion"),
            "multi-label",
            ("x", "y"),
            "labels Cardiomegaly, Effusion; the model finds x, y: none",
        ),
        (("Effusion", "Pleural effusion"), "multi-label", ("effusion",), "two of them match effusion"),
        (
            ("Nodule", "Effusion", "Hernia"),
            "multi-class",
            ("nodule", "effusion"),
            "the same classes, each matched once",
        ),
        (("Nodule", "Effusion"), "multi-label", ("nodule", "effusion", "fracture"), "multi-class model or data needs"),
    ],
)
def test_classes_that_cannot_be_matched_one_for_one_are_refused_naming_them(classes, task, model, says):
    data = LabelledImages(
        [np.zeros((8, 8), np.float32)], np.zeros((1, len(classes)), np.float32), classes, task, "d", "test"
    )
    model_task = "multi-class" if "fracture" in model else "multi-label"
    with pytest.raises(DatasetError, match=says):
        for_model(data, model, {"effusion": "Pleural effusion"}, model_task)
