"""How a medattn process shares the machine: torch's threads beside the app's decoder processes, and glibc's
allocator; the app and the command line set what they need themselves (a user sets nothing).

Threads. The app decodes in a pool of processes, one per core (``medattn.scan.elsewhere``), beside the model in
the server. torch's threads spin while they wait for each other: beside one busy process on 2 cores, the served
forward pass took 6.37 ms at 2 threads and 3.20 ms at 1 (``python benchmarks/inference.py``). The app gives torch
half the cores; ``OMP_NUM_THREADS``, where set, is obeyed.

Memory. glibc hands every large freed block back to the system and maps fresh zeroed pages for the next one, so
each forward pass faults its buffers in anew: at batch 64 the served forward ran at 1.92x its FLOP bound with
glibc's defaults and at 1.35x with freed blocks kept (the same benchmark, and with ``--glibc-defaults``). The
command line, which scores in batches of 64, keeps freed blocks up to 512 MB for reuse. The app does not: it runs
the model one image at a time, which faulted no page with glibc's defaults, and a shared server must hand memory
back when sessions end. Kept in threads' arenas, whose tops ``malloc_trim`` does not shrink, 106 MB stayed after
the browser test's sessions ended (its bound is 90).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

_LIBC_PATH = ctypes.util.find_library("c")
_LIBC = ctypes.CDLL(_LIBC_PATH) if _LIBC_PATH else None
# glibc's malloc.h: mallopt's parameters.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
KEPT_BLOCKS = 512 * 2**20  # freed blocks up to this size stay in the heap, for the next forward pass
TRIMMED_ABOVE = 1024 * 2**20  # free memory at the heap's top beyond this goes back at once
HEAP_GROWTH = 64 * 2**20  # the heap grows by this much beyond a request, so a batch does not grow it page by page


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0))


def share_cores_with_decoders() -> int:
    """The app's plan: torch gets half the cores (at least one), the decoder pool the rest of the time; returns
    torch's thread count."""
    import torch  # here: the command line reads this module before it needs torch

    threads = int(os.environ.get("OMP_NUM_THREADS") or max(1, cores() // 2))
    torch.set_num_threads(threads)
    return threads


def decode_on_every_core() -> int:
    """Let OpenJPEG decode a JPEG 2000 image on every core (``OPJ_NUM_THREADS``, which it reads as each decoder
    is made; where set, it is obeyed); returns the thread count. A decoder process calls it at its start: a 2k
    radiograph decoded in 325 ms on 2 cores against 497 on one, the same values (``python
    benchmarks/browser.py``). When two sessions decode at once, their threads share the cores."""
    os.environ.setdefault("OPJ_NUM_THREADS", str(cores()))
    return int(os.environ["OPJ_NUM_THREADS"])


def keep_freed_memory() -> bool:
    """Keep freed blocks for reuse rather than unmapping them and faulting fresh pages in (glibc only; elsewhere
    the allocator is left as it is, and False is returned)."""
    if not hasattr(_LIBC, "mallopt"):
        return False
    return all(
        _LIBC.mallopt(parameter, value) == 1
        for parameter, value in (
            (M_MMAP_THRESHOLD, KEPT_BLOCKS),
            (M_TRIM_THRESHOLD, TRIMMED_ABOVE),
            (M_TOP_PAD, HEAP_GROWTH),
        )
    )


def hand_back_freed_memory() -> None:
    """Hand free pages back to the system (``malloc_trim(0)``, as Dask's workers do); glibc only."""
    if hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)
