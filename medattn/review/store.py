"""The review store: clinicians' verdicts on the model's findings, and an append-only audit log.

SQLAlchemy Core over SQLite by default (a file in the data directory, WAL journal, a busy timeout,
and every write transaction opened with ``BEGIN IMMEDIATE`` so writers queue instead of failing),
or PostgreSQL when ``MEDATTN_DB_URL`` names one. Both run the same statements.

Nothing identifying a patient is stored. A scan is known only by its scan key (``medattn.installation``): an
HMAC, under the installation's secret, of its SOP Instance UID (DICOM) or of its bytes (other files).

Schema upgrades: ``SCHEMA_VERSION`` is the version this code writes; ``MIGRATIONS[n]`` upgrades a
store from version n - 1 to n. Opening a store runs the missing migrations in one transaction;
a store written by a newer medattn is refused rather than guessed at.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from medattn.errors import ReviewError, StoreError
from medattn.installation import data_directory

SCHEMA_VERSION = 4
DB_URL_ENV = "MEDATTN_DB_URL"
DATABASE_FILE = "reviews.sqlite3"
BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S, STATEMENT_TIMEOUT_MS = 10, 15_000
VERDICTS = ("agree", "disagree", "unsure")
MAX_NAME, MAX_NOTE = 200, 5_000
# A spreadsheet runs a cell that starts with one of these as a formula; exported text is defused.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

metadata = sa.MetaData()
schema_info = sa.Table("schema_info", metadata, sa.Column("version", sa.Integer, nullable=False))
reviews = sa.Table(
    "reviews",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("submission_id", sa.String(64), nullable=False, unique=True),  # the idempotency key
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reviewer", sa.String(MAX_NAME), nullable=False),
    sa.Column("scan_key", sa.String(64), nullable=False, index=True),
    sa.Column("model_name", sa.String(MAX_NAME), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("probabilities", sa.JSON, nullable=False),  # finding -> probability
    sa.Column("verdicts", sa.JSON, nullable=False),  # finding -> "agree" | "disagree" | "unsure"
    sa.Column("corrected_labels", sa.JSON, nullable=False),  # the findings the reviewer says are present
    sa.Column("note", sa.Text, nullable=False),
    # Since schema version 2 (NULL in reviews saved before): the model's positive calls, and how unlike
    # its training data the scan was, so that a review of a meaningless prediction can be told apart.
    sa.Column("model_labels", sa.JSON),
    sa.Column("unlikeness", sa.Float),
    sa.Column("unlikeness_limit", sa.Float),
    # Since schema version 3: the reader's marks, {finding: {"kind", "points"}} in the scan's pixels
    # (medattn.review.marks), and each explanation's agreement with them, {finding: {method: figures}}.
    sa.Column("marks", sa.JSON),
    sa.Column("agreements", sa.JSON),
)
# Reader studies (medattn.study): a study's design, its readers in the order they joined, and their
# readings. A reading is unique per (study, reader, case, arm): saving it again is a no-op.
studies = sa.Table(
    "studies",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(MAX_NAME), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("design", sa.JSON, nullable=False),
)
study_readers = sa.Table(
    "study_readers",
    metadata,
    sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), primary_key=True),
    sa.Column("reader", sa.String(MAX_NAME), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.UniqueConstraint("study_id", "position"),
)
# The cases of a study set up from an uploaded folder (medattn.study.upload): pixels only, no file name or
# metadata. A synthetic study has none: its cases are drawn again from the benchmark.
study_cases = sa.Table(
    "study_cases",
    metadata,
    sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("truth", sa.JSON, nullable=False),  # finding -> bool
    sa.Column("display", sa.LargeBinary, nullable=False),  # PNG, uint8, as readers see it
    sa.Column("pixels", sa.LargeBinary, nullable=False),  # .npy, float32, as the model reads it
)
readings = sa.Table(
    "readings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), nullable=False),
    sa.Column("reader", sa.String(MAX_NAME), nullable=False),
    sa.Column("case_position", sa.Integer, nullable=False),
    sa.Column("arm", sa.String(64), nullable=False),
    sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("present", sa.JSON, nullable=False),  # finding -> bool
    sa.Column("confidence", sa.JSON, nullable=False),  # finding -> 0..100, in that call
    sa.Column("marks", sa.JSON, nullable=False),  # finding -> mark, for the findings marked
    sa.Column("agreements", sa.JSON, nullable=False),  # finding -> method -> each map's agreement with the mark
    sa.Column("seconds", sa.Float, nullable=False),  # from display to submission
    sa.UniqueConstraint("study_id", "reader", "case_position", "arm"),
)
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(MAX_NAME), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("scan_key", sa.String(64)),
    sa.Column("review_id", sa.Integer, sa.ForeignKey("reviews.id")),
)
# Append-only is enforced by the database, not only by this module offering no way to edit.
for statement in (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'append-only'); END",
):
    event.listen(audit_log, "after_create", sa.DDL(statement).execute_if(dialect="sqlite"))
for statement in (
    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'append-only'; END $$",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
):
    event.listen(audit_log, "after_create", sa.DDL(statement).execute_if(dialect="postgresql"))


def _adding(*columns: str) -> Callable[[Connection], None]:
    """The upgrade that adds these columns of ``reviews``: NULL in the reviews saved before."""

    def upgrade(connection: Connection) -> None:
        for column in columns:
            kind = reviews.c[column].type.compile(dialect=connection.dialect)
            connection.execute(sa.text(f"ALTER TABLE reviews ADD COLUMN {column} {kind}"))

    return upgrade


def _renaming(old: str, new: str, tables: tuple[str, ...]) -> Callable[[Connection], None]:
    """The upgrade that renames a column of these tables (SQLite 3.25+ and PostgreSQL alike)."""

    def upgrade(connection: Connection) -> None:
        for table in tables:
            connection.execute(sa.text(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}"))

    return upgrade


# version n -> the upgrade from n - 1. New tables need none: opening a store creates the missing ones.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    2: _adding("model_labels", "unlikeness", "unlikeness_limit"),
    3: _adding("marks", "agreements"),
    4: _renaming("study_key", "scan_key", tables=("reviews", "audit_log")),
}


@dataclass(frozen=True)
class Review:
    """One reviewer's verdicts on one prediction. ``submission_id`` makes saving it idempotent."""

    reviewer: str
    scan_key: str
    model_name: str
    model_version: str
    probabilities: dict[str, float]
    verdicts: dict[str, str]
    corrected_labels: list[str]
    note: str = ""
    model_labels: list[str] | None = None  # the findings the model called present; None: not recorded
    unlikeness: float | None = None
    unlikeness_limit: float | None = None
    marks: dict[str, dict] | None = None  # finding -> Mark.as_json(); None: saved before marks were recorded
    agreements: dict[str, dict[str, dict[str, float]]] | None = None  # finding -> method -> medattn.review.marks
    submission_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    id: int | None = None
    created_at: datetime | None = None

    @property
    def unlike_training_data(self) -> bool | None:
        """Whether the scan was unlike the model's training data (its output then meant nothing)."""
        if self.unlikeness is None or self.unlikeness_limit is None:
            return None
        return not self.unlikeness <= self.unlikeness_limit  # as Prediction does: NaN raises the alarm

    def contradictions(self) -> list[str]:
        """The findings on which the reader's own reading contradicts their verdict on the model's call:
        agreeing with "present" but leaving the finding out, disagreeing but putting it in, and so on."""
        if self.model_labels is None:
            return []
        return [
            finding
            for finding, verdict in self.verdicts.items()
            if verdict != "unsure"
            and (finding in self.corrected_labels) != ((finding in self.model_labels) == (verdict == "agree"))
        ]

    @classmethod
    def from_form(
        cls,
        *,
        reviewer: str,
        scan_key: str,
        model_name: str,
        model_version: str,
        probabilities: dict[str, float],
        model_labels: list[str],
        unlikeness: float,
        unlikeness_limit: float,
        verdicts: dict[str, str | None],
        corrected_labels: list[str],
        note: str,
        session_salt: str,
        case_key: str,
        frame: int,
        marks: dict[str, dict] | None = None,
        agreements: dict[str, dict[str, dict[str, float]]] | None = None,
    ) -> Review:
        """The review a submitted form describes, keyed so that submitting the same answers again is a no-op.

        A verdict left unanswered is None: ``validated`` refuses it.
        """
        answers = {"reviewer": reviewer, "verdicts": verdicts, "corrected": corrected_labels, "note": note}
        answers |= {"marks": marks} if marks else {}  # as before for a form without marks
        model = f"{model_name} {model_version}".strip()
        return cls(
            reviewer, scan_key, model_name, model_version, probabilities, verdicts, corrected_labels, note,
            model_labels, unlikeness, unlikeness_limit, marks or {}, agreements or {},
            submission_id(session_salt, case_key, model, frame, answers),
        )  # fmt: skip

    def validated(self) -> Review:
        reviewer, note = self.reviewer.strip(), self.note.strip()
        if not reviewer:
            raise ReviewError("Enter your name as the reviewer.")
        if len(reviewer) > MAX_NAME:
            raise ReviewError(f"The reviewer name is longer than {MAX_NAME} characters.")
        if len(note) > MAX_NOTE:
            raise ReviewError(f"The note is longer than {MAX_NOTE:,} characters.")
        if "\x00" in reviewer + note:  # PostgreSQL refuses NUL, and its log would quote the text it refused
            raise ReviewError("The name or note holds a NUL character, which cannot be stored; remove it.")
        findings = set(self.probabilities)
        if set(self.verdicts) - findings or set(self.corrected_labels) - findings:
            raise ReviewError("A verdict or corrected label names a finding the model does not report.")
        if set(self.verdicts) != findings or None in self.verdicts.values():
            raise ReviewError("Give a verdict on every finding (agree, disagree or unsure) before saving.")
        if any(v not in VERDICTS for v in self.verdicts.values()):
            raise ReviewError(f"A verdict must be one of {', '.join(VERDICTS)}.")
        if set(self.marks or {}) - findings:
            raise ReviewError("A mark names a finding the model does not report.")
        return replace(self, reviewer=reviewer, note=note)


