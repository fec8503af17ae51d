"""Image files are read batch by batch as training reaches them, in worker processes where asked for, and a
stopped training run resumes to the model one uninterrupted run gives."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from medattn.benchmark import generate_case
from medattn.errors import DatasetError, TrainingError
from medattn.model.checkpoint import WEIGHTS_FILE
from medattn.model.network import ModelConfig
from medattn.model.preprocessing import Preprocessing
from medattn.training.datasets import ImageFiles, open_dataset, synthetic
from medattn.training.inputs import ModelInputs, letterboxed_inputs
from medattn.training.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[2]
TINY = ModelConfig(classes=("clear", "nodule"), input_size=64, widths=(4, 8, 8, 8))


def write_cases(root: Path, count: int, size: int = 96) -> Path:
    """Benchmark cases as 16-bit PNGs in two class folders, 'nodule' (those with one) and 'clear'."""
    for index in range(count):
        case = generate_case(5, index, size)
        folder = root / ("nodule" if case.labels[0] else "clear")
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index:03d}.png"), np.round(case.image * 65535).astype(np.uint16))
    return root


def test_files_are_read_batch_by_batch_as_the_held_images_give_them(tmp_path):
    """A folder's inputs are never held; each batch is what preparing those files at once gives, in the order
    asked for, with every worker process."""
    files = open_dataset(write_cases(tmp_path, 40), "train")
    recipe = Preprocessing(64)
    assert isinstance(files.images, ImageFiles)
    expected, boxes = letterboxed_inputs(list(files.images), recipe)
    order = np.random.default_rng(0).permutation(len(files))
    for workers in (0, 2):
        batches = list(ModelInputs(files.images, recipe, workers).batches(order, batch_size=7))
        assert [len(inputs) for inputs, _ in batches] == [7] * (len(order) // 7) + [len(order) % 7]
        assert torch.equal(torch.cat([inputs for inputs, _ in batches]), expected[order])
        assert [box for _, said in batches for box in said] == [boxes[i] for i in order]


def test_a_file_that_cannot_be_read_in_a_worker_is_named_in_one_line(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    paths = [*sorted(write_cases(tmp_path / "cases", 3).rglob("*.png")), tmp_path / "bad.png"]
    inputs = ModelInputs(ImageFiles(paths), Preprocessing(64), workers=1)
    with pytest.raises(DatasetError) as raised:
        list(inputs.batches(batch_size=2))
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'bad.png'}: ") and "\n" not in message and "Traceback" not in message


@pytest.mark.slow
def test_files_decoded_by_worker_processes_train_the_model_decoded_in_process(tmp_path):
    root = write_cases(tmp_path, 96)
    train_set, val_set = open_dataset(root, "train"), open_dataset(root, "val")
    config = TrainConfig(epochs=2, batch_size=16)
    in_process, _ = train(config, train_set, val_set, TINY)
    by_workers, card = train(config, train_set, val_set, TINY, workers=1)
    assert card.training.train_size == len(train_set) and len(card.training.history) == 2
    reference = in_process.state_dict()
    assert all(torch.equal(reference[name], value) for name, value in by_workers.state_dict().items())


def test_the_progress_of_another_run_or_another_file_is_refused(tmp_path):
    checkpoint = tmp_path / "run.progress"
    data = synthetic(0, 48, 64), synthetic(1, 16, 64)
    model_config = ModelConfig(("nodule", "effusion", "cardiomegaly"), input_size=64, widths=(4, 8, 8, 8))
    train(TrainConfig(epochs=1, batch_size=16), *data, model_config, checkpoint=checkpoint)
    with pytest.raises(TrainingError, match=r"is the progress of another run \(config differ\): remove it"):
        train(TrainConfig(epochs=1, batch_size=16, seed=1), *data, model_config, checkpoint=checkpoint)
    checkpoint.write_bytes(b"not a progress file")
    with pytest.raises(TrainingError, match=r"is not a training progress file .*give another --checkpoint"):
        train(TrainConfig(epochs=1, batch_size=16), *data, model_config, checkpoint=checkpoint)


@pytest.mark.slow
def test_a_training_run_killed_after_an_epoch_resumes_to_the_model_one_run_gives(tmp_path):
    root = write_cases(tmp_path / "data", 96)
    command = [sys.executable, "-m", "medattn", "train", "--data", str(root), "--input-size", "64", "--epochs", "3"]
    command += ["--batch-size", "16", "--explain-cases", "0"]
    whole = subprocess.run(
        [*command, "--out", str(tmp_path / "whole"), "--checkpoint", str(tmp_path / "whole.progress")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert whole.returncode == 0, whole.stderr[-2000:]

    resumed = [*command, "--out", str(tmp_path / "resumed"), "--checkpoint", str(tmp_path / "resumed.progress")]
    killed = subprocess.Popen(resumed, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (tmp_path / "resumed.progress").exists() and killed.poll() is None:
        time.sleep(0.02)
    killed.kill()  # SIGKILL: nothing is tidied up
    assert killed.wait(timeout=60) == -9
    again = subprocess.run(resumed, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    said = [line for line in again.stderr.splitlines() if "resuming from" in line]
    assert len(said) == 1 and any(f"after epoch {epoch} of 3" in said[0] for epoch in (1, 2)), said

    expected, got = (load_file(tmp_path / run / WEIGHTS_FILE) for run in ("whole", "resumed"))
    assert expected.keys() == got.keys() and all(torch.equal(expected[name], got[name]) for name in expected)


PEAK_OF_ONE_RUN = """
import resource, sys
from medattn.model.network import ModelConfig
from medattn.training.datasets import open_dataset
from medattn.training.train import TrainConfig, train
config = ModelConfig(("clear", "nodule"), input_size=512, widths=(4, 8, 8, 8))
train_set, val_set = open_dataset(sys.argv[1], "train"), open_dataset(sys.argv[1], "val")
train(TrainConfig(epochs=1, batch_size=32), train_set, val_set, config)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


@pytest.mark.slow
def test_training_memory_does_not_grow_with_the_set_of_files(tmp_path):
    """Each run in a process of its own, at 512 px, where a held input takes 1 MB: 280 more files held would add
    about 280 MB (and their pixels as much again, as training held them before)."""
    peaks = []
    for count in (120, 400):  # both with full training batches and a full evaluation batch of 16 at 512 px
        folder = write_cases(tmp_path / str(count), count, size=512)
        run = subprocess.run([sys.executable, "-c", PEAK_OF_ONE_RUN, str(folder)], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
        peaks.append(int(run.stdout.split()[-1]))
    # MB. Held, the 280 inputs alone would add 280 (benchmarks/streaming.py: 178 MB per 100 files held with their
    # pixels, 5.4 read batch by batch); measured here 92 in one run, the heap's high-water mark creeping with batches.
    assert peaks[1] - peaks[0] < 140, peaks
