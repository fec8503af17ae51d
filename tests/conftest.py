"""Shared fixtures: real DICOM files shipped by pydicom and pydicom-data, and the default model."""

from __future__ import annotations

import io
import os
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
import sqlalchemy as sa

from medattn import Predictor, Scan, load_scan
from medattn.review.store import ReviewStore

# Read from the installed packages' folders: pydicom.data.get_testdata_file would try the network.
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
PYDICOM_DATA_FILES = Path(find_spec("data_store").origin).parent / "data"
# The lung fields of the chest CR RG1_J2KR.dcm, as ((top, bottom), (left, right)) shares of the image: the
# Lung preset's test and the inserted-nodule test read them.
CHEST_CR_LUNG_FIELDS = [((0.2, 0.6), (0.12, 0.33)), ((0.2, 0.6), (0.64, 0.85))]
# Likewise for the synthetic normal sample, clear of its heart: the inserted-nodule test's control.
SYNTHETIC_LUNG_FIELDS = [((0.3, 0.6), (0.22, 0.4)), ((0.3, 0.5), (0.62, 0.78))]


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
POSTGRES_URL = os.environ.get("MEDATTN_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not POSTGRES_URL, reason="no PostgreSQL"))]


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'reviews.sqlite3'}"
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as connection:  # a fresh, empty database for every test
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return POSTGRES_URL


@pytest.fixture
def store(store_url):
    opened = ReviewStore(store_url)
    yield opened
    opened.close()
