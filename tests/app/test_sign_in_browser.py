"""Sign-in in a real browser, with a real OpenID Connect provider: panva's oidc-provider (npm, tests/oidc/), the
certified Node.js implementation, started on loopback with three accounts, and a shared app on a real PostgreSQL
store. Chromium signs in through the provider's own login page; nothing is mocked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from tests.app.browser_support import (
    ARTIFACTS,
    ROOT,
    WAIT_MS,
    free_port,
    require_chromium,
    serving_app,
    settle,
    wait_until_answered,
)
from tests.app.test_browser import answer, upload_and_wait_for_overlay
from tests.app.test_study_browser import candidate_cases, read, set_up_study, shown_pixels
from tests.conftest import empty_postgres

require_chromium()

from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.slow

OIDC = ROOT / "tests" / "oidc"
ACCOUNTS = {
    "reader-a": {"name": "Dr A", "email": "dr.a@hospital.example", "roles": ["reader"]},
    "reader-b": {"name": "Dr B", "email": "dr.b@hospital.example", "roles": ["reader"]},
    "lead": {"name": "Dr Lead", "email": "dr.lead@hospital.example", "roles": ["coordinator"]},
    "pacs-reader": {"name": "Dr PACS", "email": "dr.pacs@hospital.example", "roles": ["reader", "pacs"]},
}
CLIENT_SECRET = "the test client's secret, 32 bytes or more"
SIGN_IN = "Sign in with your hospital account"


def require_provider() -> None:
    """Skip where Node.js or the provider's packages are missing (npm ci --prefix tests/oidc); in CI, fail."""
    missing = None if shutil.which("node") else "node"
    missing = missing or (None if (OIDC / "node_modules" / "oidc-provider").is_dir() else "npm ci --prefix tests/oidc")
    if missing:
        message = f"the OpenID provider cannot start: {missing}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@contextmanager
def identity_provider(port: int, redirect_uri: str, log: Path) -> Iterator[str]:
    """oidc-provider on 127.0.0.1:``port`` with ``ACCOUNTS`` and one client, the app; stopped by its own id."""
    environment = {**os.environ, "OIDC_PORT": str(port), "OIDC_CLIENT_ID": "medattn",
                   "OIDC_CLIENT_SECRET": CLIENT_SECRET, "OIDC_REDIRECT_URI": redirect_uri,
                   "OIDC_ACCOUNTS": json.dumps(ACCOUNTS)}  # fmt: skip
    issuer = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        provider = subprocess.Popen(["node", "provider.mjs"], cwd=OIDC, env=environment, stdout=output, stderr=output)
        try:
            wait_until_answered(f"{issuer}/.well-known/openid-configuration", provider, log, seconds=30)
            yield issuer
        finally:
            provider.terminate()
            provider.wait(timeout=20)


def sign_in_secrets(path: Path, redirect_uri: str, provider_port: int) -> Path:
    """Streamlit's ``[auth]`` settings for the provider on ``provider_port``, written to ``path``; replicas that
    share the file share the cookie secret, so any of them honours a sign-in made on another."""
    path.write_text(
        "[auth]\n"
        f'redirect_uri = "{redirect_uri}"\n'
        f'cookie_secret = "{os.urandom(24).hex()}"\n'
        'client_id = "medattn"\n'
        f'client_secret = "{CLIENT_SECRET}"\n'
        f'server_metadata_url = "http://127.0.0.1:{provider_port}/.well-known/openid-configuration"\n'
        # oidc-provider knows the prompts of the standard (login, consent, none), not Google's select_account.
        'client_kwargs = { scope = "openid profile email roles", prompt = "login" }\n'
    )
    return path


@contextmanager
def app_with_sign_in(tmp_path: Path, environment: dict) -> Iterator[str]:
    """The app with ``environment`` (which makes it shared) and sign-in through a provider started beside it."""
    require_provider()
    app_port, provider_port = free_port(), free_port()
    redirect_uri = f"http://127.0.0.1:{app_port}/oauth2callback"
    secrets = sign_in_secrets(tmp_path / "secrets.toml", redirect_uri, provider_port)
    with (
        identity_provider(provider_port, redirect_uri, tmp_path / "provider.log"),
        serving_app(
            tmp_path / "data",
            tmp_path / "app.log",
            port=app_port,
            environment=environment,
            options=("--secrets.files", str(secrets)),
        ) as url,
    ):
        yield url


