"""Shared fixtures: real DICOM files shipped by pydicom and pydicom-data, and the default model."""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
import requests
import sqlalchemy as sa
import torch

from medattn import Predictor, Scan, load_scan
from medattn.review.store import ReviewStore
from tests.loopback import LoopbackNamespace

# Read from the installed packages' folders: pydicom.data.get_testdata_file would try the network.
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
PYDICOM_DATA_FILES = Path(find_spec("data_store").origin).parent / "data"
# The lung fields of the chest CR RG1_J2KR.dcm, as ((top, bottom), (left, right)) shares of the image: the
# Lung preset's test and the inserted-nodule test read them.
CHEST_CR_LUNG_FIELDS = [((0.2, 0.6), (0.12, 0.33)), ((0.2, 0.6), (0.64, 0.85))]
# Likewise for the synthetic normal sample, clear of its heart: the inserted-nodule test's control.
SYNTHETIC_LUNG_FIELDS = [((0.3, 0.6), (0.22, 0.4)), ((0.3, 0.5), (0.62, 0.78))]


def pytest_configure(config: pytest.Config) -> None:
    """Tests run in several processes (pytest-xdist): each, and every program it starts (the app's server, the
    command line, torchrun, Ray), gets its share of the cores, as ``medattn.threads`` plans for the app. Two test
    processes of 2 threads each on 2 cores took the model-heavy files 96 s instead of 62 s."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    share = max(1, (os.cpu_count() or 1) // workers)
    os.environ.setdefault("OMP_NUM_THREADS", str(share))
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files that hold slow tests first, each file's tests in their own order: the two processes that run the
    files (pytest-xdist) then end on quick files, not one process on a long file while the other waits."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


def chest_cr_pixels(side: int = 512) -> np.ndarray:
    """The chest CR RG1_J2KR.dcm's model pixels, resized to ``side`` x ``side``: where nodules are inserted."""
    pixels = load_scan(PYDICOM_DATA_FILES / "RG1_J2KR.dcm").model_pixels(0)
    return cv2.resize(pixels, (side, side), interpolation=cv2.INTER_AREA)


def real_dicom_files() -> list[Path]:
    return sorted(PYDICOM_FILES.rglob("*.dcm")) + sorted(PYDICOM_DATA_FILES.glob("*.dcm"))


def all_frames(scan: Scan) -> np.ndarray:
    """Every frame stacked (n, H, W[, 3]): for comparing whole files; the app decodes one frame at a time."""
    return np.stack([scan.frame(index) for index in range(scan.frame_count)])


def dicom_with(path: Path, **attributes) -> bytes:
    """The DICOM file at ``path`` with these attributes (keyword=value) set, as bytes."""
    ds = pydicom.dcmread(path)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def model_with_diffuse_attention(finding: str, directory: Path) -> Path:
    """The default model with ``finding``'s query zeroed, saved in ``directory``: its scores QK^T are all 0, so
    its attention is uniform over the tokens (spread 1, peak 1x uniform), a diffuse map the app must say is one.
    The default model's own attention is focal on every benchmark case (``benchmarks/map_scale.py``)."""
    from medattn.assets import DEFAULT_MODEL_DIR
    from medattn.model.checkpoint import load_model, save_model

    model, card = load_model(DEFAULT_MODEL_DIR)
    with torch.no_grad():
        model.pool.queries[card.classes.index(finding)] = 0
    return save_model(model, card.with_changes(version=f"{card.version}-diffuse-{finding}"), directory)


@pytest.fixture(scope="session")
def predictor() -> Predictor:
    return Predictor.default()


@pytest.fixture(scope="session")
def ct_file() -> Path:
    return PYDICOM_FILES / "CT_small.dcm"


@pytest.fixture(scope="session")
def cr_jpeg2000_file() -> Path:
    """A real computed radiograph, JPEG 2000 lossless (pydicom-data's RG1_J2KR)."""
    return PYDICOM_DATA_FILES / "RG1_J2KR.dcm"


# The review store (and the reader studies kept in it) is tested on a SQLite file, and on PostgreSQL where
# .ci/run could start one.
# Tests run in parallel processes (pytest-xdist): each has a schema of its own in the one test database, named by
# the address's search_path, as medattn keeps options a PostgreSQL address gives.
POSTGRES_SCHEMA = f"tests_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
POSTGRES_URL = os.environ.get("MEDATTN_TEST_POSTGRES_URL") and (
    f"{os.environ['MEDATTN_TEST_POSTGRES_URL']}?options=-csearch_path%3D{POSTGRES_SCHEMA}"
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason="no PostgreSQL"))]


