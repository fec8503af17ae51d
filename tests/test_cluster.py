"""Scoring on a real local Ray cluster (a head node with two workers): the rows local scoring gives, a
worker killed mid-run and a killed driver losing or doubling nothing."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.conftest import PYDICOM_DATA_FILES, PYDICOM_FILES, free_port
from tests.test_batch import ENV, ROOT, write_cases

pytest.importorskip("ray", reason="Ray is an optional install: pip install -r requirements-cluster.txt")
pytestmark = pytest.mark.slow
RAY = Path(sys.executable).parent / "ray"
# Token authentication, as Ray asks of every node and driver of a cluster (the token: ~/.ray/auth_token).
RAY_ENV = {**ENV, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}


@pytest.fixture(scope="module")
def cluster() -> str:
    """``ray start --head`` with two worker CPUs, as an operator would start one; its address."""
    port = free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    start = [str(RAY), "start", "--head", "--num-cpus", "2", "--port", str(port), "--temp-dir", temp]
    subprocess.run([*start, "--include-dashboard", "false"], env=RAY_ENV, check=True, capture_output=True)
    yield f"127.0.0.1:{port}"
    subprocess.run([str(RAY), "stop", "--force"], env=RAY_ENV, capture_output=True)
    shutil.rmtree(temp, ignore_errors=True)


def score(sources: list[Path], out: Path, *options: str, wait: bool = True):
    command = [sys.executable, "-m", "medattn", "score", *map(str, sources), "--out", str(out), *options]
    # One secret for every run, so that local and cluster rows name the same file by the same key.
    environment = {**RAY_ENV, "MEDATTN_DATA_DIR": str(out.parent / "data"), "MEDATTN_SECRET": "cluster tests"}
    if not wait:
        return subprocess.Popen(command, cwd=ROOT, env=environment, stderr=subprocess.PIPE, start_new_session=True)
    finished = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished


def table(out: Path) -> dict[str, dict]:
    rows = (ds.dataset(out).to_table() if out.is_dir() else pq.read_table(out)).to_pylist()
    keyed = {row["file_key"]: row for row in rows}
    assert len(keyed) == len(rows), "a file appears twice"
    return keyed


def assert_same_rows(cluster_rows: dict, local_rows: dict) -> None:
    assert cluster_rows.keys() == local_rows.keys()
    for key, local in local_rows.items():
        for column, value in local.items():
            if column.startswith("probability_") and value is not None:
                assert abs(cluster_rows[key][column] - value) <= 2e-6, column
            else:
                assert cluster_rows[key][column] == value, column


def actor_pids() -> list[int]:
    """The Ray worker processes running a scoring actor (Ray names them after the actor's class)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"ScoringActor" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def parts(out: Path) -> int:
    return len(list(out.glob("*.parquet"))) if out.is_dir() else 0


def wait_for_a_batch(run: subprocess.Popen, out: Path) -> None:
    deadline = time.monotonic() + 180
    while parts(out) < 1:
        assert run.poll() is None, run.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no batch was written"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[Path, Path]:
    """A mixed archive (200 synthetic PNGs, the real chest CR and CT, an RT plan with no image, a text file)
    and what local scoring gives for it."""
    folder = tmp_path_factory.mktemp("archive")
    write_cases(folder / "files", 200, size=256)
    shutil.copy(PYDICOM_DATA_FILES / "RG1_J2KR.dcm", folder / "files" / "chest.dcm")
    shutil.copy(PYDICOM_FILES / "CT_small.dcm", folder / "files" / "ct.dcm")
    shutil.copy(PYDICOM_FILES / "rtplan.dcm", folder / "files" / "plan.dcm")
    (folder / "files" / "notes.txt").write_text("not a scan")
    score([folder / "files"], folder / "local.parquet", "--workers", "0")
    local = table(folder / "local.parquet")
    assert len(local) == 204 and sum(row["status"] == "error" for row in local.values()) == 2
    return folder / "files", folder / "local.parquet"


def test_a_mixed_archive_scores_as_it_does_locally_though_a_worker_is_killed_mid_run(cluster, archive, tmp_path):
    files, local = archive
    out = tmp_path / "cluster"
    run = score([files], out, "--cluster", cluster, wait=False)
    wait_for_a_batch(run, out)
    os.kill(actor_pids()[0], signal.SIGKILL)
    assert run.wait(timeout=300) == 0, run.stderr.read().decode()[-3000:]
    on_cluster = table(out)
    assert_same_rows(on_cluster, table(local))
    assert "path" not in next(iter(on_cluster.values()))  # files known by their keyed hash only
    rerun = score([files], out, "--cluster", cluster)
    assert "Nothing to score: all 204 files" in rerun.stdout


def test_a_rerun_after_the_driver_is_killed_scores_every_file_once(cluster, archive, tmp_path):
    files, local = archive
    out = tmp_path / "cluster"
    run = score([files], out, "--cluster", cluster, wait=False)
    wait_for_a_batch(run, out)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert parts(out) < 13, "the run had finished before it was killed"
    score([files], out, "--cluster", cluster)
    assert_same_rows(table(out), table(local))
