"""Localisation measured against a public dataset's boxes and outlines (its readers'), as against the benchmark's
masks."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medattn.assets import DEFAULT_MODEL_DIR
from medattn.benchmark import FINDINGS
from medattn.cli import main
from medattn.explain import EXPLAINERS
from medattn.model.card import read_card, write_card
from medattn.model.preprocessing import Letterbox
from medattn.screens import model_page
from medattn.training.datasets import LabelledImages, open_dataset, synthetic
from medattn.training.evaluate import explanation_quality
from medattn.training.inputs import ModelInputs
from medattn.training.public import Box, Outline
from tests.training.test_public import BBOX_HEADER, DATA_ENTRY_HEADER


def test_a_box_lands_where_its_image_lies_in_the_model_input():
    letterbox = Letterbox.fit(100, 200, 64)  # a wide image: scaled by 0.32, 16 rows of padding above
    region = Box("Nodule", 100.0, 50.0, 50.0, 25.0).on_input(letterbox) | Box("Nodule", 0, 0, 1, 1).on_input(letterbox)
    rows, columns = np.nonzero(region)
    assert (rows.min(), columns.min()) == (16, 0)  # the second box: narrower than a pixel, still one
    first = region[24:, 10:]  # the first box alone: image rows 50-75 and columns 100-150
    rows, columns = np.nonzero(first)
    assert (rows.min() + 24, rows.max() + 24, columns.min() + 10, columns.max() + 10) == (32, 39, 32, 47)
    past_the_edge = Box("Nodule", -10.0, 0.0, 20.0, 10.0).on_input(Letterbox.fit(100, 100, 100))
    assert past_the_edge[:10, :10].all() and past_the_edge.sum() == 100  # the part inside the image, not wrapped


def boxed(dataset: LabelledImages) -> LabelledImages:
    """The benchmark's cases with each finding's mask replaced by the box around it, as a dataset's reader drew."""
    boxes = []
    for masks in dataset.masks:
        found = []
        for name, mask in zip(FINDINGS, masks, strict=True):
            if mask.any():
                rows, columns = np.nonzero(mask)
                top, left = rows.min(), columns.min()
                found.append(Box(name, float(left), float(top), columns.max() + 1.0 - left, rows.max() + 1.0 - top))
        boxes.append(tuple(found))
    return dataclasses.replace(dataset, masks=None, regions=boxes)


def outlined(dataset: LabelledImages) -> LabelledImages:
    """The benchmark's cases with each finding's mask run-length encoded as SIIM-ACR encodes its outlines: runs
    over the pixels taken column by column, each start counted from the end of the run before."""
    regions = []
    for masks in dataset.masks:
        found = []
        for name, mask in zip(FINDINGS, masks, strict=True):
            if mask.any():
                flat = np.concatenate([[False], mask.T.ravel(), [False]])
                edges = np.flatnonzero(flat[1:] != flat[:-1])  # each run's start and end
                steps = np.diff(np.concatenate([[0], edges]))  # start, length, gap to the next start, length…
                encoded = " ".join(str(step) for step in steps)
                found.append(Outline.parse(name, encoded, mask.shape[1], mask.shape[0]))
        regions.append(tuple(found))
    return dataclasses.replace(dataset, masks=None, regions=regions)


def localisation(predictor, dataset: LabelledImages) -> tuple[str, dict]:
    """The attention's localisation on up to 12 cases per finding, as ``evaluate --explain`` measures it."""
    inputs = ModelInputs(dataset.images, predictor.preprocessing)
    quality = explanation_quality(predictor.model, inputs, dataset, predictor.card.task, 12, methods=("attention",))
    return quality["regions"], quality["methods"]["attention"]["per_class"]


@pytest.mark.slow
def test_boxes_around_the_benchmarks_masks_localise_as_the_masks_do_at_any_size(predictor):
    cases = synthetic(1000, 60, 128, "test")
    regions, by_masks = localisation(predictor, cases)
    boxed_regions, by_boxes = localisation(predictor, boxed(cases))
    outlined_regions, by_outlines = localisation(predictor, outlined(cases))
    assert (regions, boxed_regions, outlined_regions) == ("masks", "boxes", "outlines")
    assert by_outlines == by_masks  # an outline of the mask, decoded and laid on the input, is the mask
    for finding in FINDINGS:  # the same maps: a peak in a mask is in the box around it
        assert by_boxes[finding]["cases"] == by_masks[finding]["cases"] == 12
        assert by_masks[finding]["pointing_game"] <= by_boxes[finding]["pointing_game"]
        assert by_masks[finding]["mass_in_mask"] <= by_boxes[finding]["mass_in_mask"]
    # Drawn at 512 px, boxed in the image's own pixels: the boxes are scaled into the 128 px input.
    _, larger = localisation(predictor, boxed(synthetic(1000, 60, 512, "test")))
    for finding in FINDINGS:
        assert larger[finding]["pointing_game"] == pytest.approx(by_boxes[finding]["pointing_game"], abs=0.1)
        assert larger[finding]["mass_in_mask"] == pytest.approx(by_boxes[finding]["mass_in_mask"], abs=0.1)