def submission_id(session_salt: str, case_key: str, model: str, frame: int, answers: dict) -> str:
    """The idempotency key of one submitted review form.

    Derived from what was submitted, so a double click or a rerun that submits the same answers again
    maps to the same key and is stored once; the session's salt keeps two sessions' reviews apart.
    """
    payload = json.dumps([session_salt, case_key, model, frame, answers], sort_keys=True)
    return sha256(payload.encode()).hexdigest()[:32]


def select_reviews(
    saved: list[Review], reviewers: list[str], findings: list[str], disagreements_only: bool
) -> list[Review]:
    """The History page's filters: any of these reviewers, any of these findings present in the reviewer's
    reading, and (optionally) only reviews that disagree with the model somewhere. Empty filters keep all."""
    return [
        review
        for review in saved
        if (not reviewers or review.reviewer in reviewers)
        and (not findings or set(findings) & set(review.corrected_labels))
        and (not disagreements_only or "disagree" in review.verdicts.values())
    ]


def database_url(data_dir: Path | None = None) -> str:
    return os.environ.get(DB_URL_ENV) or f"sqlite:///{data_directory(data_dir) / DATABASE_FILE}"


class ReviewStore:
    """One per user session: the app never shares a store, or a connection, between sessions, and holds
    no connection between transactions."""

    def __init__(self, url: str):
        try:
            self.engine = _engine(url)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as error:
            raise StoreError(
                f"{DB_URL_ENV} is not a database address medattn can use ({type(error).__name__}). Set it to "
                "postgresql+psycopg://user:password@host/db or sqlite:///path/reviews.sqlite3, or unset it."
            ) from None
        try:
            with refusals("opened"):
                self._upgrade()
        except StoreError:
            self.engine.dispose()
            raise

    @classmethod
    def open(cls, data_dir: Path | None = None) -> ReviewStore:
        return cls(database_url(data_dir))

    def close(self) -> None:
        self.engine.dispose()

    def save(self, review: Review) -> int:
        """Store the review and its audit entry together; a repeated ``submission_id`` stores nothing new."""
        review = review.validated()
        # Every column but the two the store fills in: the row id and the time.
        row = {c.name: getattr(review, c.name) for c in reviews.columns if c.name not in ("id", "created_at")}
        now = datetime.now(UTC)
        try:
            with refusals("written"), self.engine.begin() as connection:
                review_id = connection.execute(reviews.insert().values(**row, created_at=now)).inserted_primary_key[0]
                connection.execute(
                    audit_log.insert().values(
                        at=now, actor=review.reviewer, action="review saved", scan_key=review.scan_key,
                        review_id=review_id,
                    )
                )  # fmt: skip
                return review_id
        except StoreError as error:
            if not isinstance(error.__cause__, sa.exc.IntegrityError):
                raise
            # This submission was saved already (a double click, a rerun): answer with that review's number.
            with refusals("read"), self.engine.connect() as connection:
                existing = connection.scalar(
                    sa.select(reviews.c.id).where(reviews.c.submission_id == review.submission_id)
                )
            if existing is None:
                raise
            return existing

    def reviews(self, reviewer: str | None = None, scan_key: str | None = None) -> list[Review]:
        """Saved reviews, newest first, optionally of one reviewer or one study."""
        query = sa.select(reviews).order_by(reviews.c.id.desc())
        if reviewer:
            query = query.where(reviews.c.reviewer == reviewer)
        if scan_key:
            query = query.where(reviews.c.scan_key == scan_key)
        with refusals("read"), self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [Review(**{**row, "created_at": utc(row["created_at"])}) for row in rows]

    def reviewed(self, scan_keys: list[str]) -> set[str]:
        """Which of these studies have at least one saved review."""
        if not scan_keys:
            return set()
        query = sa.select(reviews.c.scan_key).where(reviews.c.scan_key.in_(scan_keys)).distinct()
        with refusals("read"), self.engine.connect() as connection:
            return set(connection.scalars(query))

    def reader_agreements(self, model_name: str, model_version: str) -> list[dict]:
        """The agreements of this model's maps with readers' marks: from every saved review, and from every
        reading of a study set up with this model."""
        query = sa.select(reviews.c.agreements).where(
            reviews.c.model_name == model_name, reviews.c.model_version == model_version
        )
        model = {"name": model_name, "version": model_version}
        with refusals("read"), self.engine.connect() as connection:
            found = list(connection.scalars(query))
            ours = [
                row.id
                for row in connection.execute(sa.select(studies.c.id, studies.c.design))
                if row.design["model"] == model
            ]
            if ours:
                found += connection.scalars(sa.select(readings.c.agreements).where(readings.c.study_id.in_(ours)))
        return [agreements for agreements in found if agreements]

    def audit_entries(self) -> list[dict]:
        with refusals("read"), self.engine.connect() as connection:
            rows = connection.execute(sa.select(audit_log).order_by(audit_log.c.id)).mappings().all()
        return [{**row, "at": utc(row["at"])} for row in rows]

    def export_csv(self, actor: str, selected: list[Review]) -> str:
        """``selected`` reviews as CSV, one column per finding; the export itself is audited."""
        findings = list(dict.fromkeys(f for review in selected for f in review.probabilities))
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            ["review_id", "created_at", "reviewer", "scan_key", "model_name", "model_version"]
            + [f"{kind}_{finding}" for finding in findings for kind in ("probability", "verdict")]
            + ["model_labels", "corrected_labels", "unlikeness", "unlikeness_limit", "unlike_training_data", "note"]
            + ["marks", "agreements"]
        )
        unknown = ""  # reviews saved before schema version 2 did not record these
        for review in selected:
            writer.writerow(
                [review.id, review.created_at.isoformat(), defused(review.reviewer), review.scan_key]
                + [defused(review.model_name), defused(review.model_version)]
                + [
                    value
                    for finding in findings
                    for value in (review.probabilities.get(finding, ""), review.verdicts.get(finding, ""))
                ]
                + [unknown if review.model_labels is None else ";".join(review.model_labels)]
                + [";".join(review.corrected_labels)]
                + [unknown if value is None else value for value in (review.unlikeness, review.unlikeness_limit)]
                + [{None: unknown, True: "yes", False: "no"}[review.unlike_training_data], defused(review.note)]
                + [
                    unknown if value is None else json.dumps(value, sort_keys=True)
                    for value in (review.marks, review.agreements)
                ]
            )
        with refusals("written"), self.engine.begin() as connection:
            connection.execute(
                audit_log.insert().values(at=datetime.now(UTC), actor=actor.strip() or "unnamed", action="exported")
            )
        return buffer.getvalue()

    def _upgrade(self) -> None:
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":  # SQLite's BEGIN IMMEDIATE already serialises this
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(4242)"))
            metadata.create_all(connection)
            version = connection.scalar(sa.select(schema_info.c.version))
            if version is None:
                connection.execute(schema_info.insert().values(version=SCHEMA_VERSION))
                return
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"The review store has schema version {version}, written by a newer medattn than this one "
                    f"(version {SCHEMA_VERSION}). Upgrade medattn; the store was left unchanged."
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[target](connection)
            connection.execute(schema_info.update().values(version=SCHEMA_VERSION))


