"""Fixtures that run the emulators as a real process and capture callbacks over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from agentdesk.devstack import die_with_parent

ROOT = Path(__file__).resolve().parent.parent

# One platform minute lasts 0.6 s in tests; long polls hold 1 s so loops stay quick. Huawei's GUID
# rotation and idle sign-out are stretched (to 10 s / 20 s / 60 s real) so a stream loop that
# polls about every second is never caught out by them; tests of rotation set their own values.
TEST_EMULATOR_ENV = {
    "EMULATOR_TIME_SCALE": "0.01",
    "EMULATOR_HUAWEI_GUID_ROTATE_SECONDS": "1000",
    "EMULATOR_HUAWEI_GUID_GRACE_SECONDS": "2000",
    "EMULATOR_HUAWEI_IDLE_SIGNOUT_SECONDS": "6000",
    "EMULATOR_HUAWEI_POLL_HOLD_SECONDS": "1",
    "EMULATOR_COMETD_TIMEOUT_MS": "1000",
    "EMULATOR_LOG_LEVEL": "WARNING",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up within {timeout}s")
        time.sleep(0.1)


@dataclass
class EmulatorProcess:
    url: str
    process: subprocess.Popen
    defaults: dict[str, Any] = field(default_factory=dict)

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        answer = requests.request(method, f"{self.url}/_emulator/{path.lstrip('/')}", json=payload, timeout=5)
        answer.raise_for_status()
        return answer.json()

    def reset(self) -> None:
        self.control("POST", "reset")
        self.control("POST", "config", self.defaults)

    def huawei_quiet(self) -> None:
        """Huawei's timers out of the way (no GUID rotation, no idle sign-out) unless a test
        shortens them; a short hold keeps empty polls quick."""
        self.control(
            "POST",
            "config",
            {
                "huawei_guid_rotate_seconds": 6000,
                "huawei_guid_grace_seconds": 6000,
                "huawei_idle_signout_seconds": 6000,
                "huawei_poll_hold_seconds": 0.3,
            },
        )

    def requests(self, **params: str) -> list[dict[str, Any]]:
        return requests.get(f"{self.url}/_emulator/requests", params=params, timeout=5).json()

    def callbacks(self, **params: str) -> list[dict[str, Any]]:
        return requests.get(f"{self.url}/_emulator/callbacks", params=params, timeout=5).json()


@pytest.fixture(scope="session")
def emulator_process() -> Iterator[EmulatorProcess]:
    port = free_port()
    env = {**os.environ, **TEST_EMULATOR_ENV}
    process = subprocess.Popen(
        [sys.executable, "-m", "emulators", "--port", str(port)],
        cwd=ROOT,
        env=env,
        preexec_fn=die_with_parent,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/_emulator/health")
        emu = EmulatorProcess(url=url, process=process)
        emu.defaults = requests.get(f"{url}/_emulator/config", timeout=5).json()
        yield emu
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def emulator(emulator_process: EmulatorProcess) -> EmulatorProcess:
    """The emulators, reset to their defaults before the test."""
    emulator_process.reset()
    return emulator_process


class CallbackSink:
    """A tiny HTTP server that records what platforms POST to it and answers scripted statuses."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # consumed first; then 200
        self.lock = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with sink.lock:
                    status = sink.statuses.pop(0) if sink.statuses else 200
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = raw.decode("utf-8", "replace")
                    sink.received.append(
                        {"path": self.path, "body": body, "status": status, "at": time.time()}
                    )
                    sink.lock.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10.0, path: str | None = None) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                rows = [r for r in self.received if path is None or r["path"].startswith(path)]
                if len(rows) >= count:
                    return rows
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"expected {count} callbacks at {path or '*'}, got {rows}")
                self.lock.wait(remaining)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callback_sink() -> Iterator[CallbackSink]:
    sink = CallbackSink()
    yield sink
    sink.close()
