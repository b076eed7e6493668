"""Smoke test of bench/live_bench.py: a --quick run with three samples per path finishes and
prints the figures in the agreed shape. Timings are never asserted (the bench is for reading)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/agentdesk_livebench")
METRICS = {
    "event to screen (apply_signal)",
    "dial click to frame (HTTP+Celery)",
    "dial click HTTP answer",
    "Celery task to frame (push only)",
    "next preview after Save (HTTP)",
}


def _own_redis_db(url: str, db: int = 13) -> str:
    """The suite's Redis server, another database: the bench starts its own worker on the
    ``dial``/``default`` queues, which must never take the suite's tasks (or hand it ours)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        # Not urlunsplit: it writes unix:///path back as unix:/path.
        return f"unix://{parts.path}?db={db}"
    return urlunsplit(parts._replace(path=f"/{db}"))


def _postgres_up(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", connect_timeout=2):
            return True
    except Exception:
        return False


@pytest.mark.skipif(not _postgres_up(BENCH_DB), reason="the live bench needs PostgreSQL")
def test_quick_run_prints_the_table_and_json(tmp_path):
    from django.conf import settings

    from agentdesk.devstack import redis_ping

    if not redis_ping(settings.REDIS_URL):
        pytest.skip(f"no Redis at {settings.REDIS_URL}")

    out = tmp_path / "live.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "live_bench.py"),
            "--quick",
            "--iterations",
            "3",
            "--leads",
            "2000",
            "--database-url",
            BENCH_DB,
            # The suite's own Redis server (the embedded one under `make test`), not a shared default.
            "--redis-url",
            _own_redis_db(settings.REDIS_URL),
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    printed = json.loads(lines[-1])
    assert printed == json.loads(out.read_text())
    assert any(line.startswith("metric") and "ratio" in line for line in lines)
    assert printed["iterations"] == 3
    rows = {row["metric"]: row for row in printed["metrics"]}
    assert set(rows) >= METRICS
    assert any(name.startswith("next lead lease") for name in rows)
    for row in rows.values():
        assert row["n"] >= 3
        for key in ("median_ms", "p95_ms", "baseline_median_ms", "ratio"):
            assert isinstance(row[key], int | float) and row[key] > 0, (row["metric"], key)
        assert row["p95_ms"] >= row["median_ms"]
        assert row["baseline"]
