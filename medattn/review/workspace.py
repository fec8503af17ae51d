"""What one review session holds: the scans it opened, which one is on screen, and how they rank.

Plain Python, so the pages stay layout-only and this is tested without a browser. A workspace lives in
one session's state and in memory only: uploads are never written to disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from medattn.errors import ScanError
from medattn.model.predictor import Prediction
from medattn.scan import Scan, load_scan
from medattn.scan.resizing import shrink

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
    loader: Callable[[bytes], Scan] = field(default=load_scan, repr=False)
    _scan: Scan | None = field(default=None, repr=False)

    @classmethod
    def open(cls, key: str, name: str, content: bytes, loader: Callable[[bytes], Scan] = load_scan) -> Case:
        case = cls(key, name, content, loader=loader)
        try:
            case._scan = loader(content)  # no file name in the message: the page shows it as text
        except ScanError as error:
            case.error = str(error)
            return case
        case.thumbnail = shrink(case._scan.display(0), THUMBNAIL_SIDE)
        case.instance_uid = case._scan.instance_uid
        return case

    @property
    def scan(self) -> Scan | None:
        if self._scan is None and self.error is None:
            self._scan = self.loader(self.content)
        return self._scan

    def unload(self) -> None:
        self._scan = None


@dataclass
class Workspace:
    cases: dict[str, Case] = field(default_factory=dict)
    current: str | None = None
    # How a file becomes a Scan: load_scan here, or in a pool of processes (medattn.scan.elsewhere) in a
    # server whose sessions would otherwise decode one at a time.
    loader: Callable[[bytes], Scan] = field(default=load_scan, repr=False)

    def add(self, name: str, content: bytes) -> Case:
        """Open a file (once: the same bytes under any name are the same case) and make it current."""
        key = hashlib.sha256(content).hexdigest()
        if key not in self.cases:
            self.cases[key] = Case.open(key, name, content, self.loader)
        self.select(key)
        return self.cases[key]

    def remove(self, key: str) -> None:
        """Close a case; if it was on screen, the most recently opened of the others takes its place."""
        self.cases.pop(key, None)
        if self.current == key:
            self.current = next(reversed(self.cases), None)
            self.trim()

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

    def ranked(self, predictions: dict[str, Prediction]) -> list[Case]:
        """The readable cases, most suspicious first: by each one's highest finding probability; then the
        scans unlike the model's training data (their probabilities mean nothing), least unlike first."""

        def order(case: Case) -> tuple:
            prediction = predictions[case.key]
            if prediction.unlike_training_data:
                return (1, float(np.nan_to_num(prediction.unlikeness, nan=np.inf)))
            return (0, -max(prediction.probabilities.values()))

        return sorted((case for case in self.readable if case.key in predictions), key=order)
