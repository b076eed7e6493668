"""The stack a shift runs against: started here the way ``make run`` starts it
(``python -m agentdesk.devstack run``) on its own ports and its own var dir, so it never meets a
developer's ``make run``; or one already running (``--url``). With ``DATABASE_URL`` and
``REDIS_URL`` set, the started stack uses them; otherwise the embedded default (SQLite, a
private Redis) in the shift's var dir.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    url: str
    emulator_url: str
    env: dict[str, str]
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    events: list[str] = field(default_factory=list)

    @property
    def healthz_auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env.get('HEALTHZ_TOKEN', '')}"}

    def health(self) -> dict:
        try:
            answer = requests.get(f"{self.url}/healthz", headers=self.healthz_auth, timeout=10)
            return {"http": answer.status_code, **answer.json()}
        except (requests.RequestException, ValueError) as exc:
            return {"http": 0, "error": str(exc)}

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def children(self) -> dict[int, str]:
        """The devstack's direct children: pid -> command line."""
        if self.process is None:
            return {}
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == self.process.pid:
                    found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        return found

    def dial_worker_pid(self) -> int | None:
        """The main process of the Celery worker on the ``dial`` queue (the Procfile's ``worker``)."""
        for pid, cmdline in self.children().items():
            if "celery" in cmdline and " worker " in cmdline and "dial," in cmdline:
                return pid
        return None

    def kill_dial_worker(self, timeout: float = 120) -> dict:
        """SIGKILL the dial worker's main process (a crash, not a shutdown); then wait until the
        devstack says it restarted it and ``/healthz`` sees a Celery worker answer again."""
        pid = self.dial_worker_pid()
        if pid is None:
            return {"killed": False, "why": "no dial worker found"}
        assert self.log_path is not None
        log_offset = self.log_path.stat().st_size
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        result: dict = {"killed": True, "pid": pid, "new_pid": None, "back_after": None}
        while time.monotonic() < killed_at + timeout:
            with open(self.log_path, "rb") as log:
                log.seek(log_offset)
                restarted = re.search(rb"worker restarted \(pid (\d+)\)", log.read())
            if restarted and result["new_pid"] is None:
                result["new_pid"] = int(restarted.group(1))
                result["restarted_after"] = round(time.monotonic() - killed_at, 1)
            if result["new_pid"] is not None:
                health = self.health()
                result["health"] = health.get("checks", {}).get("celery", health)
                if health.get("checks", {}).get("celery", {}).get("ok"):
                    result["back_after"] = round(time.monotonic() - killed_at, 1)
                    result.pop("health")
                    return result
            time.sleep(0.5)
        return result

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def stack_env(*, var_dir: Path, time_scale: float) -> dict[str, str]:
    """The started stack's environment: its own ports and var dir, emulator time compressed, and
    the product's own clocks scaled where a shift needs to see them work (the reconciler)."""
    port, emulator_port = free_port(), free_port()
    env = {
        **os.environ,
        "AGENTDESK_VAR_DIR": str(var_dir),
        "PORT": str(port),
        "EMULATOR_PORT": str(emulator_port),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "EMULATOR_URL": f"http://127.0.0.1:{emulator_port}",
        "HEALTHZ_TOKEN": os.environ.get("HEALTHZ_TOKEN") or secrets.token_urlsafe(24),
        "EMULATOR_TIME_SCALE": str(time_scale),
        # The platform's idle sign-out and GUID grace are platform seconds; a held poll lasts
        # real seconds (not scaled), so keep the idle limit above a poll's hold.
        "EMULATOR_HUAWEI_IDLE_SIGNOUT_SECONDS": str(max(120, 60 / time_scale)),
        # A quiet live call is looked at after 15 platform minutes (the minimum the product
        # takes is 30 s): so very long conversations meet the reconciler during the shift.
        "CALLS_LOST_AFTER_SECONDS": str(max(30, int(900 * time_scale))),
        "DJANGO_SETTINGS_MODULE": "agentdesk.settings",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def stack_start(*, var_dir: Path, time_scale: float, fresh: bool = True, timeout: float = 240) -> Stack:
    """``python -m agentdesk.devstack run`` in its own session; returns once ``/healthz`` is 200.
    ``fresh`` empties the var dir first (the embedded database of the last shift included)."""
    var_dir = var_dir.resolve()  # the private Redis chdirs into it: relative paths would break
    if fresh and var_dir.exists():
        shutil.rmtree(var_dir)
    var_dir.mkdir(parents=True, exist_ok=True)
    env = stack_env(var_dir=var_dir, time_scale=time_scale)
    log_path = var_dir / "devstack.log"
    log = open(log_path, "ab")  # noqa: SIM115 - the stack's output for its whole life
    process = subprocess.Popen(
        [sys.executable, "-m", "agentdesk.devstack", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack = Stack(env["PUBLIC_BASE_URL"], env["EMULATOR_URL"], env, process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the stack exited with {process.returncode}:\n{stack.log_tail()}")
        if stack.health().get("http") == 200:
            return stack
        time.sleep(1)
    stack.stop()
    raise RuntimeError(f"the stack did not turn healthy within {timeout:.0f} s:\n{stack.log_tail()}")
