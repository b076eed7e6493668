"""The live stack's teardown flush survives a deadlock with a transaction another process commits."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.core.management.color import no_style
from django.core.management.sql import sql_flush
from django.db import connection

from tests import process_fixtures
from tests.process_fixtures import is_lock_conflict, retry_flush


def deadlock_a_flush(flush) -> BaseException | None:
    """Run ``flush`` in a thread while another connection holds the flush's last table and then
    asks for its first: the deadlock PostgreSQL breaks by aborting the flush (it waited first).
    Returns what the flush raised, or None."""
    statement = sql_flush(no_style(), connection)[0]
    tables = statement.removeprefix("TRUNCATE ").split(";")[0].split(", ")
    first, last = tables[0], tables[-1].split(" ")[0]
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            flush()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)
        finally:
            connection.close()

    with psycopg.connect(process_fixtures.test_database_url()) as other:
        # The flush must be the one PostgreSQL aborts: whichever waiter checks for the deadlock
        # first loses, and on a busy machine that could be this connection; it checks last.
        other.execute("SET deadlock_timeout = '30s'")
        other.execute(f"LOCK TABLE {last} IN ACCESS SHARE MODE")
        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 10
        while not other.execute(
            "SELECT 1 FROM pg_locks WHERE NOT granted AND relation = %s::regclass", [last.strip('"')]
        ).fetchone():
            assert time.monotonic() < deadline, "the flush never waited for the held table"
            time.sleep(0.02)
        other.execute(f"LOCK TABLE {first} IN ACCESS SHARE MODE")  # the cycle; the flush loses
        other.commit()
    thread.join(30)
    return outcome[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="deadlock detection is PostgreSQL's")
def test_a_flush_aborted_by_a_deadlock_is_run_again(transactional_db, django_user_model):
    django_user_model.objects.create_user("left-behind")

    def flush() -> None:
        call_command("flush", interactive=False, verbosity=0)

    unretried = deadlock_a_flush(flush)
    assert isinstance(unretried, CommandError) and is_lock_conflict(unretried), unretried
    assert django_user_model.objects.filter(username="left-behind").exists()

    assert deadlock_a_flush(lambda: retry_flush(flush)) is None
    assert not django_user_model.objects.exists()


def test_other_flush_failures_are_not_retried():
    calls = []

    def broken() -> None:
        calls.append(1)
        raise CommandError("Database test couldn't be flushed") from ValueError("no such table")

    with pytest.raises(CommandError):
        retry_flush(broken)
    assert calls == [1]
