"""Batch scoring of archives: real files, the real model, real worker processes, a real interruption."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from medattn import load_scan
from medattn.batch import find_inputs, score
from medattn.errors import BatchError
from medattn.training.synthetic import generate_case
from tests.conftest import PYDICOM_FILES

ROOT = Path(__file__).resolve().parents[1]


def write_cases(folder: Path, count: int, size: int = 64) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"case-{index:04d}.png"
        Image.fromarray(np.round(generate_case(77, index, size).image * 65535).astype(np.uint16)).save(path)
        paths.append(path)
    return paths


def rows(out: Path) -> list[dict]:
    with out.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def archive(tmp_path) -> Path:
    folder = tmp_path / "archive"
    write_cases(folder / "ward-a", 5)
    shutil.copy(PYDICOM_FILES / "CT_small.dcm", folder / "ward-a" / "ct.dcm")
    (folder / "ward-b").mkdir()
    shutil.copy(PYDICOM_FILES / "rtplan.dcm", folder / "ward-b" / "plan.dcm")
    (folder / "ward-b" / "notes.txt").write_text("not a scan")
    (folder / ".DS_Store").write_bytes(b"hidden files are left out")
    return folder


def test_an_archive_is_scored_like_one_file_at_a_time_and_bad_files_are_listed(predictor, archive, tmp_path):
    out = tmp_path / "results.csv"
    timings = score(predictor, [str(archive)], out, workers=2, batch_size=3, progress=False)
    results = {Path(row["path"]).name: row for row in rows(out)}
    assert len(results) == 8 and (timings.files, timings.failed) == (8, 2)
    assert "holds no image (it is an RT Plan)" in results["plan.dcm"]["error"]
    assert results["notes.txt"]["status"] == "error" and results["notes.txt"]["probability_nodule"] == ""
    assert (
        float(results["ct.dcm"]["unlikeness"])
        > predictor.card.unlikeness.threshold
        > float(results["case-0000.png"]["unlikeness"])
    )
    for name in ("case-0000.png", "case-0003.png", "ct.dcm"):  # batched in workers = one at a time here
        alone = predictor.predict(load_scan(archive / ("ward-a") / name))
        for finding, probability in alone.probabilities.items():
            assert float(results[name][f"probability_{finding}"]) == pytest.approx(probability, abs=2e-6)
        assert results[name]["labels"].split(";") == (alone.labels or [""])


def test_globs_and_manifests_name_the_inputs(archive, tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,note\narchive/ward-a/case-0001.png,x\narchive/ward-b/plan.dcm,y\n")
    found = find_inputs([str(archive / "**" / "case-000[0-2].png"), str(manifest)])
    assert [p.name for p in found] == ["case-0000.png", "case-0001.png", "case-0002.png", "plan.dcm"]
    with pytest.raises(BatchError, match="matches no file"):
        find_inputs([str(tmp_path / "nowhere" / "*.dcm")])


def test_a_rerun_skips_what_is_scored_and_parquet_output_works(predictor, archive, tmp_path):
    out = tmp_path / "results.parquet"
    first = score(predictor, [str(archive / "ward-a")], out, workers=0, progress=False)
    again = score(predictor, [str(archive)], out, workers=0, progress=False)
    assert (first.files, again.files, again.skipped) == (6, 2, 6)
    table = pq.read_table(out)
    assert table.num_rows == 8 and len(set(table.column("path").to_pylist())) == 8
    assert table.schema.field("probability_effusion").type == "double"
    assert not (tmp_path / "results.parquet.partial.csv").exists()
    with pytest.raises(BatchError, match=r"must end in \.csv or \.parquet"):
        score(predictor, [str(archive)], tmp_path / "results.xlsx", progress=False)


def test_overlays_are_written_for_readable_files(predictor, archive, tmp_path):
    score(predictor, [str(archive)], tmp_path / "r.csv", overlays=tmp_path / "overlays", workers=0, progress=False)
    written = sorted((tmp_path / "overlays").glob("*.overlay.png"))
    assert len(written) == 6  # five PNGs and the CT; not the plan or the text file
    overlay = np.asarray(Image.open(next(p for p in written if p.name.startswith("ct-"))))
    assert overlay.shape == (128, 128, 3)  # the CT's own geometry (below the 512 px preview cap)


@pytest.mark.slow
def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    write_cases(tmp_path / "archive", 240)
    out = tmp_path / "results.csv"
    command = [sys.executable, "-m", "medattn", "score", str(tmp_path / "archive"), "--out", str(out)]
    command += ["--batch-size", "16", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while not out.exists() or len(rows(out)) < 32:  # killed once a few batches are written
        assert run.poll() is None, run.stderr.read().decode()[-2000:]
        time.sleep(0.02)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    interrupted = len(rows(out))
    assert 32 <= interrupted < 240
    resumed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{240 - interrupted} files scored" in resumed.stdout
    assert f"{interrupted} were already there" in resumed.stdout
    paths = [row["path"] for row in rows(out)]
    assert len(paths) == len(set(paths)) == 240


@pytest.mark.slow
def test_memory_does_not_grow_with_the_archive(predictor, tmp_path):
    """Results stream to disk batch by batch: four times the files, about the same peak memory."""
    peaks = []
    for count in (60, 240):
        folder = tmp_path / f"archive-{count}"
        write_cases(folder, count, size=256)
        tracemalloc.start()
        score(predictor, [str(folder)], tmp_path / f"r{count}.csv", batch_size=16, workers=0, progress=False)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.3 * peaks[0], peaks


def test_half_a_row_left_by_a_kill_is_scored_again(predictor, archive, tmp_path):
    out = tmp_path / "results.csv"
    score(predictor, [str(archive / "ward-a")], out, workers=0, progress=False)
    content = out.read_bytes()
    last_row = content.rfind(b"\n", 0, len(content) - 1) + 1
    out.write_bytes(content[: last_row + 20])  # the last row cut mid-path
    again = score(predictor, [str(archive / "ward-a")], out, workers=0, progress=False)
    assert again.files == 1
    assert sorted(Path(row["path"]).name for row in rows(out)) == sorted(p.name for p in (archive / "ward-a").iterdir())
