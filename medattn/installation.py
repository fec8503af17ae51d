"""The installation's own folder and secret, and the keyed hashes by which medattn names what it must not store.

Nothing identifying a patient is stored, logged or exported: a scan, a file, a DICOM study or instance is
known by an HMAC-SHA256 of what identifies it, under the installation's secret. The same thing always maps
to the same key; without the secret a key cannot be computed from a UID or a path, or traced back to one.
Each kind of key hashes its value behind its own tag, so two kinds never collide.

The secret is ``MEDATTN_SECRET`` where set (replicas that share one store must share it), else a file made
once in the data folder (``MEDATTN_DATA_DIR``, by default ``~/.medattn``). Either must hold at least
``MIN_SECRET_BYTES``: a short secret would let anyone try every key.
"""

from __future__ import annotations

import hmac
import os
import uuid
from hashlib import sha256
from pathlib import Path

from medattn.errors import StoreError

DATA_DIR_ENV, SECRET_ENV = "MEDATTN_DATA_DIR", "MEDATTN_SECRET"
DEFAULT_DATA_DIR = Path.home() / ".medattn"
SECRET_FILE = "secret.key"
MIN_SECRET_BYTES = 32
MAKE_A_SECRET = "python -c 'import secrets; print(secrets.token_hex(32))'"


def data_directory(data_dir: Path | None = None) -> Path:
    """The folder of the review store and the secret, made (private to its owner) if missing."""
    directory = Path(data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise StoreError(
            f"The data directory cannot be created ({error.strerror}). Set {DATA_DIR_ENV} to a writable folder."
        ) from None
    return directory


def installation_secret(data_dir: Path | None = None) -> bytes:
    """``MEDATTN_SECRET`` if set, else the data directory's own secret file.

    The file is created once, readable by its owner only, and atomically, so processes starting together
    agree on one secret. A secret that is too short, or a file that cannot be read, is a StoreError.
    """
    if SECRET_ENV in os.environ:
        secret = os.environ[SECRET_ENV].encode()
        if len(secret) < MIN_SECRET_BYTES:
            raise StoreError(
                f"{SECRET_ENV} is {len(secret)} bytes long; it must be at least {MIN_SECRET_BYTES}. "
                f"Make one with: {MAKE_A_SECRET}"
            )
        return secret
    path = data_directory(data_dir) / SECRET_FILE
    try:
        if not path.exists():
            _make_secret_file(path)
        secret = path.read_bytes().strip()
    except OSError as error:
        raise StoreError(
            f"The secret file {SECRET_FILE} in the data directory cannot be read or made ({error.strerror}). "
            f"Make it a readable file of at least {MIN_SECRET_BYTES} bytes, or remove it to have one made."
        ) from None
    if len(secret) < MIN_SECRET_BYTES:
        raise StoreError(
            f"The secret file {SECRET_FILE} in the data directory holds {len(secret)} bytes; it needs at least "
            f"{MIN_SECRET_BYTES}. Restore it from a backup, or remove it to have a new one made (the keys of "
            "scans reviewed before will then no longer match)."
        )
    return secret


def _make_secret_file(path: Path) -> None:
    draft = path.with_name(f".{SECRET_FILE}.{uuid.uuid4().hex}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(os.urandom(32).hex().encode())
    try:
        os.link(draft, path)  # fails if another process got there first: then theirs is used
    except FileExistsError:
        pass
    finally:
        draft.unlink()


def keyed_hash(secret: bytes, tag: str, value: bytes) -> str:
    """HMAC-SHA256 of ``tag:value``: the one way every key below is made."""
    return hmac.new(secret, tag.encode() + b":" + value, sha256).hexdigest()


def scan_key(secret: bytes, instance_uid: str | None, content: bytes) -> str:
    """A scan (an image): its SOP Instance UID, or its bytes where it has none (a PNG, say). Reviews, reports
    and scoring rows name a scan by this key."""
    return keyed_hash(secret, "uid", instance_uid.encode()) if instance_uid else keyed_hash(secret, "bytes", content)


def file_key(secret: bytes, path: Path) -> str:
    """A file of an archive being scored, by its path: what a resumed run matches on."""
    return keyed_hash(secret, "path", os.fsencode(path))


def instance_key(secret: bytes, sop_instance_uid: str) -> str:
    """A DICOM instance on a PACS, by its SOP Instance UID: what a resumed DICOMweb scoring run matches on."""
    return keyed_hash(secret, "instance", sop_instance_uid.encode())


def reading_key(secret: bytes, study_id: int, reader_position: int, case_position: int, arm: str) -> str:
    """One reading of a reader study, as the page's widget keys name it: the page's HTML holds widget keys, and a
    key that spelled out the case position and arm told a reader what they should not know."""
    return keyed_hash(secret, "reading", f"{study_id}/{reader_position}/{case_position}/{arm}".encode())[:24]


def dicom_study_key(secret: bytes, study_instance_uid: str) -> str:
    """A DICOM study on a PACS, by its Study Instance UID: how the Worklist names a study it lists."""
    return keyed_hash(secret, "study", study_instance_uid.encode())
