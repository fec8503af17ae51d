"""A hospital's DICOMweb server (a PACS, Orthanc, a cloud DICOM store), through dicomweb-client.

Studies are listed with QIDO-RS, opened with WADO-RS and results stored back with STOW-RS. Whatever the
server does wrong (it is down, refuses the credentials, answers with something that is not DICOM, keeps
some of the objects sent) becomes a ``PacsError`` that says so, without echoing anything the server sent.
A store is retried for the objects the server did not keep; what still fails is reported, never dropped.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

import requests
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session, create_session_from_user_pass
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from medattn.errors import PacsError
from medattn.installation import dicom_study_key
from medattn.pacs.outputs import NOT_MEANINGFUL, SERIES_DESCRIPTION

URL_ENV = "MEDATTN_DICOMWEB_URL"
USER_ENV = "MEDATTN_DICOMWEB_USER"
PASSWORD_ENV = "MEDATTN_DICOMWEB_PASSWORD"
STORE_ATTEMPTS = 2
# Seconds to connect, and to wait for each answer. A server that times out once is not asked again for
# QUIET_AFTER_TIMEOUT_S: a page that asks it three things waits once, not three times (63.5 s before).
CONNECT_TIMEOUT_S, ANSWER_TIMEOUT_S, QUIET_AFTER_TIMEOUT_S = 5.0, 15.0, 60.0
RESULT_SERIES = (SERIES_DESCRIPTION, NOT_MEANINGFUL)
# Instances are asked for as stored (any transfer syntax): medattn decodes them all, and a server asked to
# transcode (dicomweb-client asks for Explicit VR Little Endian by default) may not decode JPEG 2000.
AS_STORED = (("application/dicom", "*"),)
# dicomweb-client logs each request with the study's UID at INFO: UIDs are not written to any log.
logging.getLogger("dicomweb_client").setLevel(logging.WARNING)

Result = TypeVar("Result")


@dataclass(frozen=True)
class StudySummary:
    """One study as the Worklist lists it: nothing that names the patient. ``study_uid`` is kept to open
    the study and is never shown; the study is known on screen by its keyed hash."""

    study_uid: str
    study_key: str
    date: str
    modalities: str
    instances: int


class Pacs:
    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        answer_timeout: float = ANSWER_TIMEOUT_S,
    ):
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise PacsError(f"{URL_ENV} must be an http:// or https:// address of a DICOMweb service.")
        session = create_session_from_user_pass(username, password or "") if username else create_session()
        # A server that is busy (429, 503) is asked again, a few times, by urllib3's Retry under requests;
        # dicomweb-client's own retrying is off, as it also retries every timeout (three 20 s waits before).
        busy = Retry(total=3, connect=0, read=False, status_forcelist=(429, 503), backoff_factor=0.5,
                     allowed_methods=frozenset({"GET", "POST"}), raise_on_status=False)  # fmt: skip
        for scheme in ("http://", "https://"):
            session.mount(scheme, HTTPAdapter(max_retries=busy))
        self.client = DICOMwebClient(url, session=session, timeout=(CONNECT_TIMEOUT_S, answer_timeout))
        self.client.set_http_retry_params(retry=False)
        self.answer_timeout = answer_timeout
        self._timed_out_at = -math.inf
        self.server = urlsplit(url).netloc  # named in messages: configured by the user, never a patient's

    @classmethod
    def from_environment(cls) -> Pacs | None:
        """The server ``MEDATTN_DICOMWEB_URL`` names (with ``_USER`` and ``_PASSWORD``), or None if unset."""
        url = os.environ.get(URL_ENV)
        if not url:
            return None
        return cls(url, os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV))

    def studies(self, secret: bytes, filters: dict[str, str] | None = None, limit: int = 200) -> list[StudySummary]:
        """Studies matching ``filters`` (QIDO-RS attribute=value pairs, e.g. ``{"ModalitiesInStudy": "CR"}``)."""
        fields = ["StudyDate", "ModalitiesInStudy", "NumberOfStudyRelatedInstances"]
        found = self._ask("list the studies", lambda: self.client.search_for_studies(
            search_filters=filters or {}, fields=fields, limit=limit
        ))  # fmt: skip
        summaries = []
        for answer in found:
            ds = Dataset.from_json(answer)
            uid = str(ds.get("StudyInstanceUID", ""))
            if not uid:
                continue
            summaries.append(
                StudySummary(
                    study_uid=uid,
                    study_key=dicom_study_key(secret, uid),
                    date=_date(ds.get("StudyDate")),
                    modalities=_joined(ds.get("ModalitiesInStudy")),
                    instances=int(ds.get("NumberOfStudyRelatedInstances") or 0),
                )
            )
        return summaries

    def images(self, study_uid: str) -> Iterator[Dataset]:
        """Every instance of a study (WADO-RS, a series at a time), but for the series of results that
        medattn stored there: those are its own output, not images to read."""
        found = self._ask(
            "list the study's series", lambda: self.client.search_for_series(study_uid, fields=["SeriesDescription"])
        )
        for answer in found:
            series = Dataset.from_json(answer)
            if str(series.get("SeriesDescription", "")) in RESULT_SERIES:
                continue
            series_uid = str(series.SeriesInstanceUID)
            yield from self._ask(
                "open the study",
                lambda uid=series_uid: self.client.retrieve_series(study_uid, uid, media_types=AS_STORED),
            )

    def store(self, datasets: list[Dataset]) -> None:
        """Store the objects (STOW-RS), sending again those the server did not keep; raise if some still fail.

        An object the server holds already is compared first: the same content is not sent again, other content
        under the same UID is a conflict, reported before anything is sent. A server that keeps the first copy
        of a UID answers a second store with success, so a store that replaced nothing would read as done."""
        pending = {str(ds.SOPInstanceUID): ds for ds in datasets}
        held = self._held(datasets)
        conflicting = [uid for uid, stored in held.items() if content_digest(stored) != content_digest(pending[uid])]
        if conflicting:
            raise PacsError(
                f"The DICOMweb server at {self.server} already holds {len(conflicting)} of these result objects "
                "with other content (results of the same image, model, method and finding, made with other "
                "settings or another reading). Nothing was stored. Delete the earlier results on the server "
                "first, or keep them."
            )
        pending = {uid: ds for uid, ds in pending.items() if uid not in held}
        if not pending:
            return
        for _ in range(STORE_ATTEMPTS):
            sending = list(pending.values())
            answer = self._ask("store the results", lambda sending=sending: self.client.store_instances(sending))
            failed = {str(item.get("ReferencedSOPInstanceUID", "")) for item in answer.get("FailedSOPSequence", [])}
            kept = {str(item.get("ReferencedSOPInstanceUID", "")) for item in answer.get("ReferencedSOPSequence", [])}
            pending = {uid: ds for uid, ds in pending.items() if uid in failed or uid not in kept}
            if not pending:
                return
        raise PacsError(
            f"The DICOMweb server at {self.server} did not keep {len(pending)} of the {len(datasets)} result "
            f"objects, after {STORE_ATTEMPTS} attempts. Nothing was lost here: store them again, or ask the "
            "server's administrator why it refuses them."
        )

    def _held(self, datasets: list[Dataset]) -> dict[str, Dataset]:
        """The objects among ``datasets`` (all of one study) that the server holds already, as it holds them."""
        study_uid = str(datasets[0].StudyInstanceUID)
        found = self._ask(
            "look for earlier results",
            lambda: self.client.search_for_instances(study_uid, fields=["SOPInstanceUID", "SeriesInstanceUID"]),
        )
        ours = {str(ds.SOPInstanceUID): ds for ds in datasets}
        held = {}
        for item in found:
            uid = _joined(item.get("00080018", {}).get("Value"))
            if uid in ours:
                series_uid = _joined(item.get("0020000E", {}).get("Value"))
                held[uid] = self._ask(
                    "read an earlier result",
                    lambda series_uid=series_uid, uid=uid: self.client.retrieve_instance(
                        study_uid, series_uid, uid, media_types=AS_STORED
                    ),
                )
        return held

    def _ask(self, doing: str, request: Callable[[], Result]) -> Result:
        """The request's answer, or a PacsError saying what went wrong while medattn tried to ``doing``."""
        if time.monotonic() - self._timed_out_at < QUIET_AFTER_TIMEOUT_S:
            raise PacsError(self._timed_out(doing)) from None
        try:
            return request()
        except requests.HTTPError as error:
            status = error.response.status_code if error.response is not None else None
            if status in (401, 403):
                raise PacsError(
                    f"The DICOMweb server at {self.server} refused the credentials, so medattn could not {doing}. "
                    f"Check {USER_ENV} and {PASSWORD_ENV}."
                ) from None
            raise PacsError(
                f"The DICOMweb server at {self.server} answered with an error ({status}) when asked to {doing}."
            ) from None
        except requests.Timeout:
            self._timed_out_at = time.monotonic()
            raise PacsError(self._timed_out(doing)) from None
        except requests.ConnectionError:
            raise PacsError(
                f"The DICOMweb server at {self.server} cannot be reached, so medattn could not {doing}. "
                f"Check that it is running and that {URL_ENV} names it."
            ) from None
        except (InvalidDicomError, ValueError, KeyError, TypeError, AttributeError):
            raise PacsError(
                f"The DICOMweb server at {self.server} answered with something that is not DICOM when asked to "
                f"{doing}. Check that {URL_ENV} is the address of its DICOMweb service (for Orthanc, /dicom-web)."
            ) from None

    def _timed_out(self, doing: str) -> str:
        return (
            f"The DICOMweb server at {self.server} timed out: it did not answer within {self.answer_timeout:g} s, "
            f"so medattn could not {doing}. It is not asked again for a minute; check that it is not overloaded."
        )


def content_digest(dataset: Dataset) -> str:
    """A digest of what an object says, leaving out its dates, times and UIDs (highdicom draws a new dimension
    organisation UID for each build; the object's own UID is the key it is compared under): the same results made
    again later are the same content, results made with other settings or another reading are not."""
    digest = hashlib.sha256()

    def add(ds: Dataset) -> None:
        for element in ds:
            if element.VR in ("DA", "DT", "TM", "UI"):
                continue
            digest.update(str(element.tag).encode())
            if element.VR == "SQ":
                for item in element.value:
                    add(item)
            elif isinstance(element.value, bytes):
                digest.update(element.value)
            else:
                digest.update(repr(element.value).encode())

    add(dataset)
    return digest.hexdigest()


def _joined(value: object) -> str:
    """A multi-valued attribute as text: pydicom gives one value as itself, several as a list."""
    if not value:
        return "—"
    return "/".join(str(v) for v in value) if isinstance(value, MultiValue | list) else str(value)


def _date(value: object) -> str:
    text = str(value or "")
    return f"{text[:4]}-{text[4:6]}-{text[6:8]}" if len(text) == 8 and text.isdigit() else "—"
