"""The installation's secret and the keyed hashes that stand in for identifiers."""

from __future__ import annotations

import hmac
import stat
from hashlib import sha256
from pathlib import Path

import pytest

from medattn import installation
from medattn.errors import StoreError
from medattn.installation import (
    dicom_study_key,
    file_key,
    installation_secret,
    instance_key,
    scan_key,
)

SECRET = b"a test installation's secret, 32 bytes or more"
UID = "1.2.826.0.1.3680043.8.498.12345"


def test_a_scan_key_is_stable_keyed_and_does_not_reveal_the_uid():
    key = scan_key(SECRET, UID, b"any bytes")
    assert key == scan_key(SECRET, UID, b"other bytes")  # the same instance, re-exported
    assert key != scan_key(b"another installation's secret, also long enough", UID, b"any bytes")
    assert UID not in key and len(key) == 64
    assert scan_key(SECRET, None, b"png bytes") != scan_key(SECRET, None, b"other png bytes")


def test_keys_saved_before_stay_the_keys_of_their_scans_and_files():
    """Reviews, audit entries and scoring outputs already hold keys: the tags and the hash must not change."""
    assert scan_key(SECRET, UID, b"") == hmac.new(SECRET, b"uid:" + UID.encode(), sha256).hexdigest()
    assert scan_key(SECRET, None, b"png") == hmac.new(SECRET, b"bytes:png", sha256).hexdigest()
    assert file_key(SECRET, Path("/a/b.dcm")) == hmac.new(SECRET, b"path:/a/b.dcm", sha256).hexdigest()
    assert instance_key(SECRET, UID) == hmac.new(SECRET, b"instance:" + UID.encode(), sha256).hexdigest()


def test_each_kind_of_key_hashes_behind_its_own_tag():
    keys = {scan_key(SECRET, UID, b""), instance_key(SECRET, UID), dicom_study_key(SECRET, UID)}
    assert len(keys) == 3  # the same UID as an image, a PACS instance and a study: three different keys


def test_the_installation_secret_is_made_once_and_private(tmp_path, monkeypatch):
    monkeypatch.delenv(installation.SECRET_ENV, raising=False)
    first = installation_secret(tmp_path)
    assert installation_secret(tmp_path) == first and len(first) == 64
    assert stat.S_IMODE((tmp_path / installation.SECRET_FILE).stat().st_mode) == 0o600
    assert list(tmp_path.iterdir()) == [tmp_path / installation.SECRET_FILE]  # no draft left behind
    monkeypatch.setenv(installation.SECRET_ENV, "shared by every replica, 32 bytes or more")
    assert installation_secret(tmp_path) == b"shared by every replica, 32 bytes or more"


@pytest.mark.parametrize("value", ["", "short"])
def test_a_short_secret_in_the_environment_is_refused_with_how_to_make_one(tmp_path, monkeypatch, value):
    monkeypatch.setenv(installation.SECRET_ENV, value)
    with pytest.raises(StoreError, match=rf"MEDATTN_SECRET is {len(value)} bytes long; .*secrets\.token_hex\(32\)"):
        installation_secret(tmp_path)


def test_an_empty_secret_file_is_refused_not_used_as_a_key(tmp_path, monkeypatch):
    monkeypatch.delenv(installation.SECRET_ENV, raising=False)
    (tmp_path / installation.SECRET_FILE).write_bytes(b"\n")
    with pytest.raises(StoreError, match=r"holds 0 bytes; it needs at least 32\. Restore it from a backup"):
        installation_secret(tmp_path)


def test_a_folder_where_the_secret_file_belongs_is_a_message(tmp_path, monkeypatch):
    monkeypatch.delenv(installation.SECRET_ENV, raising=False)
    (tmp_path / installation.SECRET_FILE).mkdir()
    with pytest.raises(StoreError, match=r"cannot be read or made .*Make it a readable file"):
        installation_secret(tmp_path)


def test_a_data_directory_that_cannot_be_made_is_a_message(tmp_path, monkeypatch):
    monkeypatch.delenv(installation.SECRET_ENV, raising=False)
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError, match=r"The data directory cannot be created .* Set MEDATTN_DATA_DIR"):
        installation_secret(tmp_path / "file" / "data")
