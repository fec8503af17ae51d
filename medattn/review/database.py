"""The review store's database, shared by reviews and reader studies: every table, the schema's migrations,
the engine (SQLite or PostgreSQL), and how a database error becomes a StoreError.

SQLAlchemy Core over SQLite by default (a file in the data directory, WAL journal, a busy timeout,
and every write transaction opened with ``BEGIN IMMEDIATE`` so writers queue instead of failing),
or PostgreSQL when ``MEDATTN_DB_URL`` names one. Both run the same statements.

Schema upgrades: ``SCHEMA_VERSION`` is the version this code writes; ``MIGRATIONS[n]`` upgrades a
store from version n - 1 to n. Opening a database runs the missing migrations in one transaction;
a database written by a newer medattn is refused rather than guessed at.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from medattn.errors import StoreError
from medattn.installation import data_directory

MAX_NAME = 200  # a reviewer's, a reader's, a model's or a study's name

SCHEMA_VERSION = 7
DB_URL_ENV = "MEDATTN_DB_URL"
DATABASE_FILE = "reviews.sqlite3"
BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S, STATEMENT_TIMEOUT_MS = 10, 15_000

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
    # Since schema version 5: who signed in, as the identity provider names them (its issuer and the stable
    # subject it gives the user); NULL where the reviewer's name was typed (a personal app, or an older review).
    sa.Column("reviewer_issuer", sa.String(MAX_NAME)),
    sa.Column("reviewer_subject", sa.String(MAX_NAME)),
    # Since schema version 7: the input's relative noise and the card's limit on it, the gate's second measure
    # (medattn.model.unlikeness); NULL in reviews saved before, or by a model whose card has no noise limit.
    sa.Column("noise", sa.Float),
    sa.Column("noise_limit", sa.Float),
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
# A closed study takes no more readings, and only then shows its results: a coordinator who saw figures while
# readers still read could steer the study, and a reader who saw them would be unblinded.
study_closures = sa.Table(
    "study_closures",
    metadata,
    sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), primary_key=True),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_by", sa.String(MAX_NAME), nullable=False),
)
# Since schema version 6: who may read a study in a shared app, by the e-mail address their identity provider
# gives them; a coordinator enrols them. A personal app's one user reads every study.
study_enrolments = sa.Table(
    "study_enrolments",
    metadata,
    sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id"), primary_key=True),
    sa.Column("email", sa.String(MAX_NAME), primary_key=True),  # lower case
    sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("enrolled_by", sa.String(MAX_NAME), nullable=False),
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
    5: _adding("reviewer_issuer", "reviewer_subject"),
    # study_enrolments, which opening the store creates. The version still moves on: an older medattn, which
    # knows no enrolment, must not open a store whose studies are closed to readers not enrolled.
    6: lambda connection: None,
    7: _adding("noise", "noise_limit"),
}


def database_url(data_dir: Path | None = None) -> str:
    return os.environ.get(DB_URL_ENV) or f"sqlite:///{data_directory(data_dir) / DATABASE_FILE}"


def open_database(url: str) -> Engine:
    """An engine for ``url`` whose schema is this medattn's, upgraded in one transaction where it was older;
    a StoreError (naming the kind of error only) where it cannot be used."""
    try:
        engine = _engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as error:
        raise StoreError(
            f"{DB_URL_ENV} is not a database address medattn can use ({type(error).__name__}). Set it to "
            "postgresql+psycopg://user:password@host/db or sqlite:///path/reviews.sqlite3, or unset it."
        ) from None
    try:
        with refusals("opened"):
            _upgrade(engine)
    except StoreError:
        engine.dispose()
        raise
    return engine


def _upgrade(engine: Engine) -> None:
    with engine.begin() as connection:
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
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        # A server that accepts the connection and never answers must not freeze a page: bound the
        # connection and every statement, and let the page say so (no retry). Options the address gives
        # (?options=-csearch_path%3Dmedattn, say) are kept: connect_args would otherwise replace them.
        given = parsed.query.get("options", "")
        options = f"{given if isinstance(given, str) else ' '.join(given)} -c statement_timeout={STATEMENT_TIMEOUT_MS}"
        timeouts = {"connect_timeout": CONNECT_TIMEOUT_S, "options": options.strip()}
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
