"""What would training a MONAI backbone cost on this machine, against medattn's own encoder?

Run: python benchmarks/backbones.py [--input-size 128] [--rounds 3]
For each encoder (medattn's own, and MONAI's DenseNet-121, ResNet-18 and ResNet-50 under the same attention
pooling), the median time of a training step (forward, losses, backward, AdamW) on a batch of 32 benchmark cases,
and of a forward pass at batch 64, in alternated rounds; printed as ratios to medattn's own encoder, with the
default recipe's training time (12,000 cases, 10 epochs) estimated from the step time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medattn.benchmark import FINDINGS
from medattn.model.backbones import BACKBONES
from medattn.model.network import AttentionNet, ModelConfig
from medattn.model.preprocessing import Preprocessing
from medattn.training.datasets import synthetic
from medattn.training.inputs import letterboxed_inputs

TRAIN_CASES, EPOCHS = 12_000, 10


def step_seconds(model: AttentionNet, optimiser: torch.optim.Optimizer, inputs, labels) -> float:
    started = time.perf_counter()
    model.train()
    logits, _ = model(inputs)
    loss = F.binary_cross_entropy_with_logits(logits, labels)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return time.perf_counter() - started


@torch.inference_mode()
def forward_seconds(model: AttentionNet, inputs) -> float:
    model.eval()
    started = time.perf_counter()
    model(inputs)
    return time.perf_counter() - started


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--input-size", type=int, default=128)
    arguments.add_argument("--rounds", type=int, default=3)
    args = arguments.parse_args()
    cases = synthetic(3, 64, args.input_size)
    inputs = letterboxed_inputs(cases.images, Preprocessing(args.input_size))[0]
    labels = torch.from_numpy(cases.labels)
    models = {}
    for name in BACKBONES:
        torch.manual_seed(0)
        model = AttentionNet(ModelConfig(FINDINGS, input_size=args.input_size, backbone=name))
        models[name] = (model, torch.optim.AdamW(model.parameters()))
        step_seconds(*models[name], inputs[:32], labels[:32])  # warm-up
    steps = {name: [] for name in BACKBONES}
    forwards = {name: [] for name in BACKBONES}
    for _ in range(args.rounds):  # alternated, so that the machine's noise falls on every encoder alike
        for name, (model, optimiser) in models.items():
            steps[name].append(step_seconds(model, optimiser, inputs[:32], labels[:32]))
            forwards[name].append(forward_seconds(model, inputs))
    own_step, own_forward = statistics.median(steps[BACKBONES[0]]), statistics.median(forwards[BACKBONES[0]])
    print(f"{args.input_size} px, {torch.get_num_threads()} torch threads, median of {args.rounds} alternated rounds")
    print("| encoder | parameters | tokens | training step, batch 32 | × own | forward, ms/image | × own | "
          f"{TRAIN_CASES:,} cases × {EPOCHS} epochs |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, (model, _) in models.items():
        step, forward = statistics.median(steps[name]), statistics.median(forwards[name]) / len(inputs)
        hours = step * TRAIN_CASES / 32 * EPOCHS / 3600
        grid = model.config.grid_size
        print(
            f"| {name} | {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M | {grid} × {grid} | "
            f"{step:.2f} s | {step / own_step:.1f} | {forward * 1000:.1f} | {forward * len(inputs) / own_forward:.1f} "
            f"| {hours:.1f} h |"
        )


if __name__ == "__main__":
    main()
