"""How the app serves by default: on this computer alone, and to its own host names alone."""

from __future__ import annotations

import base64
import http.client
import os
import subprocess
import sys
import time

import pytest

from tests.app.browser_support import ROOT
from tests.loopback import LoopbackNamespace

pytestmark = pytest.mark.slow
PORT = 8501  # inside a namespace of its own, where nothing else listens


def websocket_handshake(port: int, host: str) -> int:
    """The status of a WebSocket upgrade to the app's stream with this Host and Origin (101: accepted)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("GET", "/_stcore/stream", skip_host=True)
    for name, value in {"Host": host, "Origin": f"http://{host}", "Upgrade": "websocket", "Connection": "Upgrade",
                        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
                        "Sec-WebSocket-Protocol": "streamlit"}.items():  # fmt: skip
        connection.putheader(name, value)
    connection.endheaders()
    status = connection.getresponse().status
    connection.close()
    return status


def test_the_default_app_listens_on_loopback_alone_and_answers_its_own_host_names_alone(tmp_path):
    """It listened on every interface and upgraded a WebSocket for Host: evil.example (DNS rebinding)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MEDATTN_")}
    environment["MEDATTN_DATA_DIR"] = str(tmp_path / "data")
    with LoopbackNamespace() as namespace, (tmp_path / "app.log").open("wb") as log:
        command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(PORT)]  # no address
        server = subprocess.Popen(namespace.command(command), cwd=ROOT, env=environment, stdout=log, stderr=log)
        try:
            outer = namespace.forward(PORT)
            deadline = time.monotonic() + 60
            while True:
                listening = subprocess.run(namespace.command(["ss", "-ltnH"]), capture_output=True, text=True).stdout
                if f":{PORT} " in listening or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            addresses = {line.split()[3].rsplit(":", 1)[0] for line in listening.splitlines() if f":{PORT} " in line}
            assert addresses == {"127.0.0.1"}, (listening, (tmp_path / "app.log").read_text())
            assert websocket_handshake(outer, f"127.0.0.1:{PORT}") == 101
            assert websocket_handshake(outer, f"localhost:{PORT}") == 101
            assert websocket_handshake(outer, f"evil.example:{PORT}") != 101
        finally:
            server.terminate()
            server.wait(timeout=20)
