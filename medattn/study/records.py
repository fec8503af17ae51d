"""Reader studies in the review store: studies, their readers, and readings, with the store's guarantees.

Every write is one transaction in the same database as the reviews (SQLite with ``BEGIN IMMEDIATE``, or
PostgreSQL), so readings from several readers at once queue rather than fail, and a reading is either
wholly saved or not at all when a server is killed. A reading is unique per (study, reader, case, arm):
a double click, or a form submitted again after a reconnect, stores it once.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa
from PIL import Image

from medattn.benchmark import FINDINGS
from medattn.errors import StoreError, StudyError
from medattn.explain.overlay import png_bytes
from medattn.review.database import (
    MAX_NAME,
    audit_log,
    readings,
    refusals,
    studies,
    study_cases,
    study_closures,
    study_enrolments,
    study_readers,
    utc,
)
from medattn.review.marks import Mark
from medattn.review.store import ReviewStore
from medattn.study.design import Arm, SyntheticCaseSet, case_mix, reading_order
from medattn.study.upload import KEPT_SIDE, LabelledCase, pixels_bytes, pixels_from, truth_table


@dataclass(frozen=True)
class Study:
    id: int
    name: str
    created_at: datetime
    design: dict
    closed_at: datetime | None = None  # no readings after it; results only from it on
    enrolled: frozenset[str] = frozenset()  # readers' e-mail addresses, lower case (medattn.access.may_read)

    @property
    def synthetic(self) -> bool:
        return self.design["case_set"]["kind"] == "synthetic"

    @property
    def case_set(self) -> SyntheticCaseSet:
        """A synthetic study's case set (an uploaded one's cases are in the store: ``StudyStore.cases``)."""
        spec = self.design["case_set"]
        return SyntheticCaseSet(spec["seed"], spec["size"], spec["count"], spec["prevalence"], tuple(spec["findings"]))

    @property
    def cases(self) -> list[int]:
        """By case position: each case's index in the synthetic benchmark, or its position in the upload."""
        return self.design["cases"]

    @property
    def image_side(self) -> int:
        """The longest side a case can have: marks must lie within it."""
        return self.design["case_set"]["size"] if self.synthetic else KEPT_SIDE

    @property
    def arms(self) -> list[str]:
        return self.design["arms"]

    @property
    def findings(self) -> tuple[str, ...]:
        return tuple(self.design["case_set"]["findings"])

    @property
    def case_mix(self) -> dict[str, list[int]]:
        """finding -> [cases with it, cases without it]; empty for a study set up before it was recorded."""
        return self.design["case_set"].get("case_mix", {})

    def order(self, reader_position: int) -> list[tuple[int, str]]:
        return reading_order(len(self.cases), self.arms, reader_position, self.design["order_seed"])


@dataclass(frozen=True)
class Reading:
    """One reader's reading of one case in one arm. Confidence is in the reader's own call (0–100)."""

    study_id: int
    reader: str
    case_position: int
    arm: str
    present: dict[str, bool]
    confidence: dict[str, int]
    marks: dict[str, dict] = field(default_factory=dict)  # finding -> Mark.as_json(), for the findings marked
    agreements: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # medattn.review.marks
    seconds: float = 0.0
    saved_at: datetime | None = None

    def rating(self, finding: str) -> float:
        """The reading as one score of how sure the reader is the finding is present, for ROC analysis:
        50 + confidence / 2 when called present, 50 - confidence / 2 when called absent (0 to 100)."""
        sign = 1 if self.present[finding] else -1
        return 50 + sign * self.confidence[finding] / 2

    def validated(self, study: Study) -> Reading:
        findings = set(study.findings)
        if set(self.present) != findings or None in self.present.values():
            raise StudyError("Say for every finding whether it is present or absent before saving.")
        if set(self.confidence) != findings or not all(0 <= c <= 100 for c in self.confidence.values()):
            raise StudyError("Give a confidence between 0 and 100 for every finding.")
        if set(self.marks) - findings:
            raise StudyError("A mark names a finding this study does not read.")
        for finding, mark in self.marks.items():
            Mark.from_json(finding, mark).validated(study.image_side, study.image_side)
        if not 0 <= self.case_position < len(study.cases) or self.arm not in study.arms:
            raise StudyError("This reading names a case or arm that is not in the study.")
        return self