def write_nih_from_benchmark(folder: Path, cases: LabelledImages, boxed_too: bool = True) -> Path:
    """The benchmark's cases as a ChestX-ray14 download holds its films: 16-bit PNGs, Data_Entry_2017.csv with
    NIH's names for the findings, every case in test_list.txt, and (``boxed_too``) BBox_List_2017.csv with the box
    around each finding's mask in the image's pixels."""
    images = folder / "images_001" / "images"
    images.mkdir(parents=True)
    entries, boxes = [DATA_ENTRY_HEADER], [BBOX_HEADER]
    for number, (pixels, found) in enumerate(zip(cases.images, boxed(cases).regions, strict=True)):
        name = f"{number + 1:08d}_000.png"
        Image.fromarray(np.round(pixels / pixels.max() * 65535).astype(np.uint16)).save(images / name)
        labels = "|".join(NIH_NAME[box.finding] for box in found) or "No Finding"
        entries.append(f"{name},{labels},0,{number + 1},50,F,PA,128,128,0.143,0.143")
        boxes += [f"{name},{NIH_NAME[b.finding]},{b.x},{b.y},{b.width},{b.height},,," for b in found]
    (folder / "Data_Entry_2017.csv").write_text("\n".join(entries) + "\n")
    (folder / "BBox_List_2017.csv").write_text("\n".join(boxes if boxed_too else boxes[:1]) + "\n")
    (folder / "train_val_list.txt").write_text("")
    (folder / "test_list.txt").write_text("\n".join(f"{n + 1:08d}_000.png" for n in range(len(cases))) + "\n")
    return folder


NIH_NAME = {"nodule": "Nodule", "effusion": "Effusion", "cardiomegaly": "Cardiomegaly"}


@pytest.mark.slow
def test_the_model_is_measured_on_chestxray14s_boxes_and_shown_beside_its_benchmark(tmp_path, predictor, capsys):
    cases = synthetic(1000, 16, 128, "test")
    write_nih_from_benchmark(tmp_path / "nih", cases)
    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, model)
    earlier = dataclasses.replace(predictor.card.metrics.explanations, data="NIH ChestX-ray14 test")
    write_card(predictor.card.with_changes(localisation_elsewhere=(earlier,)), model)  # as a run before left it
    command = ["evaluate", "--model", str(model), "--data", str(tmp_path / "nih"), "--explain", "--explain-cases", "4"]
    assert main([*command, "--methods", "attention", "gradcam", "--add-localisation"]) == 0
    card = read_card(model)
    assert card.metrics == predictor.card.metrics  # the benchmark's figures are kept
    (elsewhere,) = card.localisation_elsewhere  # the earlier measurement of the same data is replaced
    assert (elsewhere.data, elsewhere.regions, set(elsewhere.methods)) == (
        "NIH ChestX-ray14 test",
        "boxes",
        {"attention", "gradcam"},
    )
    # The same films, read from the same PNGs, measured in the model's own classes against the benchmark's masks:
    # NIH's names and column order (Cardiomegaly, Effusion, ..., Nodule) reach the model's findings, so each
    # finding's maps are measured against its own boxes, which hold its mask.
    films = open_dataset(tmp_path / "nih", "test").images
    on_masks = dataclasses.replace(cases, images=films)
    inputs = ModelInputs(films, predictor.preprocessing)
    measured = explanation_quality(predictor.model, inputs, on_masks, predictor.card.task, 4, methods=("attention",))
    by_masks = measured["methods"]["attention"]["per_class"]
    by_boxes = elsewhere.methods["attention"].per_class
    assert set(by_boxes) == set(FINDINGS)
    for finding in FINDINGS:
        assert by_boxes[finding]["cases"] == by_masks[finding]["cases"] > 0
        assert by_boxes[finding]["pointing_game"] >= by_masks[finding]["pointing_game"]
        assert by_boxes[finding]["mass_in_mask"] >= by_masks[finding]["mass_in_mask"]
        assert 0 <= by_boxes[finding]["otsu_iou"] <= 1
    table = model_page.localisation_elsewhere(card)
    attention = [i for i, method in enumerate(table["Method"]) if method == EXPLAINERS["attention"].title]
    beside = [table["Measured on"][i] for i in attention[:2]]
    assert beside == ["synthetic seed 1000 (masks)", "NIH ChestX-ray14 test (boxes)"]
    assert table["Pointing ↑"][attention[1]] == f"{by_boxes[FINDINGS[0]]['pointing_game']:.2f}"
    capsys.readouterr()
    unboxed = write_nih_from_benchmark(tmp_path / "unboxed", cases, boxed_too=False)
    assert main(["evaluate", "--model", str(model), "--data", str(unboxed), "--explain", "--add-localisation"]) == 2
    assert "NIH ChestX-ray14 test has no boxes, outlines or masks" in capsys.readouterr().err
    assert read_card(model) == card  # nothing lost
