"""How a process shares the machine (medattn.runtime), each case in a fresh Python: allocator settings and torch's
thread count belong to the whole process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FAULTS = """
import json, resource, sys, torch
from medattn import Predictor, runtime
kept = runtime.keep_freed_memory() if sys.argv[1] == "kept" else None
predictor = Predictor.default()
inputs = torch.rand(64, 1, 128, 128)
with torch.inference_mode():
    predictor.model(inputs)  # the first pass grows the heap either way
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        predictor.model(inputs)
print(json.dumps({"kept": kept, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""
THREADS = """
import json, os, torch
from medattn import runtime
print(json.dumps({"threads": runtime.share_cores_with_decoders(), "torch": torch.get_num_threads(),
                  "cores": len(os.sched_getaffinity(0))}))
"""


def run(script: str, *arguments: str, **environment: str) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"} | environment
    done = subprocess.run(
        [sys.executable, "-c", script, *arguments], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_kept_freed_memory_spares_the_forward_pass_its_page_faults():
    """With glibc's defaults each batch of 64 maps its buffers afresh and faults every page in again."""
    default, kept = run(FAULTS, "default"), run(FAULTS, "kept")
    assert kept["kept"] is True
    assert default["faults"] > 100_000  # three passes' worth of fresh pages
    assert kept["faults"] < default["faults"] / 10


def test_torch_gets_half_the_cores_beside_the_decoders_unless_told_otherwise():
    planned = run(THREADS)
    assert planned["threads"] == planned["torch"] == max(1, planned["cores"] // 2)
    assert run(THREADS, OMP_NUM_THREADS="3")["torch"] == 3  # an operator's setting wins


def test_a_decoder_worker_decodes_jpeg2000_on_every_core_unless_told_otherwise(monkeypatch):
    """OpenJPEG reads OPJ_NUM_THREADS as each decoder is made: a worker sets it at its start, before any file."""
    from medattn.runtime import cores
    from medattn.scan.elsewhere import DecoderPool

    for told, expected in ((None, str(cores())), ("1", "1")):
        if told is None:
            monkeypatch.delenv("OPJ_NUM_THREADS", raising=False)
        else:
            monkeypatch.setenv("OPJ_NUM_THREADS", told)
        pool = DecoderPool(1)
        try:
            assert pool._run(os.getenv, "OPJ_NUM_THREADS") == expected
        finally:
            pool.shutdown()
