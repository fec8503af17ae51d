"""The review store against real databases: a SQLite file, and PostgreSQL where .ci/run could start one."""

from __future__ import annotations

import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from medattn.errors import ReviewError, StoreError
from medattn.review import database
from medattn.review.store import Review, ReviewStore, select_reviews, submission_id
from tests.conftest import POSTGRES_SCHEMA, empty_postgres
from tests.review.store_writer import review as written_review

ROOT = Path(__file__).resolve().parents[2]


def a_review(**changes) -> Review:
    fields = {
        "reviewer": "Dr Example",
        "scan_key": "k" * 64,
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
        ({"verdicts": {"nodule": "maybe", "effusion": "agree"}}, "must be one of agree, disagree, unsure"),
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


def test_a_store_from_a_newer_medattn_is_refused_unchanged(store_url, monkeypatch):
    ReviewStore(store_url).close()
    current = database.SCHEMA_VERSION
    monkeypatch.setattr(database, "SCHEMA_VERSION", current + 1)
    monkeypatch.setitem(
        database.MIGRATIONS,
        current + 1,
        lambda c: c.execute(sa.text("ALTER TABLE reviews ADD COLUMN site VARCHAR(20)")),
    )
    upgraded = ReviewStore(store_url)  # through the next migration
    with upgraded.engine.connect() as connection:
        assert connection.scalar(sa.select(database.schema_info.c.version)) == current + 1
        assert "site" in {c["name"] for c in sa.inspect(connection).get_columns("reviews")}
    upgraded.close()
    monkeypatch.setattr(database, "SCHEMA_VERSION", current)
    with pytest.raises(StoreError, match=f"schema version {current + 1}, written by a newer medattn"):
        ReviewStore(store_url)


def test_a_postgresql_address_keeps_its_own_options_beside_the_statement_timeout():
    """An address's ?options= (a schema of its own, here) was replaced by the statement timeout medattn sets."""
    url = empty_postgres()  # names the tests' own schema through ?options=-csearch_path=...
    store = ReviewStore(url)
    with store.engine.connect() as connection:
        in_schema = sa.text("SELECT count(*) FROM pg_tables WHERE tablename = 'reviews' AND schemaname = :schema")
        assert connection.scalar(in_schema, {"schema": POSTGRES_SCHEMA}) == 1
        assert connection.scalar(sa.text("SHOW statement_timeout")) == f"{database.STATEMENT_TIMEOUT_MS // 1000}s"
    store.close()


def test_a_version_1_store_is_upgraded_and_keeps_its_reviews(store_url):
    """Version 1 had no record of the model's calls, the scan's unlikeness or the reader's marks: its
    reviews read back with those unknown, not invented."""
    old = ReviewStore(store_url)
    old.save(a_review())
    with old.engine.begin() as connection:  # back to the version 1 schema
        for column in (
            "model_labels", "unlikeness", "unlikeness_limit", "marks", "agreements", "reviewer_issuer",
            "reviewer_subject", "noise", "noise_limit",
        ):  # fmt: skip
            connection.execute(sa.text(f"ALTER TABLE reviews DROP COLUMN {column}"))
        for table in ("reviews", "audit_log"):
            connection.execute(sa.text(f"ALTER TABLE {table} RENAME COLUMN scan_key TO study_key"))
        connection.execute(database.schema_info.update().values(version=1))
    old.close()
    upgraded = ReviewStore(store_url)
    (kept,) = upgraded.reviews()
    assert kept.note == a_review().note and kept.verdicts == a_review().verdicts
    assert kept.scan_key == a_review().scan_key  # the column renamed in version 4 keeps its values
    assert kept.model_labels is None and kept.unlike_training_data is None and kept.marks is None
    assert not kept.verified  # its name was typed, and it says so
    upgraded.save(a_review(model_labels=["nodule"], unlikeness=80.0, unlikeness_limit=40.0, reviewer_issuer="https://idp",
                           reviewer_subject="u-17"))  # fmt: skip
    newest, _ = upgraded.reviews()
    assert newest.model_labels == ["nodule"] and newest.unlike_training_data is True and newest.verified
    upgraded.close()


def test_csv_export_has_a_column_per_finding_and_defuses_formulas(store):
    store.save(a_review(reviewer='=HYPERLINK("http://x")', note="@SUM(A1)"))
    exported = store.export_csv("Dr Export", store.reviews())
    (row,) = list(csv.DictReader(io.StringIO(exported)))
    assert row["probability_nodule"] == "0.91" and row["verdict_effusion"] == "agree"
    assert row["corrected_labels"] == "nodule"
    assert row["reviewer"].startswith("'=") and row["note"] == "'@SUM(A1)"
    assert store.audit_entries()[-1]["action"] == "exported"


def test_the_export_says_which_reviews_were_of_scans_unlike_the_training_data(store):
    store.save(a_review(model_labels=["nodule"], unlikeness=95.5, unlikeness_limit=41.2))
    store.save(a_review(model_labels=[], unlikeness=12.0, unlikeness_limit=41.2, submission_id="in range"))
    store.save(a_review(submission_id="saved before version 2 recorded it"))
    gate = {"unlikeness": 12.0, "unlikeness_limit": 41.2, "noise_limit": 0.057}
    store.save(a_review(model_labels=[], noise=0.11, **gate, submission_id="too noisy"))
    exported = list(csv.DictReader(io.StringIO(store.export_csv("Dr Export", store.reviews()))))
    assert [row["unlike_training_data"] for row in exported] == ["yes", "", "no", "yes"]  # newest first
    assert exported[3]["unlikeness"] == "95.5" and exported[3]["model_labels"] == "nodule"
    assert exported[0]["noise"] == "0.11" and exported[0]["noise_limit"] == "0.057" and exported[2]["noise"] == ""


@pytest.mark.parametrize(
    ("verdicts", "reading", "contradicted"),
    [
        ({"nodule": "agree", "effusion": "agree"}, ["nodule"], []),  # the model called nodule only
        ({"nodule": "agree", "effusion": "agree"}, [], ["nodule"]),  # agreed it is there, then left it out
        ({"nodule": "disagree", "effusion": "agree"}, ["nodule"], ["nodule"]),  # disagreed, yet kept it
        ({"nodule": "agree", "effusion": "disagree"}, ["nodule"], ["effusion"]),  # said absent is wrong, yet left out
        ({"nodule": "unsure", "effusion": "disagree"}, ["effusion"], []),
    ],
)
def test_a_reading_that_contradicts_its_verdicts_is_pointed_out(verdicts, reading, contradicted):
    review = a_review(verdicts=verdicts, corrected_labels=reading, model_labels=["nodule"])
    assert review.contradictions() == contradicted


def test_a_finding_left_without_a_verdict_is_refused(store):
    with pytest.raises(ReviewError, match="Give a verdict on every finding"):
        store.save(a_review(verdicts={"nodule": "agree", "effusion": None}))
    with pytest.raises(ReviewError, match="Give a verdict on every finding"):
        store.save(a_review(verdicts={"nodule": "agree"}))
    assert store.reviews() == []


def run_writers(url: str, writers: int, count: int) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-m", "tests.review.store_writer", url, str(count), f"w{w}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]


