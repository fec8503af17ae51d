"""A department's deployment as docs/operations.md describes it, run for real: HAProxy (Debian's) with
deploy/haproxy.cfg in front of two replicas of the app, one PostgreSQL store, a shared secret and sign-in through
the real OpenID provider. Chromium reaches it by a host name of its own, mapped to loopback."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.app.browser_support import (
    ARTIFACTS,
    ROOT,
    WAIT_MS,
    free_port,
    launch_chromium,
    require_chromium,
    server_pid,
    serving_app,
)
from tests.app.test_browser import upload_and_wait_for_overlay
from tests.app.test_serving import websocket_handshake
from tests.app.test_sign_in_browser import (
    identity_provider,
    require_provider,
    save_unsure_review,
    sign_in,
    sign_in_secrets,
)
from tests.conftest import empty_postgres

require_chromium()

from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.slow
HOST = "medattn.test"  # the department's host name; Chromium resolves it to 127.0.0.1
CONFIG = ROOT / "deploy" / "haproxy.cfg"
HAPROXY = Path("/usr/sbin/haproxy")  # Debian's
STICKY = "medattn-replica"  # the cookie by which HAProxy keeps a browser on one replica


@dataclass(frozen=True)
class Department:
    url: str  # what clinicians open: the proxy, by the department's host name
    port: int  # the proxy's port on 127.0.0.1
    replicas: tuple[str, str]  # each replica's own address

    def on(self, replica: int) -> dict:
        """The cookie that sends a browser to replica 1 or 2, as HAProxy sets it."""
        return {"name": STICKY, "value": f"replica-{replica}", "url": self.url}


def require_haproxy() -> None:
    if not HAPROXY.exists():
        message = f"{HAPROXY} is missing: apt-get install -y haproxy"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@contextmanager
def haproxy(port: int, replicas: tuple[str, str], log: Path) -> Iterator[None]:
    """deploy/haproxy.cfg on 127.0.0.1:``port`` in front of ``replicas``; stopped by its own id."""
    environment = {**os.environ, "MEDATTN_BIND": f"127.0.0.1:{port}", "MEDATTN_HOSTS": HOST,
                   "MEDATTN_REPLICA_1": replicas[0].removeprefix("http://"),
                   "MEDATTN_REPLICA_2": replicas[1].removeprefix("http://")}  # fmt: skip
    with log.open("wb") as output:
        command = [str(HAPROXY), "-db", "-f", str(CONFIG)]  # -db: in the foreground, logging to stderr
        proxy = subprocess.Popen(command, env=environment, stdout=output, stderr=output)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=2).close()
                    break
                except OSError:
                    if proxy.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"haproxy did not start:\n{log.read_text()}") from None
                    time.sleep(0.2)
            yield
        finally:
            proxy.terminate()
            proxy.wait(timeout=20)


@pytest.fixture
def department(tmp_path) -> Iterator[Department]:
    require_provider()
    require_haproxy()
    proxy_port, provider_port = free_port(), free_port()
    url = f"http://{HOST}:{proxy_port}"
    secrets = sign_in_secrets(tmp_path / "secrets.toml", f"{url}/oauth2callback", provider_port)
    shared = {"MEDATTN_DB_URL": empty_postgres(), "MEDATTN_SECRET": os.urandom(32).hex()}
    with ExitStack() as stack:
        stack.enter_context(identity_provider(provider_port, f"{url}/oauth2callback", tmp_path / "provider.log"))
        options = ("--secrets.files", str(secrets), "--server.allowedHosts", HOST)
        replicas = tuple(
            stack.enter_context(
                serving_app(tmp_path / f"data-{n}", tmp_path / f"replica-{n}.log", environment=shared, options=options)
            )
            for n in (1, 2)
        )
        stack.enter_context(haproxy(proxy_port, replicas, tmp_path / "haproxy.log"))
        yield Department(url, proxy_port, replicas)


def fetch(port: int, path: str, host: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers={"Host": host})
    response = connection.getresponse()
    answer = response.status, response.read()
    connection.close()
    return answer


@pytest.fixture
def chromium_at_the_department() -> Iterator:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright, f"--host-resolver-rules=MAP {HOST} 127.0.0.1")
        yield chromium
        chromium.close()


def test_the_proxy_serves_the_departments_host_name_alone_and_keeps_operator_endpoints_off_the_network(department):
    status, page = fetch(department.port, "/", f"{HOST}:{department.port}")
    assert status == 200 and b"<noscript>" in page  # the app's page
    for foreign in ("evil.example", f"evil.example:{department.port}", "127.0.0.1", f"{HOST}.evil.example"):
        status, page = fetch(department.port, "/", foreign)
        assert status == 421 and b"streamlit" not in page.lower(), foreign  # nothing of the app
        assert websocket_handshake(department.port, foreign) == 421
    for endpoint in ("/_stcore/metrics", "/_stcore/agent/openapi.json", "/_stcore/agent/mcp"):
        assert fetch(department.port, endpoint, HOST)[0] == 404, endpoint
    assert fetch(department.port, "/_stcore/health", HOST)[0] == 200  # what a load balancer above may watch
    assert websocket_handshake(department.port, f"{HOST}:{department.port}") == 101
    # A replica reached around the proxy still upgrades no WebSocket for a foreign name (server.allowedHosts).
    replica_port = int(department.replicas[0].rsplit(":", 1)[1])
    assert websocket_handshake(replica_port, f"evil.example:{replica_port}") != 101


def test_sessions_stick_to_a_replica_reviews_meet_in_one_history_and_a_stopped_replica_loses_none(
    department, chromium_at_the_department
):
    browser = chromium_at_the_department
    first = sign_in(browser, department.url, "reader-a", cookies=(department.on(1),))
    second = sign_in(browser, department.url, "reader-b", cookies=(department.on(2),))
    for page, replica in ((first, 1), (second, 2)):  # sign-in's round trip to the provider came back to it
        assert {c["name"]: c["value"] for c in page.context.cookies()}[STICKY] == f"replica-{replica}"
        upload_and_wait_for_overlay(page, ROOT / "assets" / "samples" / "synthetic-nodule.png")
        save_unsure_review(page)

    os.kill(server_pid(department.replicas[0]), signal.SIGKILL)  # replica 1 stops mid-session
    first.goto(department.url + "/history")  # the proxy sends Dr A to replica 2, where the sign-in still holds
    expect(first.get_by_text("1 of 1 reviews")).to_be_visible(timeout=WAIT_MS)
    assert {c["name"]: c["value"] for c in first.context.cookies()}[STICKY] == "replica-2"
    first.screenshot(path=ARTIFACTS / "replica-stopped-history.png", full_page=True)

    lead = sign_in(browser, department.url, "lead")
    lead.get_by_role("link", name="History").click()
    expect(lead.get_by_text("2 of 2 reviews")).to_be_visible(timeout=WAIT_MS)  # one from each replica
    for reviewer in ("Dr A <dr.a@hospital.example>", "Dr B <dr.b@hospital.example>"):
        expect(lead.get_by_text(reviewer).first).to_be_attached()
