"""Smoke test of bench/floor_bench.py: a small campaign in the worked mix, every supervisor page
asked as a signed-in supervisor (each answers 200, or the bench stops), the worker's breakdown
count, and the table with its baseline. Timings are never asserted (the bench is for reading)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.test_live_bench_smoke import _postgres_up

ROOT = Path(__file__).resolve().parents[2]
BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/agentdesk_bench")


@pytest.mark.skipif(not _postgres_up(BENCH_DB), reason="the floor bench measures PostgreSQL's path")
def test_a_small_floor_bench_asks_every_page():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "floor_bench.py"), "--leads", "5000", "--runs", "2",
         "--rebuild", "--no-record", "--database-url", BENCH_DB],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    for figure in ("campaigns page", "campaign page", "wallboard first paint", "agents board", "(breakdown)"):
        assert f"{figure}, 0.005M leads" in out, out[-3000:]
    assert "the worker's count" in out and "indexed count of waiting leads" in out