@pytest.mark.slow
def test_eight_processes_writing_at_once_lose_nothing(store_url):
    ReviewStore(store_url).close()
    writers = run_writers(store_url, 8, 250)
    outputs = [writer.communicate(timeout=300) for writer in writers]
    assert [writer.returncode for writer in writers] == [0] * 8, [err for _, err in outputs if err]
    assert not any("locked" in err for _, err in outputs)
    store = ReviewStore(store_url)
    saved = store.reviews()
    assert len(saved) == 2000 and len(store.audit_entries()) == 2000
    assert len({review.scan_key for review in saved}) == 2000
    by_key = {review.scan_key: review for review in saved}
    for w in range(8):  # rows are intact, not merely counted
        written = written_review(f"w{w}", 249)
        stored = by_key[written.scan_key]
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


def test_submission_id_is_the_same_for_the_same_answers_only():
    answers = {"reviewer": "Dr A", "verdicts": {"nodule": "agree"}, "note": "x"}
    key = submission_id("case", "model", 0, answers)
    assert key == submission_id("case", "model", 0, dict(answers))  # from any session: a reconnect is no new review
    assert key != submission_id("case", "model", 0, answers | {"note": "y"})
    assert key != submission_id("case", "model", 0, answers | {"reviewer": "Dr B"})
    assert key != submission_id("case", "model 2", 0, answers)


