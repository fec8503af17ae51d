"""The app's modes and roles, decided without Streamlit (medattn/access.py)."""

from __future__ import annotations

from types import SimpleNamespace

from medattn.access import (
    COORDINATOR,
    LOCAL_USER,
    PACS,
    READER,
    Refusal,
    admit,
    deployment,
    expired,
    identity,
    visible_to,
)


def test_the_app_is_personal_only_on_loopback_with_nothing_shared_configured():
    assert not deployment({}, "127.0.0.1").shared
    assert not deployment({"MEDATTN_DATA_DIR": "/data"}, "localhost").shared
    store = deployment({"MEDATTN_DB_URL": "postgresql+psycopg://u@db/medattn"}, "127.0.0.1")
    assert store.shared and store.reasons == ("the review store is shared (MEDATTN_DB_URL)",)
    assert deployment({"MEDATTN_DICOMWEB_URL": "http://pacs/dicom-web"}, "127.0.0.1").shared
    everywhere = deployment({}, "0.0.0.0")
    assert everywhere.shared and "server.address = 0.0.0.0" in everywhere.reasons[0]
    assert deployment({}, None).shared  # Streamlit's own default listens on every address
    assert not deployment({"MEDATTN_DB_URL": "  "}, "::1").shared


def test_roles_come_from_the_configured_claim_or_the_email_allow_list():
    claims = {"sub": "u-17", "iss": "https://idp", "name": "Dr A", "email": "A@Hospital.org", "roles": ["reader"]}
    reader = identity(claims, {})
    assert reader.roles == {READER} and reader.verified and reader.label == "Dr A <A@Hospital.org>"
    assert (reader.issuer, reader.subject) == ("https://idp", "u-17")
    groups = {"MEDATTN_ROLES_CLAIM": "groups", "MEDATTN_COORDINATOR_ROLES": "Radiology-Research, trials"}
    coordinator = identity(claims | {"groups": "radiology-research"}, groups)
    assert coordinator.roles == {COORDINATOR}  # a claim given as one string, compared without case
    allowed = identity(claims | {"roles": []}, {"MEDATTN_PACS_EMAILS": "a@hospital.org"})
    assert allowed.may(PACS) and not allowed.may(READER)
    assert identity({"sub": "x", "roles": ["visitor"]}, {}).roles == set()  # signed in, but no role


def test_a_reader_sees_their_own_reviews_and_saves_under_their_verified_name():
    reviews = [SimpleNamespace(reviewer="Dr A <a@h.org>"), SimpleNamespace(reviewer="Dr B <b@h.org>")]
    reader = identity({"name": "Dr A", "email": "a@h.org", "roles": ["reader"]}, {})
    assert visible_to(reader, reviews) == reviews[:1] and reader.named("Dr Someone Else") == "Dr A <a@h.org>"
    lead = identity({"name": "Dr L", "email": "l@h.org", "roles": ["coordinator"]}, {})
    assert visible_to(lead, reviews) == reviews
    assert visible_to(LOCAL_USER, reviews) == reviews and LOCAL_USER.named(" Dr Local ") == "Dr Local"
    assert LOCAL_USER.named("") == "unnamed"


def test_a_sign_in_older_than_the_session_limit_counts_for_nothing():
    now = 1_800_000_000
    assert not expired({"auth_time": now - 11 * 3600, "exp": now - 1}, {}, now)  # the token's own exp is minutes
    assert expired({"auth_time": now - 13 * 3600}, {}, now)  # a shift is 12 hours
    assert expired({"iat": now - 3600}, {"MEDATTN_SESSION_HOURS": "0.5"}, now)
    assert expired({}, {}, now)  # a sign-in that does not say when it happened


def test_a_shared_app_says_why_it_lets_no_one_in():
    now, env = 1_800_000_000, {}
    reader = {"sub": "a", "name": "Dr A", "roles": ["reader"], "auth_time": now}
    assert admit(False, reader, env, now) is Refusal.UNCONFIGURED
    assert admit(True, None, env, now) is Refusal.SIGNED_OUT
    assert admit(True, reader | {"auth_time": now - 13 * 3600}, env, now) is Refusal.EXPIRED
    assert admit(True, reader | {"roles": []}, env, now) is Refusal.NO_ROLE
    assert admit(True, reader, env, now).roles == {READER}
