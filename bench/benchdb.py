"""What every benchmark shares: its own PostgreSQL database, created when missing.

The benches run as scripts (``python bench/<name>.py``), so this directory is on ``sys.path``."""

from __future__ import annotations

from urllib.parse import urlparse, urlunparse


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