@contextmanager
def refusals(action: str) -> Iterator[None]:
    """A database error becomes a StoreError naming its kind only: driver messages can echo the values
    being written (a reviewer's name, a note). The original stays chained for the caller to inspect."""
    try:
        yield
    except sa.exc.SQLAlchemyError as error:
        kind = type(getattr(error, "orig", None) or error).__name__
        raise StoreError(
            f"The review store could not be {action}: the database refused ({kind}). Nothing was changed; "
            "check that the database is running and writable, then try again."
        ) from error


def _engine(url: str) -> Engine:
    # No pool: every store is one session's, and a pooled connection per idle session would add up to
    # PostgreSQL's connection limit. Opening a connection per transaction costs milliseconds; reviews
    # are saved by hand.
    if sa.engine.make_url(url).get_backend_name() == "postgresql":
        # A server that accepts the connection and never answers must not freeze a page: bound the
        # connection and every statement, and let the page say so (no retry).
        timeouts = {"connect_timeout": CONNECT_TIMEOUT_S, "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"}
        return sa.create_engine(url, poolclass=NullPool, connect_args=timeouts)
    engine = sa.create_engine(url, poolclass=NullPool)
    if engine.dialect.name != "sqlite":
        return engine

    @event.listens_for(engine, "connect")
    def configure(dbapi_connection, _record) -> None:
        # pysqlite's own BEGIN is deferred, so two writers can both read and then fail to upgrade their
        # lock ("database is locked"). Turn it off and begin every transaction IMMEDIATE instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = FULL",
            "PRAGMA foreign_keys = ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin_immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite keeps no zone; we write UTC


def defused(text: str) -> str:
    """Text a spreadsheet would run as a formula, prefixed with a quote so that it shows as text."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text