@pytest.fixture
def shared_app(tmp_path) -> Iterator[str]:
    """The app as a department shares it: a PostgreSQL store (an empty database), sign-in configured."""
    with app_with_sign_in(tmp_path, {"MEDATTN_DB_URL": empty_postgres()}) as url:
        yield url


def visit(browser, url: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(url)
    return page


def sign_in(
    browser, url: str, account: str, viewport: tuple[int, int] = (1280, 900), cookies: tuple[dict, ...] = ()
) -> Page:
    """A new browser (holding ``cookies``) signs in as ``account`` through the provider's own login and consent
    pages."""
    width, height = viewport
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    context.add_cookies(list(cookies))
    page = context.new_page()
    page.goto(url)
    page.get_by_role("button", name=SIGN_IN).click(timeout=WAIT_MS)
    page.get_by_placeholder("Enter any login").fill(account)
    page.get_by_placeholder("and password").fill("the provider's development login takes any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click(timeout=WAIT_MS)  # the provider's consent page
    expect(page.get_by_text(f"Signed in as {ACCOUNTS[account]['name']}")).to_be_visible(timeout=WAIT_MS)
    return page


def save_unsure_review(page: Page) -> None:
    """Answer "Unsure" for every finding of the scan on Review, and save."""
    for finding in ("Pulmonary nodule", "Pleural effusion", "Cardiomegaly"):
        answer(page, finding, "Unsure")
    page.get_by_role("button", name="Save review").click()
    expect(page.get_by_text("Review saved (number")).to_be_visible(timeout=WAIT_MS)


def test_a_visitor_gets_the_sign_in_page_at_every_address_and_a_forged_cookie_changes_nothing(browser, shared_app):
    page = visit(browser, shared_app)
    for path in ("", "/worklist", "/model", "/history", "/study"):
        page.goto(shared_app + path)
        expect(page.get_by_role("button", name=SIGN_IN)).to_be_visible(timeout=WAIT_MS)
        assert page.get_by_text("Page not found").count() == 0  # each address answers, with the sign-in page
        assert page.locator("[data-testid=stSidebarNav]").count() == 0  # no page is offered, none is shown
        assert (
            page.locator("[data-testid=stMain] :is([data-testid=stImage], [data-testid=stTable], iframe)").count() == 0
        )
    page.screenshot(path=ARTIFACTS / "sign-in.png")
    # A cookie named as Streamlit's own, not signed with the app's secret: still a visitor.
    forged = json.dumps({"is_logged_in": True, "name": "Dr Forger", "email": "x@y", "roles": ["coordinator"]})
    page.context.add_cookies([{"name": "_streamlit_user", "value": forged, "url": shared_app}])
    page.goto(shared_app + "/history")
    expect(page.get_by_role("button", name=SIGN_IN)).to_be_visible(timeout=WAIT_MS)
    assert page.get_by_text("Dr Forger").count() == 0


def test_readers_review_as_themselves_see_their_own_reviews_and_a_coordinator_sees_all(browser, shared_app):
    reader = sign_in(browser, shared_app, "reader-a")
    upload_and_wait_for_overlay(reader, ROOT / "assets" / "samples" / "synthetic-nodule.png")
    reviewer = reader.get_by_role("textbox", name="Reviewer")
    expect(reviewer).to_have_value("Dr A <dr.a@hospital.example>")
    expect(reviewer).to_be_disabled()  # the signed-in identity, never a typed name
    save_unsure_review(reader)
    reader.get_by_role("link", name="History").click()
    expect(reader.get_by_text("1 of 1 reviews")).to_be_visible(timeout=WAIT_MS)
    reader.screenshot(path=ARTIFACTS / "signed-in-reader-history.png", full_page=True)

    other = sign_in(browser, shared_app, "reader-b")
    other.get_by_role("link", name="History").click()
    expect(other.get_by_text("No review has been saved yet")).to_be_visible(timeout=WAIT_MS)  # not Dr A's

    lead = sign_in(browser, shared_app, "lead")
    lead.get_by_role("link", name="History").click()
    expect(lead.get_by_text("1 of 1 reviews")).to_be_visible(timeout=WAIT_MS)
    expect(lead.get_by_text("Dr A <dr.a@hospital.example>").first).to_be_attached()  # a cell of the data grid

    reader.get_by_role("button", name="Sign out").click()  # signs out at the provider too, which asks first
    reader.get_by_role("button", name="Yes, sign me out").click(timeout=WAIT_MS)
    expect(reader.get_by_role("button", name=SIGN_IN)).to_be_visible(timeout=WAIT_MS)
    reader.goto(shared_app + "/history")
    expect(reader.get_by_role("button", name=SIGN_IN)).to_be_visible(timeout=WAIT_MS)


def test_a_sign_in_older_than_the_session_limit_must_be_renewed(browser, tmp_path):
    """Streamlit's own sign-in cookie lasts 30 days; a shared workstation's session lasts MEDATTN_SESSION_HOURS."""
    settings = {"MEDATTN_DICOMWEB_URL": "http://127.0.0.1:9/dicom-web", "MEDATTN_SESSION_HOURS": "0.002"}  # 7.2 s
    with app_with_sign_in(tmp_path, settings) as url:
        page = sign_in(browser, url, "reader-a")
        page.wait_for_timeout(8000)
        page.goto(url + "/history")
        expect(page.get_by_text("Your sign-in is more than 0.002 hours old: sign in again.")).to_be_visible(
            timeout=WAIT_MS
        )
        assert page.get_by_text("Review history").count() == 0


def test_only_enrolled_readers_read_a_study_as_themselves_blind_to_it_until_a_coordinator_closes_it(
    browser, shared_app, tmp_path
):
    lead = sign_in(browser, shared_app, "lead")
    lead.get_by_role("link", name="Reader study").click()
    set_up_study(lead, "Blind pilot", readers="dr.a@hospital.example\nDR.B@hospital.example")

    readers = {}
    for account, name in (("reader-a", "Dr A"), ("reader-b", "Dr B")):
        reader = readers[name] = sign_in(browser, shared_app, account)
        reader.get_by_role("link", name="Reader study").click()
        expect(reader.get_by_text(f"Reading as {name} <{ACCOUNTS[account]['email']}>")).to_be_visible(timeout=WAIT_MS)
        expect(reader.get_by_text("0 of 4 readings saved")).to_be_visible()  # the other's readings are not theirs
        assert reader.get_by_label("Your name, as a reader").count() == 0  # no one reads as someone else
        assert reader.get_by_text("Results", exact=True).count() == 0  # a reader sees no results, open or closed
        read(reader, name, 1, candidate_cases(), [])
        html = reader.content()
        for telling in ("case_position", "case-position", "truth", "Truth", '"arm"'):
            assert telling not in html, telling  # nothing in the page names the case, its position, arm or truth
    reader = readers["Dr A"]

    # The study's image, saved from the page and taken to Review, is kept from its reader while the study is open.
    saved = tmp_path / "saved-from-the-study.png"
    Image.fromarray(shown_pixels(reader)).save(saved)  # every value the viewer holds, as a reader could take them
    reader.get_by_role("link", name="Review", exact=True).click()
    reader.locator("[data-testid=stSidebar] input[type=file]").set_input_files([saved])
    expect(reader.get_by_text("is a case of the reader study 'Blind pilot'")).to_be_visible(timeout=WAIT_MS)
    assert reader.get_by_text("Attention overlay —").count() == 0 and reader.get_by_text("Probabilities").count() == 0
    reader.screenshot(path=ARTIFACTS / "study-case-kept-from-review.png", full_page=True)

    other = sign_in(browser, shared_app, "pacs-reader")  # not enrolled: offered nothing to read, and no results
    other.get_by_role("link", name="Reader study").click()
    expect(other.get_by_text("You are not enrolled in any reader study")).to_be_visible(timeout=WAIT_MS)
    assert other.get_by_text("Blind pilot").count() == 0 and other.get_by_text("Dr A").count() == 0

    lead.get_by_text("Results", exact=True).click()
    expect(lead.get_by_text("Enrolled readers: dr.a@hospital.example, dr.b@hospital.example")).to_be_visible(
        timeout=WAIT_MS
    )
    expect(lead.get_by_text("The results are shown once the study is closed")).to_be_visible()
    lead.get_by_role("button", name="Close the study").click()
    expect(lead.get_by_text("No reader has finished the study yet")).to_be_visible(timeout=WAIT_MS)

    reader.reload()  # closed: the case may be reviewed now
    reader.locator("[data-testid=stSidebar] input[type=file]").set_input_files([saved])
    settle(reader)
    answered = reader.get_by_text("Show the model's output anyway").or_(reader.get_by_text("Attention overlay —"))
    expect(answered).to_be_visible(timeout=WAIT_MS)
    assert reader.get_by_text("is a case of the reader study").count() == 0
