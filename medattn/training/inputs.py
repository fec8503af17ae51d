"""A labelled set's model inputs, as training and evaluation reach them.

Images already in memory (the synthetic benchmark, a MedMNIST file) are prepared once and held: their inputs are
smaller than the images. Files (folders, manifests, the public chest datasets: ``datasets.ImageFiles``) are
decoded and prepared batch by batch through a PyTorch ``DataLoader``, in worker processes where asked for, so
that memory does not grow with the set: NIH ChestX-ray14's 112,120 films at 512 px would take 117 GB as inputs.
Either way each input goes through ``Preprocessing.prepare``, the path the app and batch scoring use.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from medattn.errors import DatasetError
from medattn.model.preprocessing import Letterbox, Preprocessing
from medattn.training.datasets import ImageFiles

Batch = tuple[torch.Tensor, list[Letterbox]]  # inputs (B, channels, S, S) and where each image lies in its input
# Inputs run through the model at once when nothing is learned (evaluation, features): 256 at 128 px, 16 at 512 px,
# so that memory stays the same whatever the input size.
PIXELS_AT_ONCE = 256 * 128 * 128


def letterboxed_inputs(images: Sequence[np.ndarray], recipe: Preprocessing) -> Batch:
    """The model inputs (N, channels, S, S) of ``images``, and where each image lies in its input."""
    prepared = [recipe.prepare(image) for image in images]
    return torch.from_numpy(np.stack([model_input for model_input, _ in prepared])), [box for _, box in prepared]


def _collated(items: list[tuple[torch.Tensor | None, Letterbox | str]]) -> Batch | tuple[None, str]:
    """A batch; or, where a file could not be read, (None, what was wrong), so that the error is raised where the
    batch arrives: raised in a worker, it would reach the user with the worker's traceback as its message."""
    if failed := [said for model_input, said in items if model_input is None]:
        return None, failed[0]
    return torch.stack([model_input for model_input, _ in items]), [box for _, box in items]


class ModelInputs(Dataset):
    """The model input and letterbox of each of ``images`` through ``recipe``: held, or read when asked for if
    the images are files; ``workers`` processes decode files for ``batches`` (0: this process does)."""

    def __init__(self, images: Sequence[np.ndarray], recipe: Preprocessing, workers: int = 0):
        self.images, self.recipe, self.workers = images, recipe, workers
        self.streamed = isinstance(images, ImageFiles)
        self._held = None if self.streamed else letterboxed_inputs(images, recipe)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | None, Letterbox | str]:
        """The input and its letterbox; for a file that cannot be read, (None, what was wrong)."""
        if self._held is not None:
            return self._held[0][index], self._held[1][index]
        try:
            model_input, box = self.recipe.prepare(self.images[index])
        except DatasetError as error:
            return None, str(error)
        return torch.from_numpy(model_input), box

    def batches(
        self, order: Sequence[int] | torch.Tensor | None = None, batch_size: int | None = None
    ) -> Iterator[Batch]:
        """The inputs in ``order`` (all, in turn, by default), ``batch_size`` at a time (by default PIXELS_AT_ONCE);
        the last may be short."""
        order = torch.arange(len(self)) if order is None else torch.as_tensor(order)
        batch_size = batch_size or max(1, PIXELS_AT_ONCE // self.recipe.input_size**2)
        chunks = [chunk.tolist() for chunk in order.split(batch_size) if len(chunk)]  # an empty set: one empty chunk
        if self._held is not None:  # a gather from the held tensor: no per-item work
            for chunk in chunks:
                yield self._held[0][chunk], [self._held[1][i] for i in chunk]
            return
        # Spawned, not forked: workers forked from a process already running threads hung in CI (docs/operations.md).
        loader = DataLoader(self, batch_sampler=chunks, num_workers=self.workers, collate_fn=_collated,
                            multiprocessing_context="spawn" if self.workers else None)  # fmt: skip
        for model_inputs, boxes in loader:
            if model_inputs is None:
                raise DatasetError(boxes)
            yield model_inputs, boxes
