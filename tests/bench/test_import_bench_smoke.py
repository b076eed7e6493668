"""Smoke test of bench/import_bench.py: a small run, CSV and the same rows as an .xlsx, goes
through upload, dry run and import and prints the figures, the workbook importing exactly the
CSV's leads, and the first rows through django-import-export importing exactly ours. Timings are never asserted (the bench is for reading). It found the bench's dry run
dropped as "superseded" once dry runs were numbered (a mapping no run was started for is run 0)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.test_live_bench_smoke import _postgres_up

ROOT = Path(__file__).resolve().parents[2]
BENCH_DB = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/agentdesk_bench")


@pytest.mark.skipif(not _postgres_up(BENCH_DB), reason="the import bench measures PostgreSQL's path")
def test_a_small_import_bench_runs_csv_and_xlsx():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "import_bench.py"), "--rows", "3000", "--xlsx", "--import-export", "300",
         "--database-url", BENCH_DB],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "import:" in out and "ratio import / raw COPY:" in out
    assert "ratio .xlsx / CSV" in out and "the same 2970 leads" in out
    # The first 300 rows, ours against django-import-export: the same leads (3 invalid numbers).
    assert "first 300 rows: ours" in out and "the same 297 leads" in out
    assert "ratio django-import-export / ours:" in out
