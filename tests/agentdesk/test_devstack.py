import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from agentdesk.devstack import StopRequest, expand, read_procfile
from tests.process_fixtures import ROOT


def test_procfile_names_every_process():
    names = [name for name, _ in read_procfile()]
    assert names == ["web", "worker", "imports", "beat", "streams", "emulators"]


def test_procfile_commands_expand_like_a_shell():
    env = {"PORT": "9001"}
    assert expand("daphne -p ${PORT:-8000} x", env) == ["daphne", "-p", "9001", "x"]
    assert expand("daphne -p ${PORT:-8000} x", {}) == ["daphne", "-p", "8000", "x"]


def test_find_python_prints_a_312_or_newer_interpreter():
    path = subprocess.run(
        [str(ROOT / "scripts/find-python")], capture_output=True, text=True, check=True
    ).stdout.strip()
    version = subprocess.run(
        [path, "-c", "import sys; print(sys.version_info[:2] >= (3, 12))"], capture_output=True, text=True
    )
    assert version.stdout.strip() == "True"


# A runner that starts us with TERM blocked (or ignored) must still be able to stop `make run`:
# both dispositions survive exec, and CI once waited 90 s on a stop that never arrived.
SIGNAL_PROBE = """
import os, signal, subprocess, sys, threading
from agentdesk.devstack import take_stop_signals

if sys.argv[1] == "child":
    print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
          signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, []))
    raise SystemExit
got = threading.Event()
take_stop_signals(lambda *_: got.set())
os.kill(os.getpid(), signal.SIGTERM)
print(got.wait(2))
subprocess.run([sys.executable, "-c", sys.argv[2], "child"], check=True)
"""


def test_stop_signals_reach_a_devstack_started_with_them_blocked_and_ignored():
    def hostile_runner():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        signal.signal(signal.SIGTERM, signal.SIG_IGN)

    out = subprocess.run(
        [sys.executable, "-c", SIGNAL_PROBE, "parent", SIGNAL_PROBE],
        cwd=ROOT,
        preexec_fn=hostile_runner,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True"]


def test_the_stop_handler_takes_no_lock_so_it_can_fire_inside_the_main_loops_wait(monkeypatch):
    # The handler runs on the main thread between any two bytecodes, including while that thread
    # is inside the loop's own wait: it must complete from there (an Event's set() would hang).
    stop = StopRequest()
    fired = []

    def sleep_interrupted_by_term(seconds):
        stop(signal.SIGTERM)
        fired.append(seconds)

    monkeypatch.setattr("agentdesk.devstack.time.sleep", sleep_interrupted_by_term)
    done = threading.Event()
    worker = threading.Thread(target=lambda: (stop.sleep(0.5), done.set()), daemon=True)
    worker.start()
    assert done.wait(5), "the stop handler hung inside the wait"
    assert stop and stop.signal == "SIGTERM" and fired == [0.5]
    stop.sleep(0.5)  # once stopped, the loop does not sleep again
    assert fired == [0.5]


def test_python_in_the_procfile_is_this_interpreter_by_its_full_path():
    argv = expand("python -m emulators --port ${EMULATOR_PORT:-8100}", {})
    assert argv == [sys.executable, "-m", "emulators", "--port", "8100"]
    assert Path(argv[0]).is_absolute()


ORPHAN_PROBE = """
import subprocess, sys, time
from agentdesk.devstack import die_with_parent
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         start_new_session=True, preexec_fn=die_with_parent)
print(child.pid, flush=True)
time.sleep(60)
"""


def test_children_die_with_a_killed_devstack():
    parent = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_PROBE], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    child_pid = int(parent.stdout.readline())
    parent.kill()  # SIGKILL: no handler, no cleanup of its own
    parent.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return
        with open(f"/proc/{child_pid}/stat") as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                return  # exited, waiting to be reaped by init
        time.sleep(0.1)
    os.kill(child_pid, signal.SIGKILL)
    raise AssertionError("the child outlived its killed parent")
