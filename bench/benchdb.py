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


def django_on(database_url: str, redis_url: str, prefix: str) -> None:
    """Set Django up in this process on the bench's own database (created when missing, then
    migrated) and Redis, with its own key prefixes and a scratch var directory. PostgreSQL only:
    the benches measure its path."""
    import os
    import sys
    import tempfile
    from pathlib import Path

    if not database_url.startswith("postgres"):
        raise SystemExit("The benchmark measures the PostgreSQL path: pass a postgres:// --database-url.")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    ensure_database(database_url)
    work_dir = Path(tempfile.mkdtemp(prefix=f"agentdesk-{prefix}-"))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "agentdesk.settings",
            "DATABASE_URL": database_url,
            # A lease tells the desk after commit (a push through Redis, sent without waiting).
            "REDIS_URL": redis_url,
            "CHANNELS_PREFIX": prefix,
            "CACHE_PREFIX": prefix,
            "AGENTDESK_VAR_DIR": str(work_dir / "var"),
            "LOG_LEVEL": "ERROR",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    print("Migrating ...", flush=True)
    call_command("migrate", verbosity=0)
