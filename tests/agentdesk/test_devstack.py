import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from agentdesk.devstack import CrashLoop, RestartPolicy, StopRequest, Supervisor, expand, read_procfile
from bench.shift.desk import SimulatedAgent
from bench.shift.script import Script
from tests.emulator_fixtures import free_port
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


# -- restarts ------------------------------------------------------------------------------------
def supervise_procfile(tmp_path: Path, text: str, policy: RestartPolicy) -> Supervisor:
    procfile = tmp_path / "Procfile"
    procfile.write_text(text)
    supervisor = Supervisor(dict(os.environ), policy)
    for name, command in read_procfile(procfile):
        supervisor.start(name, expand(command, {}), "0")
    return supervisor


def tend_until(supervisor: Supervisor, capsys, text: str, timeout: float = 20) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in seen:
        assert time.monotonic() < deadline, f"never saw {text!r} in:\n{seen}"
        supervisor.tend()
        time.sleep(0.05)
        seen += capsys.readouterr().out
    return seen


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


CRASH_LOOP = """\
crasher: python -c "import time; print('up', time.monotonic(), flush=True); time.sleep(0.3); raise SystemExit(3)"
steady: python -c "import time; time.sleep(60)"
"""


def test_a_dead_process_is_restarted_with_a_growing_backoff_until_it_crash_loops(tmp_path, capsys):
    policy = RestartPolicy(backoff=0.2, backoff_cap=0.4, healthy_after=30, crash_limit=4, crash_window=30)
    supervisor = supervise_procfile(tmp_path, CRASH_LOOP, policy)
    steady = supervisor.children["steady"].process
    try:
        with pytest.raises(CrashLoop) as crash:
            supervisor.watch(StopRequest())
        assert steady.poll() is None, "a crash elsewhere touched the steady process"
    finally:
        supervisor.stop_all()
    out = capsys.readouterr().out
    said = [line.split(" | ", 1)[1] for line in out.splitlines() if line.startswith("\033[1mdevstack")]
    restarts = [line for line in said if "crasher exited with code" in line]
    assert restarts == [
        "crasher exited with code 3; restarting in 0.2 s (restart 1)",
        "crasher exited with code 3; restarting in 0.4 s (restart 2)",
        "crasher exited with code 3; restarting in 0.4 s (restart 3)",  # capped
    ]
    assert sum(line.startswith("crasher restarted (pid ") for line in said) == 3
    # Each start waited out its backoff after the previous run's 0.3 s.
    starts = [float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if "crasher\033[0m | up " in line]
    assert len(starts) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert all(gap >= 0.3 + delay for gap, delay in zip(gaps, [0.2, 0.4, 0.4], strict=True)), gaps
    message = str(crash.value)
    assert message.startswith("crasher exited 4 times within 30 s (last with code 3); stopping everything.")
    assert "prefixed 'crasher |'" in message and "\n    up " in message  # its own last lines
    assert steady.poll() is not None  # stop_all stopped the rest


def test_a_process_that_ran_healthy_starts_again_from_the_first_backoff(tmp_path, capsys):
    procfile = 'sleeper: python -c "import time; time.sleep(0.6); raise SystemExit(1)"\n'
    policy = RestartPolicy(backoff=0.2, backoff_cap=5, healthy_after=0.4, crash_limit=10, crash_window=60)
    supervisor = supervise_procfile(tmp_path, procfile, policy)
    try:
        out = tend_until(supervisor, capsys, "(restart 3)")
    finally:
        supervisor.stop_all()
    assert "sleeper exited with code 1; restarting in 0.2 s (restart 3)" in out
    assert "0.4 s" not in out


LEAVES_A_CHILD = """\
parent: python -c "import subprocess, sys; print('child', subprocess.Popen(['sleep', '60']).pid, flush=True)"
"""


def test_a_restart_kills_what_the_dead_process_left_in_its_group(tmp_path, capsys):
    policy = RestartPolicy(backoff=0.2, crash_limit=10)
    supervisor = supervise_procfile(tmp_path, LEAVES_A_CHILD, policy)
    try:
        out = tend_until(supervisor, capsys, "parent restarted (pid ")
    finally:
        supervisor.stop_all()
    orphan = int(out.split("| child ", 1)[1].split()[0])
    deadline = time.monotonic() + 5
    while alive(orphan):
        assert time.monotonic() < deadline, "the dead process's child outlived its restart"
        time.sleep(0.05)


