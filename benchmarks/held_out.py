"""The (image, finding) pairs the explanation benchmarks measure: on the synthetic benchmark's held-out test seed,
every finding present in an image and called present by the model, with one forward pass timed beside each."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from medattn import Predictor
from medattn.benchmark import SyntheticCase, generate_case
from medattn.model.predictor import Prediction

SEED = 1000


@dataclass(frozen=True)
class CalledPair:
    case: SyntheticCase
    prediction: Prediction
    model_input: torch.Tensor  # (1, channels, S, S)
    class_index: int
    finding: str
    forward_seconds: float  # one forward pass of the model on this image, timed just before


def called_pairs(predictor: Predictor, cases: int, size: int = 128) -> Iterator[CalledPair]:
    """Each finding present and called present, case by case, on held-out seed ``SEED``."""
    for index in range(cases):
        case = generate_case(SEED, index, size)
        prediction = predictor.predict(case.image)
        model_input, _ = predictor.prepare(case.image)
        for class_index, finding in enumerate(predictor.classes):
            if case.labels[class_index] and finding in prediction.labels:
                started = time.perf_counter()
                with torch.inference_mode():
                    predictor.model(model_input)
                yield CalledPair(case, prediction, model_input, class_index, finding, time.perf_counter() - started)
