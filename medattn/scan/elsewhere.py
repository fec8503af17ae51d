"""``load_scan`` in a pool of bounded worker processes: no pixel is decoded in the caller's process.

Two reasons. A decoder can be made to allocate without end or to run for minutes by a file of a few kB (the
guards in ``medattn.scan.guards`` refuse every such file found so far; the bounds here hold for the ones not
found yet): each worker runs under an address-space limit and each file under a deadline, and a worker that
hits either is replaced, while the server and every other session go on. And the JPEG 2000 decoder holds the
GIL: sessions decoding in their own threads would take turns on one core.

A single-frame scan or an image file comes back decoded whole. A multi-frame DICOM comes back as its first
frame and a decoder that asks a worker for each further frame, so that a 120-frame cine still costs the server
one decoded frame, and a hostile later frame costs a worker, not the server.

Pebble's process pool is used because it kills and replaces a worker whose task outlives its timeout, which
``concurrent.futures`` cannot do.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import resource
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
from pebble import ProcessExpired, ProcessFuture, ProcessPool

from medattn.errors import ScanError
from medattn.runtime import decode_on_every_core
from medattn.scan.frames import Scan, exact_values
from medattn.scan.guards import OUT_OF_MEMORY
from medattn.scan.load import DEFAULT_MAX_VALUES, detect_kind, load_scan

DETAILS = ("pixel_spacing", "meta", "instance_uid", "burned_in_annotation")
# Address space a worker may add to what its libraries map when it starts: the largest file the app takes
# (50 million values, float32) decodes in well under 1.5 GB. Counted beyond the start, not in all, because
# libraries map very different amounts by build (torch with CUDA maps 3.7 GB it never touches; a 3 GB limit
# in all left no room for a thread's stack).
WORKER_MEMORY_BYTES = 3 * 2**30
DECODE_SECONDS = 60.0


class DecoderPool:
    """Spawned decoding processes, one per core by default, shared by every session of a server.

    Every worker is started before the pool is used: a worker's start (its imports) is not a user's wait.
    A worker watches its parent and leaves when it is gone, so a killed server leaves no worker behind.
    """

    def __init__(
        self,
        workers: int | None = None,
        memory_bytes: int = WORKER_MEMORY_BYTES,
        seconds: float = DECODE_SECONDS,
    ):
        self.workers = workers or os.cpu_count() or 1
        self.memory_bytes, self.seconds = memory_bytes, seconds
        self._lock = threading.Lock()
        self._closed = False
        self._pool = self._start()

    def _start(self) -> ProcessPool:
        pool = ProcessPool(
            max_workers=self.workers,
            context=multiprocessing.get_context("spawn"),
            initializer=_bounded_worker,
            initargs=(os.getpid(), self.memory_bytes),
        )
        _worker_pids(pool, self.workers)  # every worker up, its imports done: a worker's start is not a user's wait
        return pool

    def load_scan(self, content: bytes, max_values: int = DEFAULT_MAX_VALUES) -> Scan:
        """What ``load_scan(content)`` gives, decoded in a worker; a ScanError comes back as it was raised, and
        a file that exhausts a worker's memory or time gets a ScanError that says so."""
        frames, count, photometric, modality, window, details = self._run(_decoded, content, max_values)
        frames = frames.astype(np.float32, copy=False)  # widened again where they crossed narrower
        if count == len(frames):
            return Scan.of_frames(frames, photometric, modality, default_window=window, **details)
        scan = Scan(
            frame_count=count,
            is_colour=frames.ndim == 4,
            photometric=photometric,
            modality=modality,
            default_window=window,
            decode=lambda index: self._run(_decoded_frame, content, max_values, index).astype(np.float32, copy=False),
            **details,
        )
        scan._last = (0, frames[0])
        return scan

    def pids(self) -> list[int]:
        """The workers' process ids."""
        return _worker_pids(self._pool, self.workers)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            self._pool.stop()
        self._pool.join()

    def _schedule(self, function, args: tuple) -> ProcessFuture:
        pool = self._pool
        try:
            return pool.schedule(function, args=args, timeout=self.seconds)
        except RuntimeError:  # the pool is broken (see _run)
            return self._replaced(pool).schedule(function, args=args, timeout=self.seconds)

    def _replaced(self, broken: ProcessPool) -> ProcessPool:
        with self._lock:
            if self._closed:
                raise ScanError("The decoders have been shut down with the server; reopen the page.")
            if self._pool is broken:
                broken.stop()
                self._pool = self._start()
            return self._pool

    def _run(self, function, *args):
        """``function(*args)`` in a worker, under the deadline. Pebble replaces a worker that dies in a task or
        is stopped at its deadline, but when it notices a dead worker with no task of its running (stopped at a
        deadline a moment before, or killed while idle) it calls the whole pool broken and fails every task
        after: those tasks run again in a fresh pool."""
        for attempt in range(2):
            pool = self._pool
            future = self._schedule(function, args)
            try:
                return future.result()
            except BrokenProcessPool:
                if attempt:
                    raise ScanError("The decoders could not be restarted; try again in a minute.") from None
                self._replaced(pool)
            except FutureTimeout:
                raise ScanError(
                    f"Decoding this file took longer than {self.seconds:g} s, so it was stopped: it is damaged or "
                    "hostile, or too large to show here."
                ) from None
            except MemoryError:  # outside the decoders' own boundaries (stacking the frames, say)
                raise ScanError(OUT_OF_MEMORY) from None
            except ProcessExpired:
                raise ScanError("The decoder stopped while reading this file: it is damaged or hostile.") from None