def children_of(pid: int) -> dict[int, str]:
    """The live children of ``pid`` with their command lines, read from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def only(processes: dict[int, str], marker: str) -> int:
    [pid] = [pid for pid, cmdline in processes.items() if marker in cmdline]
    return pid


def wait_for_log(log: Path, pattern: str, count: int = 1, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(errors="replace")
        if len(re.findall(pattern, text)) >= count:
            return text
        assert time.monotonic() < deadline, (
            f"never saw {pattern!r} x{count} in make run's output:\n{text[-4000:]}"
        )
        time.sleep(0.2)


def make_run(tmp_path: Path, port: int, emulator_port: int, **extra: str) -> tuple[subprocess.Popen, Path]:
    """``make run`` on its own SQLite and private Redis in ``tmp_path``; its output in the log."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "PUBLIC_BASE_URL", "EMULATOR_URL"}
    }
    env |= {
        "AGENTDESK_VAR_DIR": str(tmp_path / "var"),
        "PORT": str(port),
        "EMULATOR_PORT": str(emulator_port),
        **extra,
    }
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "agentdesk.devstack", "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return run, log


@pytest.mark.slow
def test_make_run_restarts_a_killed_worker_and_stops_on_a_crash_loop(tmp_path):
    port = free_port()
    # The second death within the window is a loop.
    run, log = make_run(
        tmp_path, port, free_port(), DEVSTACK_CRASH_LIMIT="2", DEVSTACK_CRASH_WINDOW_SECONDS="600"
    )
    try:
        wait_for_log(log, "is running at")
        processes = children_of(run.pid)
        web, worker = only(processes, "daphne"), only(processes, "-n dial@")
        pool = list(children_of(worker))
        assert pool, "the dial worker has no pool processes to leak"

        os.kill(worker, signal.SIGKILL)
        text = wait_for_log(log, r"dial@\S+ ready\.", count=2, timeout=30)
        assert "worker exited with code -9; restarting in 1 s (restart 1)" in text
        restarted = int(re.search(r"worker restarted \(pid (\d+)\)", text).group(1))
        assert only(children_of(run.pid), "-n dial@") == restarted != worker
        assert not [pid for pid in pool if alive(pid)], "the killed worker's pool outlived its restart"
        assert alive(web) and only(children_of(run.pid), "daphne") == web
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200

        processes = children_of(run.pid)
        os.kill(restarted, signal.SIGKILL)
        assert run.wait(30) == 1
        text = log.read_text(errors="replace")
        assert "worker exited 2 times within 600 s (last with code -9); stopping everything." in text
        assert "prefixed 'worker |'" in text
        assert not [cmdline for pid, cmdline in processes.items() if alive(pid)]  # Redis included
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGTERM)
            run.wait(30)


HUAWEI_DEMO_CAMPAIGN = re.compile(r'<option value="(\d+)"[^>]*>\s*Broadband upgrade \(Huawei\)')


@pytest.mark.slow
def test_make_run_restarts_a_killed_streams_process_and_platform_events_flow_again(tmp_path):
    """A demo agent works the Huawei campaign on a desk (HTTP and its WebSocket) while ``make
    run`` is up; the platform event streams process is SIGKILLed: it is restarted, and the next
    Huawei offer (after the agent's skip) reaches the desk through the new process."""
    port, emulator_port = free_port(), free_port()
    run, log = make_run(tmp_path, port, emulator_port)
    base_url, emulator_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{emulator_port}"
    desk = SimulatedAgent(
        username="agent1",
        campaign_id=0,
        base_url=base_url,
        emulator_url=emulator_url,
        script=Script(emulator_url),
        scale=1.0,
        seed=1,
    )
    try:
        wait_for_log(log, "is running at")
        streams = only(children_of(run.pid), "run_streams")
        desk.sign_in()
        found = HUAWEI_DEMO_CAMPAIGN.search(desk.session.get(f"{base_url}/desk/", timeout=30).text)
        desk.campaign_id = found.group(1)
        desk.post("/desk/campaign/", {"campaign": desk.campaign_id})
        desk.post("/desk/presence/", {"presence": "ready", "campaign": desk.campaign_id})
        assert desk._wait_frames(lambda view: view.facts()["lead"], 60), "no Huawei offer reached the desk"
        first = desk.view.facts()["lead"]

        os.kill(streams, signal.SIGKILL)
        text = wait_for_log(log, r"streams restarted \(pid \d+\)", timeout=30)
        assert "streams exited with code -9; restarting in 1 s (restart 1)" in text
        restarted = int(re.search(r"streams restarted \(pid (\d+)\)", text).group(1))
        assert only(children_of(run.pid), "run_streams") == restarted != streams

        # The skip's saybusy + sayfree make the gateway offer the next record: only the new
        # streams process is polling the agent's events to bring it.
        desk.post(f"/desk/leads/{first}/skip/", {"reason": "Bad data"})
        assert desk._wait_frames(lambda view: view.facts()["lead"] not in ("", first), 60), (
            "no Huawei offer reached the desk after the restart"
        )
        assert desk.compare(settle=1.0)["same"] is True
    finally:
        desk.reading.clear()
        if desk.socket is not None:
            desk.socket.close()
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGTERM)
            run.wait(30)
