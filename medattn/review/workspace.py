"""What one review session holds: the scans it opened, which one is on screen, and how they rank.

Plain Python, so the pages stay layout-only and this is tested without a browser. A workspace lives in
one session's state and in memory only: uploads are never written to disk.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from medattn.errors import ScanError
from medattn.model.predictor import Prediction
from medattn.scan import Scan, load_scan
from medattn.scan.resizing import shrink

THUMBNAIL_SIDE = 96
# What one session may hold open: a day's reading list of chest radiographs (about 10 MB each) or a few
# large multi-frame series; the upload limit is 200 MB a file. Files that fail to open hold no bytes.
SESSION_BYTES, SESSION_CASES = 1 * 2**30, 200
# What every session of a server may hold together, beside the model and the decoders: ten sessions at
# their limit fit in the 24 GB of a department's small server.
SERVER_BYTES = 10 * 2**30


class ByteBudget:
    """The bytes of opened files every session of a server holds, against one limit; shared by their
    workspaces, each of which gives its bytes back when it is closed or collected."""

    def __init__(self, limit: int = SERVER_BYTES):
        self.limit, self.held = limit, 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if self.held + size > self.limit:
                return False
            self.held += size
            return True

    def give_back(self, size: int) -> None:
        with self._lock:
            self.held -= size


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
    # Opened from the PACS in this session: only such a case's results may be stored back into it. An uploaded
    # file can carry any study's UIDs, and its results would be filed in that patient's record.
    from_pacs: bool = False
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
    worklist: list[str] = field(default_factory=list)  # the Worklist's last order (case keys), walked by Review
    # How a file becomes a Scan: load_scan here, or in a pool of processes (medattn.scan.elsewhere) in a
    # server whose sessions would otherwise decode one at a time.
    loader: Callable[[bytes], Scan] = field(default=load_scan, repr=False)
    server: ByteBudget = field(default_factory=ByteBudget, repr=False)  # shared by a server's sessions
    max_bytes: int = SESSION_BYTES
    max_cases: int = SESSION_CASES
    _held: list[int] = field(default_factory=lambda: [0], repr=False)  # this session's share, given back on close

    def __post_init__(self) -> None:
        weakref.finalize(self, _give_back, self.server, self._held)

    def add(self, name: str, content: bytes, from_pacs: bool = False) -> Case:
        """Open a file (once: the same bytes under any name are the same case) and make it current. A file
        past the session's or the server's bounds, or one that cannot be opened, keeps no bytes: it is listed
        with the reason. ``from_pacs``: the file was retrieved from the PACS, not uploaded."""
        key = hashlib.sha256(content).hexdigest()
        if key not in self.cases:
            self.cases[key] = self._opened(key, name, content)
        self.cases[key].from_pacs |= from_pacs
        self.select(key)
        return self.cases[key]

    def _opened(self, key: str, name: str, content: bytes) -> Case:
        size = len(content)
        refusal = None
        if len(self.cases) >= self.max_cases:
            refusal = f"This session has {len(self.cases)} files open, the most it keeps; close some first."
        elif self._held[0] + size > self.max_bytes:
            refusal = (
                f"This session holds {self._held[0] / 2**20:,.0f} MB of files; this one would take it past "
                f"{self.max_bytes / 2**20:,.0f} MB. Close some files first."
            )
        elif not self.server.take(size):
            refusal = "The server holds as many files as it can for everyone using it; try again later."
        if refusal:
            return Case(key, name, b"", error=refusal, loader=self.loader)
        case = Case.open(key, name, content, self.loader)
        if case.error:  # nothing of it is ever shown: its bytes go
            self.server.give_back(size)
            case.content = b""
        else:
            self._held[0] += size
        return case

    def remove(self, key: str) -> None:
        """Close a case; if it was on screen, the most recently opened of the others takes its place."""
        closed = self.cases.pop(key, None)
        if closed is not None and closed.content:
            self._held[0] -= len(closed.content)
            self.server.give_back(len(closed.content))
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

    def beside(self, step: int) -> str | None:
        """The key of the readable case ``step`` places from the current one (1: next, -1: previous), in the
        Worklist's last order, then in the order opened for cases it has not ranked; None past either end."""
        keys = [case.key for case in self.readable]
        ordered = [key for key in self.worklist if key in keys] + [key for key in keys if key not in self.worklist]
        if self.current not in ordered:
            return None
        place = ordered.index(self.current) + step
        return ordered[place] if 0 <= place < len(ordered) else None

    def ranked(self, predictions: dict[str, Prediction]) -> list[Case]:
        """The readable cases, most suspicious first: by each one's highest finding probability; then the
        scans unlike the model's training data (their probabilities mean nothing), least unlike first."""

        def order(case: Case) -> tuple:
            prediction = predictions[case.key]
            if prediction.unlike_training_data:
                return (1, float(np.nan_to_num(prediction.unlikeness, nan=np.inf)))
            return (0, -max(prediction.probabilities.values()))

        ranked = sorted((case for case in self.readable if case.key in predictions), key=order)
        self.worklist = [case.key for case in ranked]
        return ranked


def _give_back(server: ByteBudget, held: list[int]) -> None:
    server.give_back(held[0])
