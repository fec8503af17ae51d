"""The review store against real databases: a SQLite file, and PostgreSQL where .ci/run could start one."""

from __future__ import annotations

import csv
import io
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from medattn import store as store_module
from medattn.store import (
    Review,
    ReviewError,
    ReviewStore,
    StoreError,
    installation_secret,
    study_key,
)
from tests.store_writer import review as written_review

ROOT = Path(__file__).resolve().parent.parent
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


def a_review(**changes) -> Review:
    fields = {
        "reviewer": "Dr Example",
        "study_key": "k" * 64,
        "model_name": "medattn-cxr-synthetic",
        "model_version": "2026.11.24",
        "probabilities": {"nodule": 0.91, "effusion": 0.02},
        "verdicts": {"nodule": "agree", "effusion": "agree"},
        "corrected_labels": ["nodule"],
        "note": "Round opacity, right mid zone.",
    }
    return Review(**(fields | changes))


def test_a_saved_review_reads_back_whole_with_its_audit_entry(store):
    review_id = store.save(a_review(reviewer="  Dr Example  "))
    (saved,) = store.reviews()
    assert saved.id == review_id and saved.reviewer == "Dr Example"
    assert saved.probabilities == {"nodule": 0.91, "effusion": 0.02}
    assert saved.verdicts == {"nodule": "agree", "effusion": "agree"} and saved.corrected_labels == ["nodule"]
    assert saved.created_at.tzinfo is not None
    (entry,) = store.audit_entries()
    assert (entry["actor"], entry["action"], entry["review_id"]) == ("Dr Example", "review saved", review_id)


def test_saving_the_same_submission_twice_stores_it_once(store):
    review = a_review()
    assert store.save(review) == store.save(review)
    threads = [threading.Thread(target=store.save, args=(a_review(submission_id="double-click"),)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.reviews()) == 2 and len(store.audit_entries()) == 2


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"reviewer": "   "}, "Enter your name"),
        ({"verdicts": {"fracture": "agree"}}, "does not report"),
        ({"corrected_labels": ["fracture"]}, "does not report"),
        ({"verdicts": {"nodule": "maybe"}}, "must be one of agree, disagree"),
        ({"note": "x" * 5001}, "longer than 5,000"),
    ],
)
def test_an_invalid_review_is_refused_and_nothing_is_stored(store, changes, message):
    with pytest.raises(ReviewError, match=message):
        store.save(a_review(**changes))
    assert store.reviews() == [] and store.audit_entries() == []


def test_the_audit_log_cannot_be_edited_or_deleted(store):
    store.save(a_review())
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.engine.begin() as connection:
            connection.execute(sa.text(statement))
    assert store.audit_entries()[0]["actor"] == "Dr Example"


def test_study_key_is_stable_keyed_and_does_not_reveal_the_uid():
    uid = "1.2.826.0.1.3680043.8.498.12345"
    key = study_key(b"secret", uid, b"any bytes")
    assert key == study_key(b"secret", uid, b"other bytes")  # the same instance, re-exported
    assert key != study_key(b"another installation", uid, b"any bytes")
    assert uid not in key and len(key) == 64
    assert study_key(b"secret", None, b"png bytes") != study_key(b"secret", None, b"other png bytes")


def test_the_installation_secret_is_made_once_and_private(tmp_path, monkeypatch):
    monkeypatch.delenv(store_module.SECRET_ENV, raising=False)
    first = installation_secret(tmp_path)
    assert installation_secret(tmp_path) == first and len(first) == 64
    assert stat.S_IMODE((tmp_path / store_module.SECRET_FILE).stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [tmp_path / store_module.SECRET_FILE]  # no draft left behind
    monkeypatch.setenv(store_module.SECRET_ENV, "shared by every replica")
    assert installation_secret(tmp_path) == b"shared by every replica"


def test_a_store_from_a_newer_medattn_is_refused_unchanged(store_url, monkeypatch):
    ReviewStore(store_url).close()
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(
        store_module.MIGRATIONS, 2, lambda c: c.execute(sa.text("ALTER TABLE reviews ADD COLUMN site VARCHAR(20)"))
    )
    upgraded = ReviewStore(store_url)  # version 1 -> 2 through the migration
    with upgraded.engine.connect() as connection:
        assert connection.scalar(sa.select(store_module.schema_info.c.version)) == 2
        assert "site" in {c["name"] for c in sa.inspect(connection).get_columns("reviews")}
    upgraded.close()
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 1)
    with pytest.raises(StoreError, match="schema version 2, written by a newer medattn"):
        ReviewStore(store_url)


def test_csv_export_has_a_column_per_finding_and_defuses_formulas(store):
    store.save(a_review(reviewer='=HYPERLINK("http://x")', note="@SUM(A1)"))
    exported = store.export_csv("Dr Export", store.reviews())
    (row,) = list(csv.DictReader(io.StringIO(exported)))
    assert row["probability_nodule"] == "0.91" and row["verdict_effusion"] == "agree"
    assert row["corrected_labels"] == "nodule"
    assert row["reviewer"].startswith("'=") and row["note"] == "'@SUM(A1)"
    assert store.audit_entries()[-1]["action"] == "exported"


def run_writers(url: str, writers: int, count: int) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "tests.store_writer", url, str(count), f"w{w}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]


def test_eight_processes_writing_at_once_lose_nothing(store_url):
    ReviewStore(store_url).close()
    writers = run_writers(store_url, 8, 250)
    outputs = [writer.communicate(timeout=300) for writer in writers]
    assert [writer.returncode for writer in writers] == [0] * 8, [err for _, err in outputs if err]
    assert not any("locked" in err for _, err in outputs)
    store = ReviewStore(store_url)
    saved = store.reviews()
    assert len(saved) == 2000 and len(store.audit_entries()) == 2000
    assert len({review.study_key for review in saved}) == 2000
    by_key = {review.study_key: review for review in saved}
    for w in range(8):  # rows are intact, not merely counted
        written = written_review(f"w{w}", 249)
        stored = by_key[written.study_key]
        assert stored.note == written.note and stored.probabilities == written.probabilities
        assert stored.verdicts == written.verdicts and stored.reviewer == written.reviewer
    store.close()


def test_a_writer_killed_mid_write_leaves_every_committed_review_intact(tmp_path):
    path = tmp_path / "reviews.sqlite3"
    url = f"sqlite:///{path}"
    ReviewStore(url).close()
    (writer,) = run_writers(url, 1, 1_000_000)
    committed = [int(writer.stdout.readline()) for _ in range(300)]
    os.kill(writer.pid, signal.SIGKILL)
    committed += [int(line) for line in writer.stdout.read().split()]  # printed only after each commit
    writer.wait()
    assert writer.returncode == -signal.SIGKILL
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    present = {row[0] for row in connection.execute("SELECT id FROM reviews")}
    connection.close()
    assert set(committed) <= present
