"""`python -m emulators --demo` (what `make run` starts) offers leads on Huawei and Genesys."""

import json
import subprocess
import sys
import time

import requests

from tests.emulator_fixtures import ROOT, free_port, wait_for_http


def test_demo_flag_loads_preview_campaigns():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "emulators", "--demo", "--port", str(port)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/_emulator/health")
        deadline = time.monotonic() + 10
        while True:
            huawei = requests.get(f"{url}/_emulator/huawei/campaigns", timeout=5).json()
            if huawei or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(huawei) == 40
        assert json.loads(huawei[0]["callData"])["name"]
        records = requests.get(f"{url}/_emulator/genesys/state", timeout=5).json()["records"]
        assert len(records) == 40
        assert {r["campaignName"] for r in records.values()} == {"DemoPreview"}
    finally:
        process.terminate()
        process.wait(10)
