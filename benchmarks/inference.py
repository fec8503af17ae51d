"""The forward pass against its FLOP bound, and the whole Predictor.predict path against the forward pass.

Run: python benchmarks/inference.py [--glibc-defaults]
The bound is the model's floating-point operations per image (counted by torch.utils.flop_counter) at the rate a
2048 x 2048 float32 matmul reaches on this machine, measured in the same run between the model's rounds: these
machines are noisy, so every ratio is taken within one round. "trained" is the network as training left it (the
card's figures come from it); "served" is what Predictor.load serves (medattn.model.network.for_inference).
The process keeps freed memory for reuse, as the command line does (medattn.runtime); with
--glibc-defaults it runs with glibc's own allocator settings instead. Target (2 cores): the served forward
<= 1.5x the bound. Last, the forward pass at 1 and at 2 threads beside one busy process (a stand-in for the
app's decoder pool at work), which is why the app gives torch half the cores (medattn.runtime).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medattn import Predictor, runtime
from medattn.assets import DEFAULT_MODEL_DIR
from medattn.benchmark import generate_case
from medattn.model.checkpoint import load_model

ROUNDS, BATCHES, PREDICTS = 7, (1, 16, 64), 100
# One core kept busy with single-threaded numpy work, as a decoding worker keeps it.
BUSY = "import numpy as np\nnp.random.seed(0)\na = np.random.rand(300, 300)\nwhile True: np.linalg.svd(a)"
MATMUL = torch.randn(2048, 2048)


def seconds(work, repeats: int) -> float:
    """Median seconds of one call of ``work``."""
    work()  # warm
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def matmul_rate() -> float:
    """FLOP/s of a 2048 x 2048 float32 matmul, now."""
    return 2 * 2048**3 / seconds(lambda: MATMUL @ MATMUL, 5)


def main() -> None:
    allocator = "glibc's defaults" if "--glibc-defaults" in sys.argv else "freed memory kept (medattn.runtime)"
    if "--glibc-defaults" not in sys.argv:
        runtime.keep_freed_memory()
    predictor = Predictor.load(DEFAULT_MODEL_DIR)
    models = {"trained": load_model(DEFAULT_MODEL_DIR)[0], "served": predictor.model}
    size = predictor.preprocessing.input_size
    one = predictor.prepare(generate_case(0, 0, size).image)[0]
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        models["trained"](one)
    flops = counter.get_total_flops()

    ratios: dict[tuple[str, int], list[float]] = {}
    per_image: dict[tuple[str, int], list[float]] = {}
    rates = []
    with torch.inference_mode():
        for _ in range(ROUNDS):
            for batch in BATCHES:
                inputs = one.repeat(batch, 1, 1, 1)
                for name, model in models.items():
                    rate = matmul_rate()
                    rates.append(rate)
                    took = seconds(lambda model=model, inputs=inputs: model(inputs), max(3, 48 // batch)) / batch
                    per_image.setdefault((name, batch), []).append(took)
                    ratios.setdefault((name, batch), []).append(took / (flops / rate))

    print(f"{flops / 1e6:.0f} MFLOP per {size} px image; matmul {statistics.median(rates) / 1e9:.0f} GFLOP/s (median)")
    print(f"{'forward':<10}{'batch':>6}{'ms/image':>10}{'x bound':>9}{'x trained':>11}")
    for (name, batch), samples in per_image.items():
        trained = statistics.median(per_image[("trained", batch)])
        median = statistics.median(samples)
        bound = statistics.median(ratios[(name, batch)])
        print(f"{name:<10}{batch:>6}{median * 1000:>10.2f}{bound:>9.2f}{median / trained:>11.2f}")

    small = generate_case(0, 0, size).image
    large = (generate_case(0, 0, 2048).image * 4095).astype(np.uint16)  # a 2k x 2k 12-bit radiograph
    paths = {
        "forward, batch 1": lambda: predictor.run(one),
        f"predict {size}px": lambda: predictor.predict(small),
        "predict 2048px": lambda: predictor.predict(large),
    }
    timings = {name: [] for name in paths}
    for _ in range(PREDICTS):  # interleaved
        for name, work in paths.items():
            started = time.perf_counter()
            work()
            timings[name].append(time.perf_counter() - started)
    base = statistics.median(timings["forward, batch 1"])
    print(f"\n{'served path':<18}{'median ms':>10}{'p90 ms':>9}{'x forward':>11}")
    for name, samples in timings.items():
        p90 = np.percentile(samples, 90) * 1000
        median = statistics.median(samples)
        print(f"{name:<18}{median * 1000:>10.2f}{p90:>9.2f}{median / base:>11.2f}")
    print(f"threads={torch.get_num_threads()} rounds={ROUNDS} torch={torch.__version__} allocator: {allocator}")
    beside_a_busy_process(predictor.model, one)


def beside_a_busy_process(model: torch.nn.Module, one: torch.Tensor) -> None:
    busy = subprocess.Popen([sys.executable, "-c", BUSY], env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    try:
        time.sleep(2)
        samples: dict[int, list[float]] = {1: [], 2: []}
        with torch.inference_mode():
            for _ in range(ROUNDS):  # alternated
                for threads, kept in samples.items():
                    torch.set_num_threads(threads)
                    for _ in range(50):
                        started = time.perf_counter()
                        model(one)
                        kept.append(time.perf_counter() - started)
    finally:
        busy.kill()
    print(f"\n{'beside one busy process':<26}{'median ms':>10}{'p90 ms':>9}")
    for threads, kept in samples.items():
        print(
            f"  served, batch 1, {threads} thread{'s' if threads > 1 else ''}{'':<{6 - (threads > 1)}}"
            f"{statistics.median(kept) * 1000:>10.2f}{np.percentile(kept, 90) * 1000:>9.2f}"
        )


if __name__ == "__main__":
    main()
