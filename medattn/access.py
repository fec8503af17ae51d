"""Who is using the app, and what they may do: its two modes, and the roles a signed-in user's identity gives.

*Personal*: nothing shared is configured, and the server listens on loopback alone (the default of
``.streamlit/config.toml``): one person at their own workstation, who may do everything, and names themselves.
*Shared*: as soon as the review store is shared (``MEDATTN_DB_URL``), a PACS is configured
(``MEDATTN_DICOMWEB_URL``) or the server listens beyond loopback, every page asks for sign-in with the hospital's
identity provider (OpenID Connect, through Streamlit's own ``st.login``), and what a user may do comes from the
roles in their identity token.

Roles are read from one claim of the ID token (``MEDATTN_ROLES_CLAIM``, default ``roles``; ``groups`` for most
providers), each of the app's roles granted by the claim values listed for it, with a list of e-mail addresses
as a fallback for providers that send no such claim:

- reader: reviews scans and reads the studies they are enrolled in (``MEDATTN_READER_ROLES``, default
  ``reader``; ``MEDATTN_READER_EMAILS``);
- coordinator: sets up and closes studies, sees every review and result (``MEDATTN_COORDINATOR_ROLES``,
  ``MEDATTN_COORDINATOR_EMAILS``);
- pacs: lists and opens studies on the PACS and stores results into it (``MEDATTN_PACS_ROLES``,
  ``MEDATTN_PACS_EMAILS``).

Decided here without Streamlit, so every rule is tested in milliseconds (``tests/test_access.py``); the app asks
before it lays out any page (``pages/views/shared.signed_in``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Protocol, TypeVar


class _Authored(Protocol):
    reviewer: str


Reviewed = TypeVar("Reviewed", bound=_Authored)

READER, COORDINATOR, PACS = "reader", "coordinator", "pacs"
ROLES = (READER, COORDINATOR, PACS)
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class Deployment:
    """Whether the app is shared, and why (the settings that make it so, as a reader of the page can check)."""

    shared: bool
    reasons: tuple[str, ...]


def deployment(environ: Mapping[str, str], server_address: str | None) -> Deployment:
    """The mode the app runs in, from its environment and the address its server listens on."""
    reasons = []
    if environ.get("MEDATTN_DB_URL", "").strip():
        reasons.append("the review store is shared (MEDATTN_DB_URL)")
    if environ.get("MEDATTN_DICOMWEB_URL", "").strip():
        reasons.append("a PACS is configured (MEDATTN_DICOMWEB_URL)")
    if (server_address or "0.0.0.0") not in LOOPBACK:
        reasons.append(
            f"the server listens beyond this computer (server.address = {server_address or 'every address'})"
        )
    return Deployment(bool(reasons), tuple(reasons))


@dataclass(frozen=True)
class Identity:
    """Who is using the app. ``verified``: signed in with the identity provider (``issuer`` and ``subject`` are
    its stable names for them); otherwise the one local user of a personal app."""

    name: str
    roles: frozenset[str]
    verified: bool
    email: str = ""
    issuer: str = ""
    subject: str = ""

    def may(self, role: str) -> bool:
        return role in self.roles

    def named(self, typed: str) -> str:
        """The name a save or export is recorded under: the verified identity, or the name the local user typed."""
        return self.label if self.verified else (typed.strip() or "unnamed")

    @property
    def label(self) -> str:
        """How a review, reading or store names its author: the display name, and the e-mail address that makes
        it unique, for a signed-in user."""
        return f"{self.name} <{self.email}>" if self.verified and self.email else self.name


def visible_to(who: Identity, reviews: list[Reviewed]) -> list[Reviewed]:
    """The reviews ``who`` may see: every one for a coordinator (and a personal app's one user), their own for a
    reader, matched by the verified name they were recorded under."""
    return reviews if who.may(COORDINATOR) else [review for review in reviews if review.reviewer == who.label]


def may_read(who: Identity, enrolled: frozenset[str]) -> bool:
    """Whether ``who`` reads a study whose enrolled readers are ``enrolled`` (lower-case e-mail addresses): a
    signed-in user only when enrolled, whatever their roles; a personal app's one user always."""
    return not who.verified or who.email.lower() in enrolled


# The one user of a personal app: everything is theirs.
LOCAL_USER = Identity("", frozenset(ROLES), verified=False)


SESSION_HOURS_ENV = "MEDATTN_SESSION_HOURS"
SESSION_HOURS = 12.0  # a shift: Streamlit's own sign-in cookie lasts 30 days, too long for a shared workstation


def session_hours(environ: Mapping[str, str]) -> float:
    return float(environ.get(SESSION_HOURS_ENV) or SESSION_HOURS)


def expired(claims: Mapping[str, object], environ: Mapping[str, str], now: float) -> bool:
    """Whether a sign-in is older than the session limit (``MEDATTN_SESSION_HOURS``, default 12), counted from when
    the user authenticated (the ID token's ``auth_time``, else its ``iat``). The ID token's own ``exp`` is not used:
    providers set it to minutes (Keycloak: 5), which would sign a reader out mid-study."""
    signed_at = claims.get("auth_time") or claims.get("iat")
    if not isinstance(signed_at, int | float):
        return True  # a sign-in that does not say when it happened is not trusted to be recent
    return now - signed_at > session_hours(environ) * 3600


def _listed(environ: Mapping[str, str], key: str, default: str = "") -> frozenset[str]:
    return frozenset(value.strip().lower() for value in environ.get(key, default).split(",") if value.strip())


def identity(claims: Mapping[str, object], environ: Mapping[str, str]) -> Identity:
    """The signed-in user named by an ID token's ``claims`` (``st.user``), with the roles the configuration grants."""
    claim = environ.get("MEDATTN_ROLES_CLAIM", "roles")
    held = claims.get(claim) or []
    held = {str(value).lower() for value in ([held] if isinstance(held, str) else held)}
    email = str(claims.get("email") or "")
    roles = frozenset(
        role
        for role in ROLES
        if held & _listed(environ, f"MEDATTN_{role.upper()}_ROLES", role)
        or (email and email.lower() in _listed(environ, f"MEDATTN_{role.upper()}_EMAILS"))
    )
    name = str(claims.get("name") or email or claims.get("sub") or "signed-in user")
    return Identity(name, roles, True, email, str(claims.get("iss") or ""), str(claims.get("sub") or ""))


class Refusal(Enum):
    """Why a shared app lets no one in yet: what its locked page says."""

    UNCONFIGURED = "no identity provider is configured"
    SIGNED_OUT = "not signed in"
    EXPIRED = "the sign-in is older than the session limit"
    NO_ROLE = "signed in, with none of the app's roles"


def admit(
    configured: bool, claims: Mapping[str, object] | None, environ: Mapping[str, str], now: float
) -> Identity | Refusal:
    """Who a shared app lets in, or why it lets no one in: ``configured``, whether sign-in is; ``claims``, the
    signed-in user's ID-token claims, or None."""
    if not configured:
        return Refusal.UNCONFIGURED
    if claims is None:
        return Refusal.SIGNED_OUT
    if expired(claims, environ, now):
        return Refusal.EXPIRED
    who = identity(claims, environ)
    return who if who.roles else Refusal.NO_ROLE
