"""What the reading viewer is handed (medattn.screens.viewer), in milliseconds, on real files."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from medattn import load_scan
from medattn.assets import all_samples
from medattn.explain.overlay import layers
from medattn.review.marks import POINT_RADIUS, Mark
from medattn.scan.frames import exact_values
from medattn.screens.viewer import STACK_BYTES, Marking, ViewerImage, said_opacity


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([0, 255], np.uint8),
        ([0, 256], np.uint16),
        ([-1024, 3071], np.int16),  # CT in HU
        ([0, 70000], np.float32),  # beyond every 16-bit type
        ([0.5, 2], np.float32),  # not whole
        ([np.nan, 1], np.float32),  # NaN is kept, as float
        ([], np.uint8),
    ],
)
def test_exact_values_takes_the_narrowest_type_that_holds_every_value(values, kind):
    pixels = np.asarray(values, dtype=np.float32)
    held = exact_values(pixels)
    assert held.dtype == kind
    np.testing.assert_array_equal(held.astype(np.float32), pixels)  # exactly, NaN included


def test_a_scan_whose_frames_fit_goes_whole_and_one_that_does_not_goes_a_frame_at_a_time():
    mr = load_scan(all_samples()["real MR, 10 frames, JPEG-LS"])
    whole = ViewerImage.of(mr, 6, "key")
    assert (whole.first, whole.frame, whole.shape) == (0, 6, (10, 64, 64))
    values = np.frombuffer(whole.packed, np.dtype(whole.dtype).newbyteorder("<")).reshape(whole.shape)
    np.testing.assert_array_equal(values[6], mr.frame(6))
    assert 64 * 64 * 4 * mr.frame_count <= STACK_BYTES
    mr.frame_count = STACK_BYTES // (64 * 64 * 4) + 1  # as if it were a cine too long to send whole
    one = ViewerImage.of(mr, 6, "key")
    assert (one.first, one.shape, one.scan_id) == (6, (1, 64, 64), "key-6")


def test_colour_goes_as_the_app_shows_it_and_a_picture_as_it_is():
    ultrasound = load_scan(all_samples()["real ultrasound, 2 frames, RLE"])
    image = ViewerImage.of(ultrasound, 0, "key")
    arguments = image.arguments()
    assert arguments["colour"] and arguments["window"] == [127.5, 255.0] and image.dtype == "uint8"
    picture = np.arange(256, dtype=np.uint8).reshape(16, 16)
    shown = ViewerImage.of_picture(picture, "reading").arguments()
    assert shown["pixels"] == picture.tobytes() and shown["window"] == [127.5, 255.0] and shown["frames"] == 1
    assert shown["overlay"] is None and shown["overlay_checksum"] is None


@pytest.mark.parametrize(("held", "sent"), [(None, True), ("another scan", True), ("reading", False)])
def test_a_scans_values_are_not_sent_to_a_viewer_that_holds_them(held, sent):
    picture = np.arange(256, dtype=np.uint8).reshape(16, 16)
    arguments = ViewerImage.of_picture(picture, "reading").arguments(held)
    assert (arguments["pixels"] == picture.tobytes()) if sent else arguments["pixels"] is None
    assert arguments["scan"] == "reading" and arguments["rows"] == 16  # the rest goes every time


def test_the_viewer_gets_the_readers_marks_with_their_names_and_the_finding_a_new_one_is_for():
    picture = np.zeros((200, 400), np.uint8)
    box = Mark("nodule", "box", ((100.0, 50.0), (300.0, 150.0)))
    marking = Marking("effusion", "Pleural effusion", (("Pulmonary nodule", box),))
    handed = ViewerImage.of_picture(picture, "a").arguments()["marking"]
    assert handed is None  # a page that takes no marks (a reader study) offers no marking tools
    handed = replace(ViewerImage.of_picture(picture, "a"), marking=marking).arguments()["marking"]
    assert handed == {
        "for": "effusion",
        "label": "Pleural effusion",
        "marks": [{"finding": "nodule", "label": "Pulmonary nodule", "kind": "box", "points": [[100, 50], [300, 150]]}],
        "radius": POINT_RADIUS * 200,  # of the shorter side, in scan pixels, as the mark's region is measured
    }


def test_the_overlay_goes_as_its_heat_and_its_outlines_with_the_opacity_to_start_from():
    picture = np.zeros((64, 64), np.uint8)
    heat = np.zeros((64, 64), np.float32)
    heat[10:20, 10:20] = 1.0
    plain = replace(ViewerImage.of_picture(picture, "a"), overlay=layers(heat), opacity=0.3).arguments()
    assert plain["lines"] is None and plain["opacity"] == 0.3 and plain["overlay_shape"] == [64, 64]
    outlined = replace(ViewerImage.of_picture(picture, "a"), overlay=layers(heat, contour_fraction=0.02)).arguments()
    assert outlined["overlay"] == plain["overlay"] and outlined["lines"]
    assert outlined["overlay_checksum"] != plain["overlay_checksum"]  # new outlines reach the viewer


@pytest.mark.parametrize(
    ("message", "told"),
    [
        ({"opacity": 0.6, "id": "1"}, 0.6),
        ({"opacity": 1, "id": "1"}, 1.0),
        ({"opacity": 0, "id": "1"}, 0.0),
        ({"opacity": 1.01}, None),
        ({"opacity": "0.5"}, None),
        ({"opacity": True}, None),
        ({"opacity": float("nan")}, None),
        ({"lacks": "scan", "id": "1"}, None),  # another message
        (None, None),
    ],
)
def test_only_an_opacity_from_0_to_1_is_taken_from_the_viewers_word(message, told):
    assert said_opacity(message) == told
