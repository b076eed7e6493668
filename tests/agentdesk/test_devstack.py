import subprocess

from agentdesk.devstack import expand, read_procfile
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