def test_a_form_submitted_twice_is_stored_once(store):
    form = {
        "reviewer": "Dr Form", "scan_key": "s" * 64, "model_name": "m", "model_version": "1",
        "probabilities": {"nodule": 0.4}, "model_labels": [], "unlikeness": 10.0, "unlikeness_limit": 40.0,
        "verdicts": {"nodule": "disagree"}, "corrected_labels": ["nodule"],
        "note": "", "case_key": "case", "frame": 0,
    }  # fmt: skip
    first, again = Review.from_form(**form), Review.from_form(**form)
    assert store.save(first) == store.save(again) and len(store.reviews()) == 1
    assert Review.from_form(**form | {"frame": 1}).submission_id != first.submission_id


def test_history_filters_combine_reviewer_finding_and_disagreement():
    reviews = [
        a_review(reviewer="A", corrected_labels=["nodule"]),
        a_review(reviewer="B", corrected_labels=[], verdicts={"nodule": "disagree", "effusion": "agree"}),
        a_review(reviewer="A", corrected_labels=["effusion"], verdicts={"nodule": "agree", "effusion": "disagree"}),
    ]
    assert select_reviews(reviews, [], [], False) == reviews
    assert select_reviews(reviews, ["A"], [], False) == [reviews[0], reviews[2]]
    assert select_reviews(reviews, [], ["nodule"], False) == [reviews[0]]
    assert select_reviews(reviews, ["A"], [], True) == [reviews[2]]
    assert select_reviews(reviews, ["B"], ["effusion"], False) == []


@pytest.mark.parametrize("url", ["not a url", "nosuchdialect://host/db", "postgresql+nosuchdriver://u:p@h/db"])
def test_an_unusable_database_address_is_a_clear_store_error(url):
    with pytest.raises(StoreError, match="MEDATTN_DB_URL is not a database address"):
        ReviewStore(url)


def test_an_unreachable_database_is_a_clear_store_error():
    with pytest.raises(StoreError, match="could not be opened: the database refused"):
        ReviewStore("postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=2")


def refuse_writes(store: ReviewStore) -> None:
    """Make the database itself refuse new reviews, as a full disk or a revoked grant would."""
    with store.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER no_reviews BEFORE INSERT ON reviews BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        else:
            connection.exec_driver_sql("REVOKE INSERT ON reviews FROM CURRENT_USER")


def test_a_database_that_refuses_a_write_loses_nothing_and_echoes_no_value(store):
    kept = store.save(a_review())
    refuse_writes(store)
    with pytest.raises(StoreError, match="could not be written: the database refused") as refused:
        store.save(a_review(reviewer="Dr Secretname", note="MARKER-NOTE", submission_id="new"))
    assert "Secretname" not in str(refused.value) and "MARKER-NOTE" not in str(refused.value)
    assert [review.id for review in store.reviews()] == [kept]


def test_a_corrupted_sqlite_file_is_a_clear_store_error(tmp_path):
    path = tmp_path / "reviews.sqlite3"
    path.write_bytes(b"this is not a database" * 1000)
    with pytest.raises(StoreError, match="could not be opened: the database refused"):
        ReviewStore(f"sqlite:///{path}")
    assert path.read_bytes() == b"this is not a database" * 1000  # left as it was, for someone to rescue


def test_a_nul_in_a_note_is_refused_before_the_database_sees_it(store):
    with pytest.raises(ReviewError, match="NUL character"):
        store.save(a_review(note="Smith\x00John"))
    assert store.reviews() == []


@pytest.mark.slow
def test_a_database_that_accepts_and_never_answers_times_out_with_a_message():
    """A black hole on localhost: it accepts the connection and never says a word."""
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="could not be opened"):
            ReviewStore(f"postgresql+psycopg://user:secret@127.0.0.1:{port}/reviews")
        assert time.monotonic() - started < database.CONNECT_TIMEOUT_S + 5
    finally:
        listener.close()


def test_a_read_only_database_gives_a_clear_message_and_loses_nothing(tmp_path):
    path = tmp_path / "reviews.sqlite3"
    writable = ReviewStore(f"sqlite:///{path}")
    kept = writable.save(a_review())
    writable.close()
    with pytest.raises(StoreError, match="the database refused"):  # as a read-only mount would
        read_only = ReviewStore(f"sqlite:///file:{path}?mode=ro&uri=true")
        read_only.save(a_review(submission_id="after the disk went read-only"))
    assert [review.id for review in ReviewStore(f"sqlite:///{path}").reviews()] == [kept]
