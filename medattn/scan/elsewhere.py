"""``load_scan`` in a pool of worker processes, so that decoding runs on every core.

The JPEG 2000 decoder holds the GIL: a server whose sessions all decode in their own threads decodes one
file at a time, however many cores it has. A single-frame scan is decoded in a worker and comes back as
its one frame and its details; a multi-frame scan, which decodes a frame at a time as it is viewed, is
loaded in the caller's process.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from medattn.errors import ScanError
from medattn.scan.frames import Scan
from medattn.scan.load import DEFAULT_MAX_VALUES, load_scan

DETAILS = ("pixel_spacing", "meta", "instance_uid", "burned_in_annotation")


class DecoderPool:
    """Spawned decoding processes, one per core by default, shared by every session of a server.

    Every worker is started before the pool is used: a worker's start (its imports) is not a user's wait.
    A worker watches its parent and leaves when it is gone: each worker holds a copy of the task queue's
    writing end, so a killed server's workers would never read the end of it. If a decoder crashes a
    worker (a hostile file), that file gets a ScanError and the next file a fresh pool.
    """

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_leave_with_parent,
            initargs=(os.getpid(),),
        )
        wait([pool.submit(os.getpid) for _ in range(self.workers)])
        return pool

    def load_scan(self, content: bytes, max_values: int = DEFAULT_MAX_VALUES) -> Scan:
        """What ``load_scan(content)`` gives, decoded in a worker; a ScanError comes back as it was raised."""
        pool = self._pool
        try:
            decoded = pool.submit(_load_one_frame, content, max_values).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = self._start()
            raise ScanError("The decoder stopped while reading this file: it is damaged or hostile.") from None
        if decoded is None:
            return load_scan(content, max_values=max_values)
        frame, photometric, modality, window, details = decoded
        return Scan.of_frames(frame[None], photometric, modality, default_window=window, **details)

    def pids(self) -> list[int]:
        """The workers' process ids."""
        return [int(pid) for pid in self._pool.map(_pid, range(self.workers))]

    def shutdown(self) -> None:
        self._pool.shutdown(cancel_futures=True)


def _pid(_: int) -> int:
    return os.getpid()


def _load_one_frame(content: bytes, max_values: int) -> tuple | None:
    scan = load_scan(content, max_values=max_values)
    if scan.frame_count > 1:
        return None
    details = {name: getattr(scan, name) for name in DETAILS}
    return np.ascontiguousarray(scan.frame(0)), scan.photometric, scan.modality, scan.default_window, details


def _leave_with_parent(parent: int) -> None:
    """In each worker: exit within a second of the parent's death, whatever the worker is doing."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
