"""What one review session holds: the scans it opened, which one is on screen, and how to window them.

Plain Python, so the pages stay layout-only and this is tested without a browser. A workspace lives in
one session's state and in memory only: uploads are never written to disk.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from medattn.io import Scan, ScanError, load_scan
from medattn.overlay import shrink

# Window (centre, width) in Hounsfield units for CT.
CT_WINDOWS = {
    "Lung": (-600.0, 1500.0),
    "Mediastinum": (50.0, 350.0),
    "Bone": (400.0, 1800.0),
    "Brain": (40.0, 80.0),
}
# Radiographs carry no calibrated unit, so their presets are ranges of the image's own brightness:
# (low, high) percentiles of how bright a pixel is shown, dark lung fields to dense bone.
RADIOGRAPH_WINDOWS = {
    "Lung": (1.0, 60.0),
    "Soft tissue": (15.0, 90.0),
    "Bone": (50.0, 99.5),
}
RADIOGRAPHY = ("CR", "DX", "DR", "RG", "MG", "OT")


THUMBNAIL_SIDE = 96


@dataclass
class Case:
    """One opened file. ``name`` is the user's file name: shown as text, never stored or reported.

    Only the file's bytes, a thumbnail and the UID are kept for every case; the decoded pixels (a 2k
    radiograph is 14 MB of float32) are kept for the case on screen and decoded again when needed.
    """

    key: str  # sha256 of the bytes: the cache key for everything computed from them
    name: str
    content: bytes = field(repr=False)
    error: str | None = None
    thumbnail: np.ndarray | None = field(default=None, repr=False)
    instance_uid: str | None = field(default=None, repr=False)  # hashed into a study key, never shown
    _scan: Scan | None = field(default=None, repr=False)

    @classmethod
    def open(cls, key: str, name: str, content: bytes) -> Case:
        case = cls(key, name, content)
        try:
            case._scan = load_scan(content, filename=name)
        except ScanError as error:
            case.error = str(error)
            return case
        case.thumbnail = shrink(case._scan.display(0), THUMBNAIL_SIDE)
        case.instance_uid = case._scan.instance_uid
        return case

    @property
    def scan(self) -> Scan | None:
        if self._scan is None and self.error is None:
            self._scan = load_scan(self.content, filename=self.name)
        return self._scan

    def unload(self) -> None:
        self._scan = None


@dataclass
class Workspace:
    cases: dict[str, Case] = field(default_factory=dict)
    current: str | None = None

    def add(self, name: str, content: bytes) -> Case:
        """Open a file (once: the same bytes under any name are the same case) and make it current."""
        key = hashlib.sha256(content).hexdigest()
        if key not in self.cases:
            self.cases[key] = Case.open(key, name, content)
        self.select(key)
        return self.cases[key]

    def select(self, key: str) -> None:
        self.current = key
        self.trim()

    def trim(self) -> None:
        """Keep decoded pixels for the current case only, so a session's memory does not grow per file."""
        for key, case in self.cases.items():
            if key != self.current:
                case.unload()

    @property
    def current_case(self) -> Case | None:
        return self.cases.get(self.current) if self.current else None

    @property
    def readable(self) -> list[Case]:
        return [case for case in self.cases.values() if case.error is None]


def window_presets(scan: Scan, frame: int = 0) -> dict[str, tuple[float, float]]:
    """Named (centre, width) windows for a grey scan: the file's own, the full range, and per modality."""
    pixels = scan.frames[frame]
    finite = pixels[np.isfinite(pixels)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    presets = {"File default": scan.default_window, "Full range": ((low + high) / 2, max(high - low, 1e-3))}
    if scan.modality == "CT":
        return presets | CT_WINDOWS
    if scan.modality in RADIOGRAPHY:
        sample = finite[:: max(1, finite.size // 1_000_000)]
        for name, (dark, bright) in RADIOGRAPH_WINDOWS.items():
            if scan.photometric == "MONOCHROME1":  # high stored values are shown dark
                dark, bright = 100 - bright, 100 - dark
            start, end = np.percentile(sample, [dark, bright])
            presets[name] = (float(start + end) / 2, float(max(end - start, 1e-3)))
    return presets


def submission_id(session_salt: str, case_key: str, model: str, frame: int, answers: dict) -> str:
    """The idempotency key of one submitted review form.

    Derived from what was submitted, so a double click or a rerun that submits the same answers again
    maps to the same key and is stored once; the session's salt keeps two sessions' reviews apart.
    """
    payload = json.dumps([session_salt, case_key, model, frame, answers], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]
