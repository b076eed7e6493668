"""/healthz checks every part for real: 200 on the live stack, 503 naming a stopped Redis; details
only for staff and holders of the health token, up or down for anyone else."""

import shutil
import subprocess
import time

import pytest
import requests

from agentdesk.devstack import redis_binary, redis_ping
from tests.emulator_fixtures import free_port, wait_for_http
from tests.process_fixtures import BIN, HEALTHZ_AUTH, ManagedProcess, child_env


@pytest.mark.django_db(transaction=True)
def test_healthz_is_200_when_everything_is_up(live_stack):
    answer = requests.get(f"{live_stack.base_url}/healthz", headers=HEALTHZ_AUTH, timeout=15)
    body = answer.json()
    assert answer.status_code == 200, body
    assert body["failing"] == []
    assert set(body["checks"]) == {"database", "redis", "celery", "channel_layer", "emulators"}
    assert "worker" in body["checks"]["celery"]["detail"]


@pytest.mark.django_db(transaction=True)
def test_healthz_tells_anyone_else_only_up_or_down(live_stack):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer ünïcode"}):
        answer = requests.get(f"{live_stack.base_url}/healthz", headers=headers, timeout=15)
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok"}
        assert "worker" not in answer.text and "sqlite" not in answer.text and "postgres" not in answer.text


@pytest.mark.django_db(transaction=True)
def test_healthz_names_a_stopped_redis_with_503(tmp_path):
    sock = tmp_path / "redis.sock"
    url = f"unix://{sock}"
    redis = subprocess.Popen(
        [redis_binary(), "--port", "0", "--unixsocket", str(sock), "--save", "", "--dir", str(tmp_path)]
    )
    port = free_port()
    web = ManagedProcess(
        "healthz-web",
        [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "agentdesk.asgi:application"],
        child_env(REDIS_URL=url, EMULATOR_URL=""),
        tmp_path / "web.log",
    )
    try:
        deadline = time.monotonic() + 10
        while not redis_ping(url) and time.monotonic() < deadline:
            time.sleep(0.05)
        web.start()
        wait_for_http(f"http://127.0.0.1:{port}/login/")
        healthy_redis = requests.get(
            f"http://127.0.0.1:{port}/healthz", headers=HEALTHZ_AUTH, timeout=20
        ).json()
        assert healthy_redis["checks"]["redis"]["ok"] is True
        assert healthy_redis["checks"]["channel_layer"]["ok"] is True
        redis.terminate()
        redis.wait(10)
        answer = requests.get(f"http://127.0.0.1:{port}/healthz", headers=HEALTHZ_AUTH, timeout=30)
        body = answer.json()
        assert answer.status_code == 503
        assert "redis" in body["failing"]
        assert body["checks"]["redis"]["ok"] is False
        assert body["checks"]["database"]["ok"] is True
    finally:
        web.stop()
        if redis.poll() is None:
            redis.kill()
        shutil.rmtree(tmp_path, ignore_errors=True)
