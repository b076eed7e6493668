"""Real processes for tests: daphne, Celery workers, beat-less streams, on the test database.

Tests that use these must see committed rows from other processes, so they use the
``transactional_db`` fixture (or ``@pytest.mark.django_db(transaction=True)``).

Child processes get the same settings as the test process, pointed at the test database:
``child_env()`` builds that environment. ``live_stack`` starts daphne, a dial/default worker,
an imports worker and the streams process next to the emulators, once per test session.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection
from django.test import TransactionTestCase

from agentdesk.devstack import die_with_parent
from tests.emulator_fixtures import EmulatorProcess, free_port, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
logger = logging.getLogger("tests.process_fixtures")

# deadlock_detected, lock_not_available (PostgreSQL); SQLite says "database is locked".
LOCK_CONFLICT_STATES = {"40P01", "55P03"}
FLUSH_ATTEMPTS = 5


def test_database_url() -> str:
    """The URL of the database the tests run on (pytest-django has switched NAME to test_...)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}{port}/{db['NAME']}"


# Child processes accept it for /healthz's details (agentdesk.health); send it as a bearer token.
HEALTHZ_TOKEN = "healthz-test-token"
HEALTHZ_AUTH = {"Authorization": f"Bearer {HEALTHZ_TOKEN}"}


def child_env(**overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "agentdesk.settings",
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "AGENTDESK_VAR_DIR": str(settings.VAR_DIR),
        "SECRET_KEY": settings.SECRET_KEY,
        "PUBLIC_BASE_URL": settings.PUBLIC_BASE_URL,
        "EMULATOR_URL": settings.EMULATOR_URL,
        "CHANNELS_PREFIX": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        "CACHE_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "HEALTHZ_TOKEN": HEALTHZ_TOKEN,
        "PYTHONUNBUFFERED": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.update(overrides)
    return env


def is_lock_conflict(exc: BaseException | None) -> bool:
    """Whether a deadlock or a lock wait gave up somewhere in the chain of causes."""
    while exc is not None:
        if getattr(exc, "sqlstate", None) in LOCK_CONFLICT_STATES or "database is locked" in str(exc):
            return True
        exc = exc.__cause__
    return False


def retry_flush[T](flush: Callable[[], T], attempts: int = FLUSH_ATTEMPTS) -> T:
    """Run ``flush`` (a teardown's ``flush`` command) again when a lock conflict aborted it.

    The flush is one ``TRUNCATE`` of every table, taking its locks table after table. While the
    live stack runs, a worker's or daphne's transaction touching two tables (a disposition writes
    the call, then the lead) can hold the later one and wait for the earlier: PostgreSQL breaks
    the deadlock by aborting the flush, whose test rows would then stay behind for the next test
    (an agent still on a call, a desk that will not let go). The other transaction commits within
    the deadlock timeout, so the next attempt finds the tables free."""
    for attempt in range(1, attempts + 1):
        try:
            return flush()
        except CommandError as exc:
            if attempt == attempts or not is_lock_conflict(exc):
                raise
            logger.warning(
                "teardown flush hit a lock conflict (attempt %d of %d); retrying", attempt, attempts
            )
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def flushes_retried() -> Iterator[None]:
    """Every ``transactional_db`` teardown inside the block flushes through ``retry_flush``."""
    teardown = TransactionTestCase._fixture_teardown

    def retried(self) -> None:
        retry_flush(lambda: teardown(self))

    with mock.patch.object(TransactionTestCase, "_fixture_teardown", retried):
        yield


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # A pytest killed (a timeout, ^C twice) takes its daphne, workers and streams with it:
            # an orphan keeps its test database open and the next run cannot drop it.
            preexec_fn=die_with_parent,
        )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if not self.process or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL the whole process group at once: a crash, not a shutdown."""
        self.stop(signal.SIGKILL)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def celery_worker(queues: str, name: str, env: dict[str, str], concurrency: int = 1) -> ManagedProcess:
    argv = [
        str(BIN / "celery"),
        "-A",
        "agentdesk",
        "worker",
        "-Q",
        queues,
        "-n",
        f"{name}-{os.getpid()}@%h",
        "-c",
        str(concurrency),
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "INFO",
    ]
    return ManagedProcess(name, argv, env, settings.VAR_DIR / "test-logs" / f"{name}.log")


def daphne(name: str, port: int, env: dict[str, str]) -> ManagedProcess:
    """A web process serving the project's ASGI application on ``port`` (not started)."""
    argv = [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "agentdesk.asgi:application"]
    return ManagedProcess(name, argv, env, settings.VAR_DIR / "test-logs" / f"{name}.log")


def wait_for_worker(name_prefix: str, timeout: float = 30.0) -> None:
    from agentdesk.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=0.5) or []
        if any(name.startswith(name_prefix) for reply in replies for name in reply):
            return
    raise RuntimeError(f"Celery worker {name_prefix} did not answer a ping within {timeout}s")


@dataclass
class LiveStack:
    base_url: str
    emulator: EmulatorProcess
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{proc.log_tail()}" for name, proc in self.processes.items())


@pytest.fixture(scope="session")
def live_stack(django_db_setup, django_db_blocker, emulator_process: EmulatorProcess) -> Iterator[LiveStack]:
    """daphne + Celery workers (dial/default and imports) + streams, on the test database, next
    to the emulators. Settings in this process are pointed at the same URLs, so services called
    from tests build the same callback URLs the workers do."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings.PUBLIC_BASE_URL = base_url
    settings.EMULATOR_URL = emulator_process.url
    env = child_env(
        PUBLIC_BASE_URL=base_url, EMULATOR_URL=emulator_process.url, ALLOWED_HOSTS="127.0.0.1,localhost"
    )
    stack = LiveStack(base_url=base_url, emulator=emulator_process)
    logs = settings.VAR_DIR / "test-logs"
    stack.processes["web"] = daphne("web", port, env)
    stack.processes["worker"] = celery_worker("dial,default", "worker", env, concurrency=2)
    stack.processes["imports"] = celery_worker("imports", "imports", env)
    stack.processes["streams"] = ManagedProcess(
        "streams", [sys.executable, "manage.py", "run_streams"], env, logs / "streams.log"
    )
    with django_db_blocker.unblock():
        try:
            for proc in stack.processes.values():
                proc.start()
            wait_for_http(f"{base_url}/login/", timeout=30)
            wait_for_worker("worker-")
            wait_for_worker("imports-")
        except Exception:
            print(stack.logs())
            for proc in stack.processes.values():
                proc.stop()
            raise
        try:
            with flushes_retried():
                yield stack
        finally:
            for proc in stack.processes.values():
                proc.stop()
