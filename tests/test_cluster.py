"""Scoring on a real local Ray cluster (a head node with two workers): the rows local scoring gives, a
worker killed mid-run and a killed driver losing or doubling nothing."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from tests.conftest import PYDICOM_DATA_FILES, PYDICOM_FILES, RayCluster, running_ray_cluster
from tests.loopback import LoopbackNamespace
from tests.test_batch import ENV, ROOT, write_cases

pytest.importorskip("ray", reason="Ray is an optional install: pip install -r requirements-cluster.txt")
pytestmark = pytest.mark.slow
CLUSTER_TESTS_SECRET = "the cluster tests share this secret, 32 bytes or more"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> RayCluster:
    """A head node with two worker CPUs, started as an operator would, with its own token, on loopback."""
    with running_ray_cluster(tmp_path_factory.mktemp("ray")) as started:
        yield started


def score(cluster: RayCluster, sources: list[Path], out: Path, *options: str, wait: bool = True, **environment):
    """``medattn score`` as a driver of ``cluster``, inside its network, with its token; a variable given as
    None is left out of the driver's environment."""
    command = [sys.executable, "-m", "medattn", "score", *map(str, sources), "--out", str(out), *options]
    # One secret for every run, so that local and cluster rows name the same file by the same key.
    environment = {
        **ENV,
        **cluster.environment,
        "MEDATTN_DATA_DIR": str(out.parent / "data"),
        "MEDATTN_SECRET": CLUSTER_TESTS_SECRET,
        **environment,
    }
    environment = {key: value for key, value in environment.items() if value is not None}
    command = cluster.namespace.command(command)
    if not wait:
        return subprocess.Popen(command, cwd=ROOT, env=environment, stderr=subprocess.PIPE, start_new_session=True)
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)


def scored(finished: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
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


def bounded(pid: int, seconds: float = 60) -> bool:
    """Whether the process gets an address-space limit within ``seconds`` (an actor sets it once its model is
    loaded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        limits = Path(f"/proc/{pid}/limits").read_text()
        if re.search(r"^Max address space\s+\d+\s+\d+\s+bytes", limits, re.M):
            return True
        time.sleep(0.5)
    return False


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
    local_scoring = [sys.executable, "-m", "medattn", "score", folder / "files", "--out", folder / "local.parquet"]
    environment = {**ENV, "MEDATTN_DATA_DIR": str(folder / "data"), "MEDATTN_SECRET": CLUSTER_TESTS_SECRET}
    subprocess.run([*map(str, local_scoring), "--workers", "0"], cwd=ROOT, env=environment, check=True)
    local = table(folder / "local.parquet")
    assert len(local) == 204 and sum(row["status"] == "error" for row in local.values()) == 2
    return folder / "files", folder / "local.parquet"


def test_a_mixed_archive_scores_as_it_does_locally_though_a_worker_is_killed_mid_run(cluster, archive, tmp_path):
    files, local = archive
    out = tmp_path / "cluster"
    run = score(cluster, [files], out, "--cluster", cluster.address, wait=False)
    wait_for_a_batch(run, out)
    assert bounded(actor_pids()[0])  # decoding in an actor is bounded as in the app's decoder workers
    os.kill(actor_pids()[0], signal.SIGKILL)
    assert run.wait(timeout=300) == 0, run.stderr.read().decode()[-3000:]
    on_cluster = table(out)
    assert_same_rows(on_cluster, table(local))
    assert "path" not in next(iter(on_cluster.values()))  # files known by their keyed hash only
    rerun = scored(score(cluster, [files], out, "--cluster", cluster.address))
    assert "Nothing to score: all 204 files" in rerun.stdout


def test_a_rerun_after_the_driver_is_killed_scores_every_file_once(cluster, archive, tmp_path):
    files, local = archive
    out = tmp_path / "cluster"
    run = score(cluster, [files], out, "--cluster", cluster.address, wait=False)
    wait_for_a_batch(run, out)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert parts(out) < 13, "the run had finished before it was killed"
    scored(score(cluster, [files], out, "--cluster", cluster.address))
    assert_same_rows(table(out), table(local))


def test_every_process_of_the_cluster_listens_on_loopback_alone(cluster):
    ours = [int(proc.name) for proc in Path("/proc").glob("[0-9]*") if cluster.temp_dir.encode() in _cmdline(proc)]
    assert len(ours) >= 2, "the GCS server and the raylet name the cluster's temporary folder"
    assert all(cluster.namespace.holds(pid) for pid in ours)
    interfaces = subprocess.run(cluster.namespace.command(["ip", "-o", "link"]), capture_output=True, text=True)
    assert [line.split(":")[1].strip() for line in interfaces.stdout.splitlines()] == ["lo"]
    outside = subprocess.run(["ss", "-ltnupH"], capture_output=True, text=True, check=True).stdout
    assert not {int(pid) for pid in re.findall(r"pid=(\d+)", outside)} & set(ours)


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def test_a_driver_without_the_clusters_token_gets_a_message(cluster, tmp_path):
    (tmp_path / "wrong").write_text("0" * 64)
    write_cases(tmp_path / "files", 1, size=128)
    for token in {"RAY_AUTH_TOKEN_PATH": str(tmp_path / "wrong")}, {"RAY_AUTH_TOKEN_PATH": None, "HOME": str(tmp_path)}:
        refused = score(cluster, [tmp_path / "files"], tmp_path / "out", "--cluster", cluster.address, **token)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        # The last line is ours; Ray's own log lines (its retries) may come before it.
        message = refused.stderr.splitlines()[-1]
        assert message.startswith(f"error: The Ray cluster at {cluster.address} asks for its token"), refused.stderr
        assert not (tmp_path / "out").exists()


def test_a_cluster_started_for_the_run_makes_its_own_token_and_leaves_home_alone(tmp_path):
    write_cases(tmp_path / "files", 3, size=128)
    home = tmp_path / "home"
    home.mkdir()
    environment = {key: value for key, value in ENV.items() if not key.startswith("RAY_AUTH")} | {
        "HOME": str(home),
        "MEDATTN_DATA_DIR": str(tmp_path / "data"),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    with LoopbackNamespace() as namespace:  # Ray's own start-up binds to every interface
        command = [sys.executable, "-m", "medattn", "score", tmp_path / "files", "--out", tmp_path / "out"]
        finished = subprocess.run(
            namespace.command([*command, "--cluster", "local"]), cwd=ROOT, env=environment, capture_output=True
        )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert len(table(tmp_path / "out")) == 3
    assert not (home / ".ray").exists()
