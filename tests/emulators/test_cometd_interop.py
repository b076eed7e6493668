"""Interoperability: the CometD project's own JavaScript client (npm ``cometd`` +
``cometd-nodejs-client``, pinned in tests/interop/package-lock.json) against the GWS emulator's
CometD server, with Basic auth, the JSESSIONID cookie and the CSRF header."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest
import requests

INTEROP = Path(__file__).resolve().parent.parent / "interop"


@pytest.fixture(scope="session")
def node_client() -> Path:
    """``npm ci`` the pinned client once if tests/interop/node_modules is missing. No silent skip:
    without node or npm the test fails and says what to install."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            "the CometD interop test needs Node.js and npm on PATH (Debian: apt-get install nodejs npm)"
        )
    if not (INTEROP / "node_modules" / "cometd-nodejs-client" / "package.json").exists():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=INTEROP, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in {INTEROP} failed:\n{done.stdout}\n{done.stderr}")
    return INTEROP / "cometd_client.mjs"


def _lines(stream: Any, queue: Queue) -> None:
    for line in stream:
        queue.put(line)
    queue.put(None)


def test_cometd_javascript_client_receives_a_call_state(emulator, node_client):
    process = subprocess.Popen(
        ["node", str(node_client), emulator.url, "agent1", "demo"],
        cwd=INTEROP,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: Queue = Queue()
    threading.Thread(target=_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        try:
            ready = json.loads(lines.get(timeout=30) or "{}")
        except Empty:
            ready = {}
        assert ready.get("ready") is True, (
            f"node client not ready: {ready} {process.stderr.read() if process.poll() is not None else ''}"
        )

        # Trigger one CallStateChangeMessage: a Dial over REST in the same user's own session.
        http = requests.Session()
        http.auth = ("agent1", "demo")
        devices = http.get(f"{emulator.url}/api/v2/me/devices", timeout=5)
        token, device_id = devices.headers["X-CSRF-TOKEN"], devices.json()["devices"][0]["id"]
        headers = {"X-CSRF-TOKEN": token}
        start = {"operationName": "StartContactCenterSession", "channels": ["voice"]}
        assert (
            http.post(f"{emulator.url}/api/v2/me", json=start, headers=headers, timeout=5).json()[
                "statusCode"
            ]
            == 0
        )
        dial = {
            "operationName": "Dial",
            "devicePath": f"/devices/{device_id}",
            "destination": {"phoneNumber": "5001"},
        }
        answer = http.post(
            f"{emulator.url}/api/v2/me/devices/{device_id}/calls", json=dial, headers=headers, timeout=5
        )
        assert answer.json() == {"statusCode": 0}

        process.wait(timeout=30)
        result = json.loads(lines.get(timeout=5) or "{}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    assert process.returncode == 0, result
    assert result["errors"] == []
    assert result["handshake"]["successful"] is True
    assert result["handshake"]["clientId"] == ready["clientId"]
    assert result["subscribe"]["successful"] is True and result["subscribe"]["subscription"] == "/v2/me/calls"
    message = result["message"]
    assert message["channel"] == "/v2/me/calls"
    assert message["data"]["messageType"] == "CallStateChangeMessage"
    assert message["data"]["call"]["state"] == "Dialing"
    assert message["data"]["call"]["dnis"] == "5001"
    assert result["disconnect"]["successful"] is True
    # The client really left: the server holds no client for it any more.
    assert emulator.control("GET", "genesys/state")["cometd"]["clients"] == []
