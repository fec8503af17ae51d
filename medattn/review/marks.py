"""Readers' own marks (where they see a finding) and how well each explanation's map agrees with them.

A mark is a point, a box or a freehand outline, in the original scan's pixel coordinates (x: column,
y: row, from the top-left corner; pixel i spans i to i + 1), so it means the same whatever size the scan was
shown at. A point stands for a disc whose radius is ``POINT_RADIUS`` of the scan's shorter side, the size of a
small nodule. Readers draw them with the reading viewer's tools (``pages/viewer``).

Agreement is measured as the benchmark measures a map against a true mask (``medattn.explain.quality``):
pointing (the map's peak inside the mark) and the share of the map's mass inside it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass

import cv2
import numpy as np

from medattn.errors import ReviewError
from medattn.explain.quality import mass_inside, pointing_hit

KINDS = ("point", "box", "outline")
POINT_RADIUS = 0.04  # of the scan's shorter side
MAX_VERTICES = 2_000


@dataclass(frozen=True)
class Mark:
    finding: str
    kind: str
    points: tuple[tuple[float, float], ...]  # (x, y): a point's centre, a box's two corners, an outline's vertices

    def as_json(self) -> dict:
        return {"kind": self.kind, "points": [[round(x, 1), round(y, 1)] for x, y in self.points]}

    @classmethod
    def from_json(cls, finding: str, stored: dict) -> Mark:
        return cls(finding, stored["kind"], tuple((float(x), float(y)) for x, y in stored["points"]))

    def validated(self, height: int, width: int) -> Mark:
        """Refuses a mark of an unknown kind, with the wrong number of points, or off the scan."""
        needed = {"point": (1, 1), "box": (2, 2), "outline": (3, MAX_VERTICES)}
        if self.kind not in KINDS:
            raise ReviewError(f"A mark must be a point, a box or an outline; '{self.kind}' is none of them.")
        low, high = needed[self.kind]
        if not low <= len(self.points) <= high:
            raise ReviewError(f"A {self.kind} mark needs {low}–{high} points; this one has {len(self.points)}.")
        inside = [
            np.isfinite(x) and np.isfinite(y) and -1 <= x <= width + 1 and -1 <= y <= height + 1 for x, y in self.points
        ]
        if not all(inside):
            raise ReviewError(f"The {self.kind} mark for {self.finding} lies off the scan; draw it again.")
        return self

    def region(self, height: int, width: int, scan_height: int, scan_width: int) -> np.ndarray:
        """The mark as a bool mask (height, width) over a grid covering the scan (scan_height, scan_width)."""
        scale = np.array([width / scan_width, height / scan_height])
        points = np.array(self.points, dtype=np.float64) * scale
        mask = np.zeros((height, width), np.uint8)
        if self.kind == "point":
            radius = max(1, round(POINT_RADIUS * min(height, width)))
            cv2.circle(mask, tuple(np.floor(points[0]).astype(int)), radius, 1, thickness=-1)
        elif self.kind == "box":
            # The pixels whose centres lie inside the box (pixel i spans i to i + 1).
            low, high = np.sort(points, axis=0)
            (x0, y0), (x1, y1) = np.ceil(low - 0.5).astype(int), np.floor(high - 0.5).astype(int)
            mask[max(0, y0) : y1 + 1, max(0, x0) : x1 + 1] = 1
        else:
            cv2.fillPoly(mask, [np.round(points - 0.5).astype(np.int32)], 1)
        return mask.astype(bool)


def agreement(heatmap: np.ndarray, mark: Mark, scan_shape: tuple[int, int]) -> dict[str, float]:
    """Pointing (1 or 0) and mass inside the mark of a map (h, w) laid over a scan of ``scan_shape``."""
    region = mark.region(*heatmap.shape, *scan_shape)
    return {"pointing": float(pointing_hit(heatmap, region)), "mass": mass_inside(heatmap, region)}


def agreement_summary(agreements: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """Per method and finding, the mean pointing and mass over every mark, and the number of marks, from
    each review's ``{finding: {method: {"pointing", "mass"}}}``."""
    gathered: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for review in agreements:
        for finding, methods in review.items():
            for method, figures in methods.items():
                gathered[method, finding].append(figures)
    summary: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for (method, finding), figures in gathered.items():
        summary[method][finding] = {
            "pointing": float(np.mean([f["pointing"] for f in figures])),
            "mass": float(np.mean([f["mass"] for f in figures])),
            "marks": len(figures),
        }
    return dict(summary)


def drawn_mark(message: object, findings: Collection[str], height: int, width: int) -> Mark:
    """The mark the reading viewer says a reader drew (``{"finding", "kind", "points"}``, points in the scan's
    pixels), checked as anything from a browser is: a ReviewError says why it is no mark of one of ``findings`` on a
    scan of ``height`` x ``width``."""
    try:
        mark = Mark.from_json(message["finding"], message)  # type: ignore[index]
        if not isinstance(mark.finding, str) or not isinstance(mark.kind, str):
            raise TypeError(mark)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise ReviewError("The viewer sent a mark that cannot be read; draw it again.") from error
    if mark.finding not in findings:
        raise ReviewError("A mark must be for one of the model's findings; choose one and draw it again.")
    return mark.validated(height, width)


def agreements_with(
    marks: dict[str, dict], map_of: Callable[[str, str], np.ndarray], scan_shape: tuple[int, int], methods
) -> dict[str, dict[str, dict[str, float]]]:
    """For each marked finding and each of ``methods``, the agreement of ``map_of(method, finding)`` (a map
    over a scan of ``scan_shape``) with the mark: what a review or a reading stores."""
    return {
        finding: {
            method: agreement(map_of(method, finding), Mark.from_json(finding, mark), scan_shape) for method in methods
        }
        for finding, mark in marks.items()
    }