def _decoded(content: bytes, max_values: int) -> tuple:
    """In a worker: the scan's frames (all of an image file's or a single-frame DICOM's; a multi-frame DICOM's
    first), its frame count, and what ``Scan`` needs besides."""
    scan = load_scan(content, max_values=max_values)
    image_file = detect_kind(content) not in (None, "DICOM")  # decoded whole already, within the size limit
    # Sent back in the narrowest type that holds them exactly: a 2k radiograph's 16-bit values cross in half the
    # bytes of float32, 30 ms sooner (the caller widens them again).
    frames = exact_values(np.stack([scan.frame(index) for index in range(scan.frame_count if image_file else 1)]))
    if len(frames) < scan.frame_count:
        _keep(content, max_values, scan)
    details = {name: getattr(scan, name) for name in DETAILS}
    return frames, scan.frame_count, scan.photometric, scan.modality, scan.default_window, details


def _decoded_frame(content: bytes, max_values: int, index: int) -> np.ndarray:
    """In a worker: one frame of a multi-frame DICOM, in the narrowest type that holds it exactly."""
    return exact_values(_opened(content, max_values).frame(index))


_recent: dict[bytes, Scan] = {}  # in each worker: the last file opened, whose frames a cine asks for in turn


def _opened(content: bytes, max_values: int) -> Scan:
    """The file opened, or the one this worker opened last if it is the same (its compressed frames kept, so
    asking for frame after frame parses it once)."""
    key = _key(content, max_values)
    if key not in _recent:
        _keep(content, max_values, load_scan(content, max_values=max_values))
    return _recent[key]


def _keep(content: bytes, max_values: int, scan: Scan) -> None:
    _recent.clear()
    _recent[_key(content, max_values)] = scan


def _key(content: bytes, max_values: int) -> bytes:
    return hashlib.blake2b(content, digest_size=16).digest() + max_values.to_bytes(8, "big")


def _worker_pids(pool: ProcessPool, workers: int) -> list[int]:
    """Each worker's process id, once every worker has started: each task is held long enough that every
    worker takes one."""
    return sorted({future.result() for future in [pool.schedule(_pid_after, args=(0.2,)) for _ in range(workers)]})


def _pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def limit_memory(memory_bytes: int = WORKER_MEMORY_BYTES) -> None:
    """Bound this (worker) process's address space to what it maps now plus ``memory_bytes``: an allocation
    past it raises MemoryError in the worker, which the decoders' boundaries turn into a ScanError for that
    file, instead of the kernel killing the machine's largest process."""
    mapped = os.sysconf("SC_PAGE_SIZE") * int(Path("/proc/self/statm").read_text().split()[0])
    resource.setrlimit(resource.RLIMIT_AS, (mapped + memory_bytes, mapped + memory_bytes))


def _bounded_worker(parent: int, memory_bytes: int) -> None:
    """In each worker: the memory limit, JPEG 2000 decoded on every core, and an exit within a second of the
    parent's death."""
    limit_memory(memory_bytes)
    decode_on_every_core()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
