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

from medattn import load_scan, runtime
from medattn.batch import find_inputs, score
from medattn.benchmark import generate_case
from medattn.errors import BatchError
from tests.conftest import PYDICOM_DATA_FILES, PYDICOM_FILES

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
    write_cases(folder / "ward-a", 5, size=128)  # below the model's input size, a case is called unlike
    shutil.copy(PYDICOM_FILES / "CT_small.dcm", folder / "ward-a" / "ct.dcm")
    (folder / "ward-b").mkdir()
    shutil.copy(PYDICOM_FILES / "rtplan.dcm", folder / "ward-b" / "plan.dcm")
    (folder / "ward-b" / "notes.txt").write_text("not a scan")
    (folder / ".DS_Store").write_bytes(b"hidden files are left out")
    return folder


def test_an_archive_is_scored_like_one_file_at_a_time_and_bad_files_are_listed(predictor, archive, tmp_path):
    out = tmp_path / "results.csv"
    timings = score(predictor, [str(archive)], out, workers=2, batch_size=3, progress=False, keep_paths=True)
    results = {Path(row["path"]).name: row for row in rows(out)}
    assert len(results) == 8 and (timings.files, timings.failed) == (8, 2)
    assert "holds no image (it is an RT Plan)" in results["plan.dcm"]["error"]
    assert results["notes.txt"]["status"] == "error" and results["notes.txt"]["probability_nodule"] == ""
    assert (
        float(results["ct.dcm"]["unlikeness"])
        > predictor.card.unlikeness.threshold
        > float(results["case-0000.png"]["unlikeness"])
    )
    assert (results["ct.dcm"]["withheld"], results["case-0000.png"]["withheld"]) == ("yes", "no")
    assert float(results["case-0000.png"]["noise"]) < predictor.card.unlikeness.noise_limit
    for name in ("case-0000.png", "case-0003.png", "ct.dcm"):  # batched in workers = one at a time here
        alone = predictor.predict(load_scan(archive / ("ward-a") / name))
        for finding, probability in alone.probabilities.items():
            assert float(results[name][f"probability_{finding}"]) == pytest.approx(probability, abs=2e-6)
        assert results[name]["labels"].split(";") == (alone.labels or [""])
        assert float(results[name]["noise"]) == pytest.approx(alone.noise, abs=1e-4)  # measured in the letterbox


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
    assert table.num_rows == 8 and len(set(table.column("file_key").to_pylist())) == 8
    assert table.schema.field("probability_effusion").type == "double"
    assert not (tmp_path / "results.parquet.partial.csv").exists()
    with pytest.raises(BatchError, match=r"must end in \.csv or \.parquet"):
        score(predictor, [str(archive)], tmp_path / "results.xlsx", progress=False)


def test_overlays_are_written_for_readable_files(predictor, archive, tmp_path):
    overlays = tmp_path / "overlays"
    score(predictor, [str(archive)], tmp_path / "r.csv", overlays=overlays, workers=0, progress=False, keep_paths=True)
    written = sorted(overlays.glob("*.overlay.png"))
    assert len(written) == 6  # five PNGs and the CT; not the plan or the text file
    overlay = np.asarray(Image.open(next(p for p in written if p.name.startswith("ct-"))))
    assert overlay.shape == (128, 128, 3)  # the CT's own geometry (below the 512 px preview cap)


def scored(out: Path) -> dict[str, tuple]:
    """file key -> everything else in its row, from a CSV or Parquet output."""
    if out.suffix == ".parquet":
        table = pq.read_table(out).to_pylist()
        return {row.pop("file_key"): tuple(str(v) for v in row.values()) for row in table}
    return {row.pop("file_key"): tuple(row.values()) for row in rows(out)}


