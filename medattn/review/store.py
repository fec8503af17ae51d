"""The review store: clinicians' verdicts on the model's findings, and an append-only audit log, in the
database ``medattn.review.database`` keeps (SQLite or PostgreSQL; reader studies share it).

Nothing identifying a patient is stored. A scan is known only by its scan key (``medattn.installation``): an
HMAC, under the installation's secret, of its SOP Instance UID (DICOM) or of its bytes (other files).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

import sqlalchemy as sa

from medattn.errors import ReviewError, StoreError
from medattn.model.card import withheld
from medattn.review.database import (
    MAX_NAME,
    audit_log,
    database_url,
    open_database,
    readings,
    refusals,
    reviews,
    studies,
    utc,
)
from medattn.review.export import csv_text

VERDICTS = ("agree", "disagree", "unsure")
# What an export says for a finding the reader gave no verdict on: the model's calls were withheld from them.
NOT_GIVEN = "not given"
MAX_NOTE = 5_000


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
    noise: float | None = None  # the input's relative noise and its limit; None: not recorded, or no limit
    noise_limit: float | None = None
    marks: dict[str, dict] | None = None  # finding -> Mark.as_json(); None: saved before marks were recorded
    agreements: dict[str, dict[str, dict[str, float]]] | None = None  # finding -> method -> medattn.review.marks
    # The signed-in reviewer, as the identity provider names them; None where the name was typed.
    reviewer_issuer: str | None = None
    reviewer_subject: str | None = None
    submission_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    id: int | None = None
    created_at: datetime | None = None

    @property
    def verified(self) -> bool:
        """Whether the reviewer signed in, rather than typed a name."""
        return self.reviewer_subject is not None

    @property
    def unlike_training_data(self) -> bool | None:
        """Whether the gate withheld the model's output (the scan was unlike its training data, or too noisy: the
        output then meant nothing), as ``Prediction`` decides it; None where the review did not record it."""
        if self.unlikeness is None or self.unlikeness_limit is None:
            return None
        return withheld(self.unlikeness, self.unlikeness_limit, self.noise, self.noise_limit)

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
        case_key: str,
        frame: int,
        marks: dict[str, dict] | None = None,
        agreements: dict[str, dict[str, dict[str, float]]] | None = None,
        reviewer_issuer: str | None = None,
        reviewer_subject: str | None = None,
        noise: float | None = None,
        noise_limit: float | None = None,
    ) -> Review:
        """The review a submitted form describes, keyed so that submitting the same answers again is a no-op.

        A verdict left unanswered is None: ``validated`` refuses it. ``reviewer_issuer`` and ``reviewer_subject``:
        the signed-in reviewer as the identity provider names them.
        """
        answers = {"reviewer": reviewer, "verdicts": verdicts, "corrected": corrected_labels, "note": note}
        answers |= {"marks": marks} if marks else {}  # as before for a form without marks
        model = f"{model_name} {model_version}".strip()
        return cls(
            reviewer, scan_key, model_name, model_version, probabilities, verdicts, corrected_labels, note,
            model_labels, unlikeness, unlikeness_limit, noise, noise_limit, marks or {}, agreements or {},
            reviewer_issuer, reviewer_subject, submission_id(case_key, model, frame, answers),
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
        withheld_calls = not self.verdicts and self.unlike_training_data  # the reader saw no call to judge
        if not withheld_calls and (set(self.verdicts) != findings or None in self.verdicts.values()):
            raise ReviewError("Give a verdict on every finding (agree, disagree or unsure) before saving.")
        if any(v not in VERDICTS for v in self.verdicts.values()):
            raise ReviewError(f"A verdict must be one of {', '.join(VERDICTS)}.")
        if set(self.marks or {}) - findings:
            raise ReviewError("A mark names a finding the model does not report.")
        return replace(self, reviewer=reviewer, note=note)


def submission_id(case_key: str, model: str, frame: int, answers: dict) -> str:
    """The idempotency key of one submitted review form.

    Derived from what was submitted (the reviewer's name among the answers), so a double click, a rerun, or
    the same answers saved again from a new session after the page lost its server, map to the same key and
    are stored once. A reviewer who changes any answer saves a new review.
    """
    payload = json.dumps([case_key, model, frame, answers], sort_keys=True)
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


class ReviewStore:
    """One per user session: the app never shares a store, or a connection, between sessions, and holds
    no connection between transactions."""

    def __init__(self, url: str):
        self.engine = open_database(url)

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
        with refusals("read"), self.engine.connect() as connection:
            found = list(connection.scalars(query))
            ours = [
                row.id
                for row in connection.execute(sa.select(studies.c.id, studies.c.design))
                if (row.design["model"]["name"], row.design["model"]["version"]) == (model_name, model_version)
            ]
            if ours:
                found += connection.scalars(sa.select(readings.c.agreements).where(readings.c.study_id.in_(ours)))
        return [agreements for agreements in found if agreements]

    def audit(self, actor: str, action: str, scan_key: str | None = None) -> None:
        """Record something done outside the store (results stored into the PACS) in the append-only log."""
        with refusals("written"), self.engine.begin() as connection:
            connection.execute(
                audit_log.insert().values(at=datetime.now(UTC), actor=actor, action=action, scan_key=scan_key)
            )

    def audit_entries(self) -> list[dict]:
        with refusals("read"), self.engine.connect() as connection:
            rows = connection.execute(sa.select(audit_log).order_by(audit_log.c.id)).mappings().all()
        return [{**row, "at": utc(row["at"])} for row in rows]

    def export_csv(self, actor: str, selected: list[Review]) -> str:
        """``selected`` reviews as CSV, one column per finding; the export itself is audited."""
        findings = list(dict.fromkeys(f for review in selected for f in review.probabilities))
        header = (
            ["review_id", "created_at", "reviewer", "reviewer_signed_in", "scan_key", "model_name", "model_version"]
            + [f"{kind}_{finding}" for finding in findings for kind in ("probability", "verdict")]
            + ["model_labels", "corrected_labels", "unlikeness", "unlikeness_limit", "noise", "noise_limit"]
            + ["unlike_training_data", "note"]
            + ["marks", "agreements"]
        )
        unknown = ""  # reviews saved before schema version 2 did not record these
        rows = [
            [review.id, review.created_at.isoformat(), review.reviewer, "yes" if review.verified else "no, name typed"]
            + [review.scan_key]
            + [review.model_name, review.model_version]
            + [
                value
                for finding in findings
                for value in (review.probabilities.get(finding, ""), review.verdicts.get(finding, NOT_GIVEN))
            ]
            + [unknown if review.model_labels is None else ";".join(review.model_labels)]
            + [";".join(review.corrected_labels)]
            + [
                unknown if value is None else value
                for value in (review.unlikeness, review.unlikeness_limit, review.noise, review.noise_limit)
            ]
            + [{None: unknown, True: "yes", False: "no"}[review.unlike_training_data], review.note]
            + [
                unknown if value is None else json.dumps(value, sort_keys=True)
                for value in (review.marks, review.agreements)
            ]
            for review in selected
        ]
        exported = csv_text(header, rows)
        with refusals("written"), self.engine.begin() as connection:
            connection.execute(
                audit_log.insert().values(at=datetime.now(UTC), actor=actor.strip() or "unnamed", action="exported")
            )
        return exported