class StudyStore:
    """Studies and readings in a review store's database."""

    def __init__(self, store: ReviewStore):
        self.engine = store.engine

    def create(
        self, name: str, case_set: SyntheticCaseSet, arms: list[str], model: dict, by: str = "study set-up"
    ) -> Study:
        """A study of synthetic cases: they are chosen now, from the benchmark, and stored as indices only.
        ``model``: the name, version and classes of the model whose output the arms show."""
        case_set = case_set.validated()
        _readable(case_set.findings, model)
        indices, truth = case_set.selection()
        spec = asdict(case_set) | {"kind": "synthetic", "findings": list(case_set.findings)}
        spec |= {"case_mix": case_mix(truth, case_set.findings)}
        return self._insert(name, spec, indices, arms, model, [], by)

    def create_from_upload(
        self,
        name: str,
        cases: list[LabelledCase],
        findings: tuple[str, ...],
        arms: list[str],
        model: dict,
        by: str = "study set-up",
    ) -> Study:
        """A study of uploaded, labelled cases (``medattn.study.upload``), stored as pixels and truth only."""
        _readable(findings, model)
        mix = case_mix(truth_table(cases, findings), findings)
        spec = {"kind": "upload", "count": len(cases), "findings": list(findings), "case_mix": mix}
        rows = [
            {"position": position, "truth": case.truth, "display": png_bytes(case.display),
             "pixels": pixels_bytes(case.pixels)}
            for position, case in enumerate(cases)
        ]  # fmt: skip
        return self._insert(name, spec, list(range(len(cases))), arms, model, rows, by)

    def _insert(
        self, name: str, spec: dict, cases: list[int], arms: list[str], model: dict, rows: list[dict], by: str
    ) -> Study:
        name = name.strip()
        if not name or len(name) > MAX_NAME or "\x00" in name:
            raise StudyError(f"Name the study (1 to {MAX_NAME} characters).")
        if len(set(arms)) < 2:
            raise StudyError("Choose at least two arms to compare.")
        for arm in arms:
            Arm.parse(arm)
        design = {
            "case_set": spec,
            "cases": cases,
            "arms": list(dict.fromkeys(arms)),
            "order_seed": spec.get("seed", len(cases)),
            "model": model,
        }
        now = datetime.now(UTC)
        try:
            with refusals("written"), self.engine.begin() as connection:
                study_id = connection.execute(
                    studies.insert().values(name=name, created_at=now, design=design)
                ).inserted_primary_key[0]
                if rows:
                    connection.execute(study_cases.insert(), [row | {"study_id": study_id} for row in rows])
                connection.execute(audit_log.insert().values(at=now, actor=by, action="study created"))
        except StoreError as error:
            if isinstance(error.__cause__, sa.exc.IntegrityError):
                raise StudyError(f"A study named '{name}' exists already; choose another name.") from None
            raise
        return Study(study_id, name, now, design)

    def case_set(self, study: Study) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray | None]:
        """The study's cases as readers see them (uint8) and as the model reads them, their truth (cases,
        findings) and, for synthetic cases, their masks (cases, findings, S, S), findings in the study's own
        order: drawn again from the benchmark, or read from the store."""
        if not study.synthetic:
            uploaded = self.uploaded_cases(study)
            return (
                [c.display for c in uploaded],
                [c.pixels for c in uploaded],
                truth_table(uploaded, study.findings),
                None,
            )
        cases = [study.case_set.case(index) for index in study.cases]
        columns = [FINDINGS.index(finding) for finding in study.findings]
        return (
            [np.round(c.image * 255).astype(np.uint8) for c in cases],
            [c.image for c in cases],
            np.stack([c.labels[columns] for c in cases]),
            np.stack([c.masks[columns] for c in cases]),
        )

    def uploaded_cases(self, study: Study) -> list[LabelledCase]:
        """An uploaded study's cases by position, as they were stored."""
        query = sa.select(study_cases).where(study_cases.c.study_id == study.id).order_by(study_cases.c.position)
        with refusals("read"), self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            LabelledCase(np.asarray(Image.open(io.BytesIO(row["display"]))), pixels_from(row["pixels"]), row["truth"])
            for row in rows
        ]

    def studies(self) -> list[Study]:
        query = sa.select(studies, study_closures.c.closed_at).outerjoin(study_closures).order_by(studies.c.id.desc())
        with refusals("read"), self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
            enrolled: dict[int, set[str]] = {}
            for study_id, email in connection.execute(sa.select(study_enrolments.c.study_id, study_enrolments.c.email)):
                enrolled.setdefault(study_id, set()).add(email)
        return [
            Study(
                row["id"],
                row["name"],
                utc(row["created_at"]),
                row["design"],
                _when(row["closed_at"]),
                frozenset(enrolled.get(row["id"], ())),
            )
            for row in rows
        ]

    def enrol(self, study: Study, emails: str, by: str) -> Study:
        """Let the readers named by ``emails`` (e-mail addresses, one per line or separated by commas) read the
        study; enrolling someone again changes nothing. Readers cannot be taken off: their readings stay."""
        addresses = reader_addresses(emails)
        if not addresses:
            raise StudyError("Give at least one reader's e-mail address, as your identity provider knows it.")
        now = datetime.now(UTC)
        with refusals("written"), self.engine.begin() as connection:
            known = set(
                connection.scalars(sa.select(study_enrolments.c.email).where(study_enrolments.c.study_id == study.id))
            )
            new = sorted(addresses - known)
            if new:  # who enrolled whom is kept in the enrolments themselves; the audit log says that it happened
                rows = [{"study_id": study.id, "email": e, "enrolled_at": now, "enrolled_by": by} for e in new]
                connection.execute(study_enrolments.insert(), rows)
                connection.execute(audit_log.insert().values(at=now, actor=by, action="readers enrolled"))
        return next(s for s in self.studies() if s.id == study.id)

    def close(self, study: Study, by: str) -> Study:
        """Close the study to readings, and open its results; closing twice keeps the first."""
        now = datetime.now(UTC)
        try:
            with refusals("written"), self.engine.begin() as connection:
                connection.execute(study_closures.insert().values(study_id=study.id, closed_at=now, closed_by=by))
                connection.execute(audit_log.insert().values(at=now, actor=by, action="study closed"))
        except StoreError as error:
            if not isinstance(error.__cause__, sa.exc.IntegrityError):
                raise
        return next(s for s in self.studies() if s.id == study.id)

    def join(self, study: Study, reader: str) -> int:
        """The reader's position in the study (0 for the first to join), given once and kept."""
        reader = reader.strip()
        if not reader or len(reader) > MAX_NAME or "\x00" in reader:
            raise StudyError(f"Enter your name as the reader (1 to {MAX_NAME} characters).")
        for _ in range(5):  # two readers joining at once may both claim the next position; one retries
            with refusals("read"), self.engine.connect() as connection:
                positions = dict(
                    connection.execute(
                        sa.select(study_readers.c.reader, study_readers.c.position).where(
                            study_readers.c.study_id == study.id
                        )
                    ).all()
                )
            if reader in positions:
                return positions[reader]
            try:
                with refusals("written"), self.engine.begin() as connection:
                    connection.execute(
                        study_readers.insert().values(study_id=study.id, reader=reader, position=len(positions))
                    )
                return len(positions)
            except StoreError as error:
                if not isinstance(error.__cause__, sa.exc.IntegrityError):
                    raise
        raise StudyError("Too many readers joined at once; try again.")

    def readers(self, study: Study) -> dict[str, int]:
        query = sa.select(study_readers.c.reader, study_readers.c.position).where(study_readers.c.study_id == study.id)
        with refusals("read"), self.engine.connect() as connection:
            return dict(connection.execute(query.order_by(study_readers.c.position)).all())

    def save(self, study: Study, reading: Reading) -> None:
        """Store the reading and its audit entry together. A reading saved already is kept as it was: the same
        answers again (a double click) are accepted, other answers are refused, never silently dropped."""
        reading = reading.validated(study)
        closed = sa.select(study_closures.c.study_id).where(study_closures.c.study_id == study.id)
        with refusals("read"), self.engine.connect() as connection:
            if connection.scalar(closed) is not None:  # asked of the database: the page's copy may be older
                raise StudyError("The study is closed: it takes no more readings.")
        now = datetime.now(UTC)
        row = asdict(reading) | {"saved_at": now}
        try:
            with refusals("written"), self.engine.begin() as connection:
                connection.execute(readings.insert().values(**row))
                connection.execute(audit_log.insert().values(at=now, actor=reading.reader, action="reading saved"))
        except StoreError as error:
            if not isinstance(error.__cause__, sa.exc.IntegrityError):
                raise
            (saved,) = [
                r
                for r in self.readings(study, reading.reader)
                if (r.case_position, r.arm) == (reading.case_position, reading.arm)
            ]
            if (saved.present, saved.confidence, saved.marks) != (reading.present, reading.confidence, reading.marks):
                raise StudyError(
                    "This reading was saved already, from another window or session, with other answers; those "
                    "are kept and these were not saved. Reload the page to carry on with the next case."
                ) from None

    def readings(self, study: Study, reader: str | None = None) -> list[Reading]:
        query = sa.select(readings).where(readings.c.study_id == study.id).order_by(readings.c.id)
        if reader is not None:
            query = query.where(readings.c.reader == reader)
        with refusals("read"), self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        fields = [column.name for column in readings.columns if column.name not in ("id", "saved_at")]
        return [Reading(**{name: row[name] for name in fields}, saved_at=utc(row["saved_at"])) for row in rows]


def reader_addresses(text: str) -> set[str]:
    """The e-mail addresses in ``text`` (one per line or separated by commas), lower case; a StudyError names the
    first that is not one."""
    addresses = {part.strip().lower() for part in text.replace(",", "\n").splitlines() if part.strip()}
    for address in sorted(addresses):
        local, _, domain = address.partition("@")
        unusable = any(c.isspace() or c == "\x00" for c in address) or len(address) > MAX_NAME
        if not local or "." not in domain or unusable:
            raise StudyError(f"'{address[:80]}' is not an e-mail address: give one per line, as name@hospital.org.")
    return addresses


def _when(moment: datetime | None) -> datetime | None:
    return utc(moment) if moment else None


def _readable(findings: tuple[str, ...], model: dict) -> None:
    """The findings a study reads must be ones its model reports: its arms show that model's output."""
    classes = model.get("classes") or ()
    if not findings or set(findings) - set(classes):
        raise StudyError(f"Choose the findings to read from those the model reports: {', '.join(classes)}.")