def cli(archive: Path, out: Path) -> list[str]:
    command = [sys.executable, "-m", "medattn", "score", str(archive), "--out", str(out)]
    return [*command, "--batch-size", "16", "--workers", "1"]


ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """240 cases, and what one uninterrupted run gives for them, as CSV and as Parquet."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    write_cases(folder / "archive", 240)
    references = {suffix: folder / f"reference{suffix}" for suffix in (".csv", ".parquet")}
    for reference in references.values():
        subprocess.run(cli(folder / "archive", reference), cwd=folder, env=ENV, check=True, capture_output=True)
    return folder / "archive", references


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["starting up", "mid-batch"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_run_killed_at_any_stage_resumes_to_what_one_run_gives(tmp_path, stage, suffix, uninterrupted):
    archive, references = uninterrupted
    reference = references[suffix]
    out = tmp_path / f"results{suffix}"
    journal = out if suffix == ".csv" else tmp_path / "results.parquet.partial.csv"
    run = subprocess.Popen(cli(archive, out), cwd=tmp_path, env=ENV, stderr=subprocess.PIPE)
    if stage == "starting up":
        time.sleep(0.5)  # torch is still importing: nothing is written yet
    else:
        while not journal.exists() or len(rows(journal)) < 32:
            assert run.poll() is None, run.stderr.read().decode()[-2000:]
            time.sleep(0.02)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    resumed = subprocess.run(cli(archive, out), cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert scored(out) == scored(reference) and len(scored(out)) == 240
    # And the killed run's decoding workers do not outlive it (they poll for their parent every 5 s).
    deadline = time.monotonic() + 15
    while left_in(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left_in(tmp_path)


def left_in(folder: Path) -> list[int]:
    """Processes still running with ``folder`` as their working directory."""
    running = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if Path(os.readlink(proc / "cwd")) == folder:
                running.append(int(proc.name))
        except OSError:
            continue
    return running


def test_a_journal_killed_before_its_header_or_mid_row_resumes_whole(predictor, archive, tmp_path):
    reference = tmp_path / "reference.csv"
    score(predictor, [str(archive)], reference, workers=0, progress=False)
    out = tmp_path / "results.csv"
    out.write_bytes(b"")  # killed before the header reached the disk
    score(predictor, [str(archive / "ward-a")], out, workers=0, progress=False)
    content = out.read_bytes()
    last_row = content.rfind(b"\n", 0, len(content) - 1) + 1
    out.write_bytes(content[: last_row + 20])  # the last row cut mid-way
    again = score(predictor, [str(archive)], out, workers=0, progress=False)
    assert again.files == 3 and scored(out) == scored(reference)


def test_a_parquet_run_killed_while_writing_its_output_resumes_whole(predictor, archive, tmp_path):
    reference = tmp_path / "reference.parquet"
    score(predictor, [str(archive)], reference, workers=0, progress=False)
    out = tmp_path / "results.parquet"
    score(predictor, [str(archive / "ward-a")], out, workers=0, progress=False)
    # Killed mid-write: a half-written draft beside an intact output; then killed after the swap, before
    # the journal was removed: the same rows in the journal and in the output.
    (tmp_path / "results.parquet.writing").write_bytes(b"PAR1 half a file")
    score(predictor, [str(archive / "ward-a")], tmp_path / "journal-copy.csv", workers=0, progress=False)
    shutil.copy(tmp_path / "journal-copy.csv", tmp_path / "results.parquet.partial.csv")
    again = score(predictor, [str(archive)], out, workers=0, progress=False)
    assert again.files == 2 and scored(out) == scored(reference)


def test_outputs_name_no_path_unless_asked(predictor, archive, tmp_path):
    patient_named = archive / "ward-a" / "SMITH^JOHN 1970.png"
    shutil.copy(archive / "ward-a" / "case-0000.png", patient_named)
    shutil.copy(archive / "ward-a" / "case-0001.png", archive / "ward-a" / "=1+2.png")
    out = tmp_path / "results.csv"
    score(predictor, [str(archive)], out, overlays=tmp_path / "overlays", workers=0, progress=False)
    written = out.read_text() + " ".join(p.name for p in (tmp_path / "overlays").iterdir())
    assert "SMITH" not in written and "ward-a" not in written and "=1+2" not in written
    assert all(len(row["file_key"]) == len(row["scan_key"]) == 64 for row in rows(out))
    kept = tmp_path / "with-paths.csv"
    score(predictor, [str(archive)], kept, workers=0, progress=False, keep_paths=True)
    paths = {row["path"] for row in rows(kept)}
    assert str(patient_named) in paths and "'" + str(archive / "ward-a" / "=1+2.png") not in paths
    with pytest.raises(BatchError, match="written with other columns"):
        score(predictor, [str(archive)], kept, workers=0, progress=False)


def test_a_file_name_that_is_not_utf8_and_a_device_in_a_manifest_get_rows(predictor, archive, tmp_path):
    odd = archive / "ward-a" / os.fsdecode(b"caf\xe9.png")
    shutil.copy(archive / "ward-a" / "case-0000.png", odd)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path\n/dev/zero\n")
    out = tmp_path / "results.csv"
    score(predictor, [str(archive), str(manifest)], out, workers=0, progress=False, keep_paths=True)
    results = {row["path"]: row for row in rows(out)}
    assert results["/dev/zero"]["error"].startswith("This is not a regular file")
    assert results[str(archive / "ward-a") + "/caf\\xe9.png"]["status"] == "ok"
    again = score(predictor, [str(archive), str(manifest)], out, workers=0, progress=False, keep_paths=True)
    assert again.files == 0


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


def test_no_overlay_is_written_for_a_scan_with_text_burned_into_its_pixels(predictor, tmp_path):
    from tests.conftest import dicom_with

    folder = tmp_path / "archive"
    folder.mkdir()
    (folder / "burned.dcm").write_bytes(dicom_with(PYDICOM_FILES / "CT_small.dcm", BurnedInAnnotation="YES"))
    shutil.copy(PYDICOM_FILES / "CT_small.dcm", folder / "plain.dcm")
    out, overlays = tmp_path / "r.csv", tmp_path / "overlays"
    score(predictor, [str(folder)], out, overlays=overlays, workers=0, progress=False, keep_paths=True)
    flags = {Path(row["path"]).name: row["burned_in_annotation"] for row in rows(out)}
    assert flags == {"burned.dcm": "yes", "plain.dcm": "no"}
    assert [p.name.split("-")[0] for p in overlays.iterdir()] == ["plain"]


def test_a_folder_that_cannot_be_listed_gets_a_row_and_the_rest_is_scored(tmp_path):
    """As root, the run drops the capabilities that let root read any folder, so the lock holds."""
    write_cases(tmp_path / "archive" / "open", 2)
    write_cases(tmp_path / "archive" / "locked", 2)
    (tmp_path / "archive" / "locked").chmod(0o000)
    as_ordinary_user = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    out = tmp_path / "results.csv"
    command = [sys.executable, "-m", "medattn", "score", str(tmp_path / "archive"), "--out", str(out)]
    finished = subprocess.run(
        [*as_ordinary_user, *command, "--workers", "0", "--keep-paths"],
        cwd=ROOT,
        env={**os.environ, "MEDATTN_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
    )
    (tmp_path / "archive" / "locked").chmod(0o755)  # so that pytest can remove it
    assert finished.returncode == 0, finished.stderr
    results = {row["path"]: row for row in rows(out)}
    assert results[str(tmp_path / "archive" / "locked")]["error"].startswith("This folder could not be listed")
    assert [results[str(path)]["status"] for path in sorted((tmp_path / "archive" / "open").iterdir())] == ["ok"] * 2


def test_a_disk_that_fills_up_mid_run_is_named_in_the_message(archive, tmp_path):
    """A full disk read 'error: a file: No space left on device'. Here the file-size limit stands in for the
    disk's end (the same failing write, EFBIG instead of ENOSPC), in a process of its own."""
    import resource
    import signal

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with an error instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))

    out = tmp_path / "rows.csv"
    run = subprocess.run(
        [sys.executable, "-m", "medattn", "score", str(archive), "--out", str(out), "--workers", "0"],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, preexec_fn=small_files, timeout=300,
    )  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert f"error: {out}: File too large" in run.stderr.splitlines()  # on a line of its own, after the bar


def test_scoring_in_its_own_process_decodes_jpeg_2000_on_every_core(predictor, tmp_path, monkeypatch):
    """No worker by default: the run decodes here, and lets OpenJPEG use every core while the model waits."""
    monkeypatch.delenv("OPJ_NUM_THREADS", raising=False)
    out = tmp_path / "r.csv"
    timings = score(predictor, [str(PYDICOM_DATA_FILES / "RG1_J2KR.dcm")], out, progress=False)
    assert timings.files == 1 and len(list(csv.DictReader(out.open()))) == 1
    assert os.environ["OPJ_NUM_THREADS"] == str(runtime.cores())
