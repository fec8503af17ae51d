"""Batch-scoring throughput: synthetic 128 px PNGs through `medattn.batch`, decode included, on this CPU.

Run: python benchmarks/score.py
Targets, on 2 cores: >= 150 images/s, and >= 0.8 of the bare forward pass on the same images preloaded as tensors
(measured before and after each setting, in the same run); on 2k JPEG 2000 radiographs, decode-bound, within 1.2x
of the bare decode's time per file (one decode on every core, in this process, before and after each setting).
Prints where the main process spent its time (waiting for decoded batches, in the model, writing), the decode
cost per image in one process, and how close the model runs to the FLOP-bound limit of this CPU (the model's
FLOPs over the rate a large float32 matmul reaches here).
The process keeps freed memory for reuse, as the command line does (medattn.runtime).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from medattn import Predictor, load_scan, runtime
from medattn.batch import score
from medattn.benchmark import generate
from tests.conftest import PYDICOM_DATA_FILES

FILES, SIZE, SEED = 3000, 128, 4343
RADIOGRAPH_COPIES = 16  # heavy decodes: a 1955 x 1841 JPEG 2000 radiograph takes ~0.43 s to decode


def write_pngs(folder: Path) -> list[Path]:
    paths = []
    images, _ = generate(SEED, FILES, SIZE)
    for index, image in enumerate(images):
        path = folder / f"case-{index:05d}.png"
        Image.fromarray(np.round(image * 65535).astype(np.uint16)).save(path)
        paths.append(path)
    return paths


def decode_seconds(paths: list[Path], predictor: Predictor) -> float:
    started = time.perf_counter()
    for path in paths:
        predictor.prepare(load_scan(path))
    return (time.perf_counter() - started) / len(paths)


def radiograph_decode_seconds() -> float:
    """The bound for scoring radiographs: the median of three decodes of one, in this process, on every core."""
    runtime.decode_on_every_core()
    times = []
    for _ in range(3):
        started = time.perf_counter()
        load_scan(PYDICOM_DATA_FILES / "RG1_J2KR.dcm").frame(0)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def flop_bound_seconds(predictor: Predictor) -> tuple[float, float, float]:
    """(model FLOPs per image, this CPU's float32 matmul FLOP/s, the seconds per image at that rate)."""
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        recipe = predictor.preprocessing
        predictor.model(torch.zeros(1, recipe.channels, recipe.input_size, recipe.input_size))
    flops = counter.get_total_flops()
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    rates = []
    for _ in range(5):
        started = time.perf_counter()
        torch.mm(a, b)
        rates.append(2 * 2048**3 / (time.perf_counter() - started))
    peak = max(rates)
    return flops, peak, flops / peak


def bare_forward_rate(predictor: Predictor, inputs: torch.Tensor) -> float:
    """Images/s of the served model alone on preloaded inputs, in batches of 64."""
    started = time.perf_counter()
    predictor.run(inputs[:64])
    started = time.perf_counter()
    for batch in inputs.split(64):
        predictor.run(batch)
    return len(inputs) / (time.perf_counter() - started)


def main() -> None:
    runtime.keep_freed_memory()
    predictor = Predictor.default()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "archive"
        folder.mkdir()
        paths = write_pngs(folder)
        preloaded = torch.cat([predictor.prepare(load_scan(path))[0] for path in paths])
        print(f"{FILES} synthetic {SIZE} px 16-bit PNGs; {torch.get_num_threads()} torch threads")
        print(f"{'workers':>8}{'images/s':>10}{'x bare':>8}{'waiting %':>11}{'model %':>9}{'writing %':>11}")
        bare = [bare_forward_rate(predictor, preloaded)]
        for workers in (0, 1, 2):
            out = Path(scratch) / f"results-{workers}.csv"
            timings = score(predictor, [str(folder)], out, workers=workers, batch_size=64, progress=False)
            bare.append(bare_forward_rate(predictor, preloaded))
            total = timings.seconds
            rate = timings.files / total
            print(
                f"{workers:>8}{rate:>10.0f}{rate / statistics.median(bare[-2:]):>8.2f}"
                f"{100 * timings.waiting / total:>11.0f}{100 * timings.model / total:>9.0f}"
                f"{100 * timings.writing / total:>11.0f}"
            )
            if workers == 0:  # the command's default; beside workers, the model shares the cores with them
                model_per_image = timings.model / timings.files
        print(f"bare forward on preloaded tensors, batches of 64: {statistics.median(bare):.0f} images/s")
        decode = statistics.median(decode_seconds(paths[i : i + 200], predictor) for i in (0, 200, 400))
        heavy = Path(scratch) / "radiographs"
        heavy.mkdir()
        for index in range(RADIOGRAPH_COPIES):
            shutil.copy(PYDICOM_DATA_FILES / "RG1_J2KR.dcm", heavy / f"cr-{index:02d}.dcm")
        print(f"{RADIOGRAPH_COPIES} copies of a 1955 x 1841 JPEG 2000 radiograph, start-up included")
        print(f"{'workers':>8}{'files/s':>10}{'waiting %':>11}{'s/file':>8}{'x bare decode':>15}")
        bare_decodes = [radiograph_decode_seconds()]
        for workers in (0, 2):
            out = Path(scratch) / f"radiographs-{workers}.csv"
            timings = score(predictor, [str(heavy)], out, workers=workers, batch_size=8, progress=False)
            bare_decodes.append(radiograph_decode_seconds())  # before and after each setting: a noisy machine
            rate, waiting = timings.files / timings.seconds, 100 * timings.waiting / timings.seconds
            bare_decode = statistics.median(bare_decodes[-2:])
            print(f"{workers:>8}{rate:>10.2f}{waiting:>11.0f}{1 / rate:>8.3f}{1 / rate / bare_decode:>15.2f}")
        print(f"bare decode of the radiograph in this process, on every core: {statistics.median(bare_decodes):.3f} s")
    flops, peak, bound = flop_bound_seconds(predictor)
    print(f"decode + prepare, one process: {decode * 1000:.2f} ms/image")
    print(f"model while scoring with no worker, batches of 64: {model_per_image * 1000:.2f} ms/image")
    print(
        f"model FLOPs {flops / 1e6:.0f} M/image; float32 matmul here {peak / 1e9:.0f} GFLOP/s; "
        f"FLOP-bound limit {bound * 1000:.3f} ms/image; model time / limit = {model_per_image / bound:.1f}"
    )


if __name__ == "__main__":
    main()
