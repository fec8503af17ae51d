"""Scoring an archive on a Ray cluster: the rows ``medattn.batch`` writes, decoded and scored on the cluster.

``python -m medattn score SOURCES --out results/ --cluster ADDRESS``. Ray Data is the engine: the driver
lists the files and sends only their paths; a pool of actors (``map_batches``), each holding the model
once, reads, decodes and scores batches where the files are (a path every node can reach: a shared
filesystem); Ray Data's own Parquet writer writes the rows into the output folder, a file per block, as
blocks finish. Each row is what local scoring writes for the same file: the same decoding and batch
scoring code runs in the actors (``medattn.batch.ScanFiles`` and ``score_batch``).

Resuming: a run started again with the same output reads the file keys already written and scores only the
others. A file the killed run left half-written cannot be read and is removed, so its rows are scored
again; Ray names a block's file by the run and the write task, so a task retried after a worker died
replaces its own file rather than adding a second copy.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray
import torch

from medattn.batch import ScanFiles, Timings, find_inputs, result_fields, result_schema, score_batch
from medattn.errors import BatchError
from medattn.installation import file_key, installation_secret
from medattn.model.predictor import Predictor
from medattn.scan.elsewhere import limit_memory

LOCAL = "local"  # --cluster local: a cluster of this machine's cores, started for the run
BATCH_SIZE = 16


@dataclass
class ClusterRun:
    files: int = 0
    skipped: int = 0
    actors: int = 0


class ScoringActor:
    """One model per actor, loaded once; a batch of paths in, their rows (as a pyarrow table) out."""

    def __init__(self, model_dir: str, secret: bytes, keep_paths: bool, threads: int):
        torch.set_num_threads(threads)
        self.predictor = Predictor.load(model_dir)
        # Files are decoded here, in the actor: under the app's decoder memory bound, a file that makes a decoder
        # allocate without end is an error row, not a node whose memory runs out (the model is loaded first, so
        # the bound counts beyond it).
        limit_memory()
        if torch.cuda.is_available():  # an actor given a GPU (--gpus-per-actor) runs the model on it
            self.predictor.model.to("cuda")
        self.secret, self.keep_paths = secret, keep_paths
        self.fields = result_fields(self.predictor.classes, keep_paths)
        self.schema = result_schema(self.fields)

    def __call__(self, batch: dict[str, np.ndarray]):
        import pyarrow as pa

        paths = [Path(path) for path in batch["path"]]
        files = ScanFiles(paths, self.predictor.preprocessing, previews=False, secret=self.secret)
        keys = dict(zip(paths, batch["file_key"], strict=True))
        scored = [files[index] for index in range(len(paths))]
        rows = score_batch(self.predictor, scored, paths, keys, None, self.keep_paths, Timings())
        columns = {field.name: [_typed(row.get(field.name, ""), field.type) for row in rows] for field in self.schema}
        return pa.table(columns, schema=self.schema)


def score_on_cluster(
    model_dir: Path,
    sources: list[str],
    out: Path,
    address: str,
    keep_paths: bool = False,
    actors: int | None = None,
    gpus_per_actor: float = 0,
) -> ClusterRun:
    """Score every input file not already in the folder ``out``, on the Ray cluster at ``address``
    ("local" starts one on this machine; "auto" finds one started with ``ray start``)."""
    if out.suffix.lower() in (".csv", ".parquet") or out.is_file():
        raise BatchError(f"With --cluster, --out names a folder (Ray writes a Parquet file per block), not {out}.")
    paths = find_inputs(sources)
    secret = installation_secret()
    done = written_keys(out)
    todo = [(str(path), file_key(secret, path)) for path in paths]
    todo = [(path, key) for path, key in todo if key not in done]
    run = ClusterRun(files=len(todo), skipped=len(paths) - len(todo))
    if not todo:
        return run
    with _token_authentication(address):
        _connect(address)
        try:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            run.actors = actors or max(1, cpus if not gpus_per_actor else int(ray.cluster_resources().get("GPU", 1)))
            # A block per batch: a file per batch in the output, so a killed run loses at most the batches in flight.
            rows = ray.data.from_items(
                [{"path": path, "file_key": key} for path, key in todo], override_num_blocks=-(-len(todo) // BATCH_SIZE)
            )
            rows.map_batches(
                ScoringActor,
                fn_constructor_kwargs={
                    "model_dir": str(Path(model_dir).resolve()),
                    "secret": secret,
                    "keep_paths": keep_paths,
                    "threads": max(1, cpus // run.actors),
                },
                batch_size=BATCH_SIZE,
                compute=ray.data.ActorPoolStrategy(size=run.actors),
                num_cpus=1,
                num_gpus=gpus_per_actor,
                batch_format="numpy",
                max_restarts=-1,  # an actor whose worker died is started again, and its batch retried
                max_task_retries=-1,
            ).write_parquet(str(out), ray_remote_args={"num_cpus": 0})  # written as batches finish, not after
        finally:
            ray.shutdown()
    return run


@contextmanager
def _token_authentication(address: str) -> Iterator[None]:
    """A cluster started for this run alone (``local``) gets a token of its own, in the environment its
    processes inherit, instead of the ``~/.ray/auth_token`` that Ray would write into the user's home. A driver
    of a running cluster uses the operator's token, where Ray looks for it (``RAY_AUTH_MODE=token`` with
    ``RAY_AUTH_TOKEN_PATH``, ``RAY_AUTH_TOKEN`` or ``~/.ray/auth_token``)."""
    if address != LOCAL or os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        yield
        return
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    try:
        yield
    finally:
        del os.environ["RAY_AUTH_TOKEN"]


def _connect(address: str) -> None:
    refused = BatchError(
        f"The Ray cluster at {address} asks for its token and was not given the right one. Set "
        "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH to the token file its operator made "
        "('ray get-auth-token --generate'), or RAY_AUTH_TOKEN to the token itself."
    )
    try:
        ray.init(address=None if address == LOCAL else address, logging_level=logging.WARNING, log_to_driver=False)
    except ray.exceptions.AuthenticationError:  # no token at all
        raise refused from None
    except ConnectionError as error:  # a wrong token looks the same as no cluster, once Ray stops retrying
        if _listening(address):
            raise refused from None
        raise BatchError(f"No Ray cluster answers at {address}: {error}. Start one with 'ray start --head'.") from None


def _listening(address: str) -> bool:
    """Whether something accepts connections at ``address`` (host:port), as a cluster's GCS server would."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return True
    except (OSError, ValueError):
        return False


def written_keys(out: Path) -> set[str]:
    """The file keys already in the output folder; a file a killed run left half-written is removed."""
    import pyarrow.parquet as pq

    if not out.is_dir():
        return set()
    keys: set[str] = set()
    for part in sorted(out.glob("*.parquet")):
        try:
            keys.update(pq.read_table(part, columns=["file_key"]).column("file_key").to_pylist())
        except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError: a file cut short by a kill
            os.remove(part)
    return keys


def _typed(value: str, kind):
    import pyarrow as pa

    if kind == pa.float64():
        return float(value) if value != "" else None
    return value
