"""Localisation measured against a public dataset's boxes and outlines (its readers'), as against the benchmark's
masks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from medattn.benchmark import FINDINGS
from medattn.model.preprocessing import Letterbox
from medattn.training.datasets import LabelledImages, synthetic
from medattn.training.evaluate import explanation_quality
from medattn.training.inputs import ModelInputs
from medattn.training.public import Box, Outline


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
