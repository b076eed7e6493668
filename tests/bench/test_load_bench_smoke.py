"""Smoke test of bench/load_bench.py: every load bench at a tiny size (a few desks, agents and
seconds) finishes, prints its table and figures in the agreed shape, and the callbacks it posted
were each applied exactly once. Timings are never asserted (the benches are for reading)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.bench.test_live_bench_smoke import ROOT, _own_redis_db, _postgres_up

BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/agentdesk_loadbench")


@pytest.mark.slow
@pytest.mark.skipif(not _postgres_up(BENCH_DB), reason="the load benches need PostgreSQL")
def test_every_load_bench_runs_at_a_tiny_size(tmp_path):
    from django.conf import settings

    from agentdesk.devstack import redis_ping

    if not redis_ping(settings.REDIS_URL):
        pytest.skip(f"no Redis at {settings.REDIS_URL}")
    out = tmp_path / "load.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "load_bench.py"),
            "all",
            "--tiny",
            "--no-record",
            "--database-url",
            BENCH_DB,
            "--redis-url",
            _own_redis_db(settings.REDIS_URL, 14),
            "--json",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    figures = json.loads(out.read_text())
    assert json.loads(run.stdout.strip().splitlines()[-1]) == figures
    assert any(
        line.startswith("figure") and "baseline" in line and "ratio" in line
        for line in run.stdout.splitlines()
    )
    names = [f["figure"] for f in figures]
    for start in (
        "callback intake",
        "event to screen",
        "desks one daphne process",
        "dial click to HTTP answer",
        "dial click to platform request",
        "scale-out",
    ):
        assert any(name.startswith(start) for name in names), (start, names)
    for figure in figures:
        assert (
            figure["now"]
            and figure["baseline"]
            and figure["command"].startswith("python bench/load_bench.py")
        )
        assert isinstance(figure["ratio"], int | float) and figure["ratio"] > 0, figure
    by_name = {f["figure"].split(" (")[0].split(",")[0]: f["detail"] for f in figures}
    intake = by_name["callback intake"]
    assert intake["callbacks"] > 0 and intake["stored"] == intake["callbacks"]
    assert intake["lost"] == intake["doubled"] == intake["retries_applied"] == intake["error_count"] == 0
    events = next(f["detail"] for f in figures if f["figure"].startswith("event to screen"))
    assert events["missing_frames"] == 0 and events["event_to_screen"]["n"] == 20
    desks = next(f["detail"] for f in figures if f["figure"].startswith("desks"))
    assert desks["steps"] and all(step["rss_mb"] > 0 for step in desks["steps"])
    dial = next(f["detail"] for f in figures if f["figure"].startswith("dial"))
    assert dial["refused"] == 0 and dial["http"]["n"] == 4 and dial["platform"]["n"] == 4
    scale = next(f["detail"] for f in figures if f["figure"].startswith("scale-out"))
    assert scale["one"]["webs"] == 1 and scale["two"]["webs"] == 2
    assert scale["two"]["lost"] == scale["two"]["doubled"] == 0