def empty_postgres() -> str:
    """The test PostgreSQL database, emptied (a fresh one for every test); skips where there is none."""
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL")
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {POSTGRES_SCHEMA} CASCADE; CREATE SCHEMA {POSTGRES_SCHEMA}"))
    engine.dispose()
    return POSTGRES_URL


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'reviews.sqlite3'}" if request.param == "sqlite" else empty_postgres()


@pytest.fixture
def store(store_url):
    opened = ReviewStore(store_url)
    yield opened
    opened.close()


# A real DICOMweb server: Debian's Orthanc with its DICOMweb plugin, started once per test session on free
# ports, with a password, its storage in a temporary folder. .ci/run installs both packages.
ORTHANC = Path("/usr/sbin/Orthanc")
ORTHANC_DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


@dataclass(frozen=True)
class OrthancServer:
    rest: str  # Orthanc's own REST API, for setting up and clearing
    user: str
    password: str

    @property
    def dicomweb(self) -> str:
        return f"{self.rest}/dicom-web"

    def clear(self) -> None:
        """Delete every study, so that each test starts from an empty server."""
        auth = (self.user, self.password)
        for study in requests.get(f"{self.rest}/studies", auth=auth, timeout=30).json():
            requests.delete(f"{self.rest}/studies/{study}", auth=auth, timeout=30).raise_for_status()

    def upload(self, path: Path) -> None:
        """Put a file on the server as a modality would send it (Orthanc's REST upload)."""
        auth = (self.user, self.password)
        requests.post(f"{self.rest}/instances", data=path.read_bytes(), auth=auth, timeout=60).raise_for_status()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_orthanc(folder: Path) -> Iterator[OrthancServer]:
    """Orthanc with its DICOMweb plugin on free ports, a password and its storage in ``folder``."""
    port, user, password = free_port(), "medattn", "orthanc-test-password"
    config = {
        "Name": "medattn-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": port,
        "DicomPort": free_port(),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {user: password},
        "Plugins": [str(ORTHANC_DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    # Orthanc 1.10 listens on every interface whatever its configuration: it runs where loopback is all there is.
    namespace = LoopbackNamespace()
    with (folder / "orthanc.log").open("w") as log:
        command = namespace.command([ORTHANC, folder / "orthanc.json"])
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        server = OrthancServer(f"http://127.0.0.1:{namespace.forward(port)}", user, password)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{server.rest}/system", auth=(user, password), timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Orthanc did not start: {(folder / 'orthanc.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)
        namespace.close()


@dataclass(frozen=True)
class RayCluster:
    address: str
    environment: dict[str, str]  # what a driver of this cluster needs: token authentication and the token's file
    namespace: LoopbackNamespace  # the cluster's network: a driver runs its command in it
    temp_dir: str  # Ray's own files; every process of the cluster names it on its command line


RAY = Path(sys.executable).parent / "ray"


@contextmanager
def running_ray_cluster(folder: Path, cpus: int = 2) -> Iterator[RayCluster]:
    """``ray start --head`` as an operator starts one, with token authentication and a token of its own (a
    file in ``folder``, never the user's ``~/.ray``), in a loopback-only network namespace (Ray binds its
    ports to every interface); stopped by signalling the ``ray start --block`` process, which ends what it
    started and nothing else of Ray on the machine."""
    token = folder / "ray_auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    environment = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port = free_port()
    start = [RAY, "start", "--head", "--block", "--num-cpus", cpus, "--port", port, "--temp-dir", temp_dir]
    start += ["--node-ip-address", "127.0.0.1", "--include-dashboard", "false"]
    with LoopbackNamespace() as namespace, (folder / "ray.log").open("w") as log:
        head = subprocess.Popen(
            namespace.command(start), env={**os.environ, **environment}, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 120
            while "Ray runtime started" not in (folder / "ray.log").read_text():
                if head.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Ray did not start: {(folder / 'ray.log').read_text()[-3000:]}")
                time.sleep(0.2)
            yield RayCluster(f"127.0.0.1:{port}", environment, namespace, temp_dir)
        finally:
            head.terminate()
            head.wait(timeout=60)
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def orthanc_server(tmp_path_factory) -> Iterator[OrthancServer]:
    if not (ORTHANC.exists() and ORTHANC_DICOMWEB_PLUGIN.exists()):
        pytest.skip("Orthanc is not installed: apt-get install orthanc orthanc-dicomweb")
    with running_orthanc(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture
def orthanc(orthanc_server) -> OrthancServer:
    orthanc_server.clear()
    return orthanc_server
