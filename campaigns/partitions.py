"""A big sheet into a new campaign: build the campaign's leads as a table, index it, attach it.

On PostgreSQL ``campaigns_lead`` is partitioned by campaign (migration 0007). Most campaigns'
leads live in its DEFAULT partition. When a sheet's staged rows are many and the campaign has no
lead yet, :func:`build` makes them the campaign's own partition instead of inserting them into
the DEFAULT one:

1. ``CREATE TABLE`` shaped like ``campaigns_lead``, with ``CHECK (campaign_id = X)`` so that
   attaching it needs no scan of its rows;
2. the staged rows go in with ``INSERT ... SELECT`` in sheet order, with the ids the dry run
   reserved for them from the partitioned table's own sequence (so ids stay unique across
   partitions and follow the sheet), a table with no index yet;
3. every index of ``campaigns_lead`` is built on it by ``CREATE INDEX``: one sort per index
   instead of a B-tree descent per row per index (BENCHMARKS.md, "Fifth round": about half the
   import's time);
4. ``ANALYZE``, then ``ALTER TABLE campaigns_lead ATTACH PARTITION ... FOR VALUES IN (X)``. The
   attach adopts the indexes built in 3 and checks the DEFAULT partition holds no lead of X.

All of it runs inside the import's transaction: until COMMIT nobody sees the new table, and a
cancel or an error rolls it away. ``ATTACH`` takes a SHARE UPDATE EXCLUSIVE lock on
``campaigns_lead`` (reads and writes go on) and briefly an ACCESS EXCLUSIVE one on the DEFAULT
partition while it checks it; it waits at most :data:`ATTACH_LOCK_TIMEOUT` for that lock. If it
cannot have it, or a lead of X reached the DEFAULT partition meanwhile (a platform offer: those
writers do not take the append lock), :func:`build` rolls back to its savepoint and returns
``None``, and the caller inserts the rows the ordinary way.

When the campaign already had no lead at the dry run, the dry run does 1-3 itself: its staging
table is created logged, with the CHECK, and indexed when the rows are in (:func:`index`), and
the import only renames and attaches it (:func:`adopt`), a moment instead of most of the work.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import DatabaseError, connection, transaction

log = logging.getLogger("campaigns.importer")

PARENT = "campaigns_lead"
DEFAULT = "campaigns_lead_default"
ATTACH_LOCK_TIMEOUT = "5s"
# Room for an index build's sort: the server's default (64 MB) spills a million keys to disk.
SORT_MEMORY = "256MB"
# Share of the insert's progress bar the row copy takes; the index builds and the attach share
# the rest.
FILL_SHARE = 0.5
# SQLSTATEs after which the ordinary insert is still right: lock_not_available (the DEFAULT
# partition stayed busy), check_violation (a lead of this campaign is in the DEFAULT partition).
_FALL_BACK = {"55P03", "23514"}


PREFIX = "campaigns_lead_c"  # + the campaign's id: its own partition


def table_for(campaign_id: int) -> str:
    return f"{PREFIX}{int(campaign_id)}"


def partitioned(cur) -> bool:
    cur.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", [PARENT])
    row = cur.fetchone()
    return bool(row and row[0])


def can_build(cur, campaign_id: int) -> bool:
    """Whether the campaign's next big insert may be built as its own partition: leads are
    partitioned, the campaign has no partition of its own and no lead at all. Called under the
    campaign's append lock, so no sheet or intake lead can arrive before the insert."""
    if not partitioned(cur):
        return False
    cur.execute("SELECT to_regclass(%s) IS NULL", [table_for(campaign_id)])
    if not cur.fetchone()[0]:
        return False
    cur.execute("SELECT NOT EXISTS (SELECT 1 FROM campaigns_lead WHERE campaign_id = %s)", [campaign_id])
    return cur.fetchone()[0]


# The steps that make a table of fresh leads a partition, longest first, so that two connections
# working through them (index()) end together. Measured on a million leads (BENCHMARKS.md,
# "Seventh round"): the unique index on (campaign, number), a text sort, 1.6 s (2.2-2.6 before
# the numbers' "C" collation, migration 0008); the offer index (now the ready index) 1.2; the queue index 0.6-1.2;
# the primary key 0.4-0.6; ANALYZE 0.3-0.5. An index added to campaigns_lead later runs in the
# middle.
BUILD_ORDER = ("lead_unique_number_per_campaign", "lead_ready_idx", "lead_queue_idx", "pkey", "ANALYZE")
# Indexes no fresh lead enters: made while the table is empty (create_table()), they cost nothing
# then and nothing a row (the lease index is partial on a lease, and a sheet's lead has none);
# built after the rows, each was a scan of the whole table (0.3-0.5 s a million leads).
BUILT_EMPTY = ("lead_lease_idx",)


def create_table(cur, table: str, campaign_id: int, *, logged: bool = True) -> None:
    """A new, empty table shaped like ``campaigns_lead``, with ``CHECK (campaign_id = X)``
    (attached as campaign X's partition it then needs no scan). A logged one is a partition to
    be and gets the :data:`BUILT_EMPTY` indexes now; an UNLOGGED one only stages rows."""
    cur.execute(
        f"CREATE {'' if logged else 'UNLOGGED '}TABLE {table} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    cur.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_campaign CHECK (campaign_id = {int(campaign_id)})"
    )
    if logged:
        for name, statement in _build_steps(cur, table)[0]:
            if name in BUILT_EMPTY:
                cur.execute(statement)


def _build_steps(cur, table: str) -> tuple[list[tuple[str, str]], str]:
    """``(name, statement)`` for each of ``campaigns_lead``'s indexes re-targeted at ``table``,
    its primary key (the DEFAULT partition's, built as a plain unique index) and its
    ``ANALYZE``, in :data:`BUILD_ORDER` (:data:`BUILT_EMPTY` first); then the ``ALTER TABLE``
    that makes the unique index the primary key."""
    cur.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
        [DEFAULT],
    )
    key = cur.fetchone()[0]  # "PRIMARY KEY (id)": each partition has its own (migration 0007)
    columns = key[key.index("(") :]
    cur.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = %s::regclass AND NOT i.indisprimary ORDER BY i.indexrelid",
        [PARENT],
    )
    steps = {"pkey": f"CREATE UNIQUE INDEX {table}_pkey ON {table} {columns}", "ANALYZE": f"ANALYZE {table}"}
    for number, (name, definition) in enumerate(cur.fetchall()):
        # "CREATE [UNIQUE] INDEX name ON ONLY public.campaigns_lead USING btree (...) [WHERE ...]"
        steps[name] = re.sub(
            r"^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ ",
            lambda m, n=number: f"CREATE {m.group(1) or ''}INDEX {table}_{n} ON {table} ",
            definition,
        )
    order = [*BUILT_EMPTY, *BUILD_ORDER]
    middle = len(BUILT_EMPTY) + len(BUILD_ORDER) / 2
    names = sorted(steps, key=lambda name: order.index(name) if name in order else middle)
    primary_key = f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY USING INDEX {table}_pkey"
    return [(name, steps[name]) for name in names], primary_key


def _after_rows(cur, table: str) -> tuple[list[str], str]:
    """:func:`_build_steps` but those :func:`create_table` did."""
    steps, primary_key = _build_steps(cur, table)
    return [statement for name, statement in steps if name not in BUILT_EMPTY], primary_key


def _create_indexes(cur, table: str, progress: Callable[[float], None] | None) -> None:
    """Build every index of ``campaigns_lead`` on ``table`` (one sort each) but those
    :func:`create_table` built, ``ANALYZE`` it and make the unique index on ``id`` its primary key.
    Inside the caller's transaction."""
    steps, primary_key = _after_rows(cur, table)
    # PostgreSQL's own parallel workers share each sort.
    cur.execute(f"SET LOCAL maintenance_work_mem = '{SORT_MEMORY}'")
    for index, statement in enumerate([*steps, primary_key]):
        cur.execute(statement)
        if progress:
            progress((index + 1) / (len(steps) + 1))
    cur.execute("SET LOCAL maintenance_work_mem TO DEFAULT")


def index(
    table: str,
    progress: Callable[[float], None] | None,
    *,
    connect: Callable[[], object],
) -> None:
    """Index a staging table that is to become a campaign's partition (the dry run of a big
    sheet for a campaign with no lead: :func:`adopt` then attaches it at the import), ``ANALYZE``
    it and make its primary key. ``progress`` runs between the statements and may raise to abort
    (the caller drops the table).

    Two connections work through one list of the statements, Django's and a second one from
    ``connect()`` (a psycopg connection), each taking the next statement when it is free: a
    ``CREATE INDEX`` leaves a CPU idle while its leader merges and writes the B-tree, and two
    builds do not block each other. The list runs longest first (:data:`BUILD_ORDER`), so the
    two end together. Each statement commits on its own (the table is nobody's yet); inside
    a transaction (a test's: the table is invisible to a second connection) everything runs
    here in turn."""
    if connection.in_atomic_block:
        with transaction.atomic(), connection.cursor() as cur:
            _create_indexes(cur, table, progress)
        return
    with connection.cursor() as cur:
        steps, primary_key = _after_rows(cur, table)
    jobs = deque(steps)
    total = len(jobs)
    failures: list[BaseException] = []

    def run(execute: Callable[[str], object], report: Callable[[], None] = lambda: None) -> None:
        execute(f"SET maintenance_work_mem = '{SORT_MEMORY}'")
        while not failures:
            try:
                statement = jobs.popleft()
            except IndexError:
                return
            execute(statement)
            report()

    def aside() -> None:
        try:
            with connect() as side:  # type: ignore[attr-defined]
                side.autocommit = True
                run(side.execute)
        except BaseException as exc:  # handed to the calling thread below
            failures.append(exc)

    helper = threading.Thread(target=aside, name=f"index {table}")
    helper.start()
    try:
        with connection.cursor() as cur:
            try:
                run(cur.execute, lambda: progress(0.9 * (total - len(jobs)) / total) if progress else None)
            except BaseException as exc:
                failures.append(exc)  # the helper takes no further statement
                raise
            finally:
                cur.execute("RESET maintenance_work_mem")
    finally:
        helper.join()
    if failures:
        raise failures[0]
    with connection.cursor() as cur:
        cur.execute(primary_key)
    if progress:
        progress(1.0)


def _attach(cur, table: str, campaign_id: int) -> None:
    cur.execute(f"SET LOCAL lock_timeout = '{ATTACH_LOCK_TIMEOUT}'")
    cur.execute(f"ALTER TABLE {PARENT} ATTACH PARTITION {table} FOR VALUES IN ({int(campaign_id)})")
    cur.execute("SET LOCAL lock_timeout TO DEFAULT")
    # Rows that arrive by ATTACH fire no trigger: count them here (campaigns migration 0017).
    cur.execute(
        "INSERT INTO campaigns_leadcount (campaign_id, status, n)"  # noqa: S608 - our table name
        f" SELECT campaign_id, status, count(*) FROM {table} GROUP BY 1, 2 ORDER BY 1, 2"
        " ON CONFLICT (campaign_id, status) DO UPDATE SET n = campaigns_leadcount.n + EXCLUDED.n"
    )


def _lock_campaign(cur, campaign_id: int) -> None:
    """The same guarantee the statement trigger on campaigns_lead gives an INSERT."""
    cur.execute("SELECT 1 FROM campaigns_campaign WHERE id = %s FOR KEY SHARE", [campaign_id])
    if cur.fetchone() is None:
        raise DatabaseError(f"campaign {campaign_id} does not exist")


@contextmanager
def _or_fall_back(campaign_id: int) -> Iterator[dict[str, bool]]:
    """A savepoint around a partition's making; ``state["ok"]`` says whether it stood. The
    errors after which the ordinary insert is still right (:data:`_FALL_BACK`) roll it back and
    are logged; any other propagates."""
    state = {"ok": False}
    try:
        with transaction.atomic():
            yield state
        state["ok"] = True
    except DatabaseError as exc:
        if getattr(exc.__cause__, "sqlstate", None) not in _FALL_BACK:
            raise
        log.warning(
            "campaign %s: no partition of its own this time (%s); inserting row by row", campaign_id, exc
        )


def build(
    cur,
    campaign_id: int,
    pieces: list[tuple[str, list[object]]],
    columns: str,
    select: str,
    progress: Callable[[float], None] | None,
) -> int | None:
    """Insert the staged rows as campaign ``campaign_id``'s own partition; return how many, or
    ``None`` when it had to give up (nothing of it is left; insert the ordinary way).

    ``pieces``: ``(FROM/WHERE clause over the stage as s, params)`` in sheet order; ``select``
    turns a staged row into the lead columns ``columns`` (its reserved id included).
    ``progress`` (the fraction done) runs between steps and may raise to abort: the caller's
    transaction then rolls everything back."""
    table = table_for(campaign_id)
    moved = 0
    with _or_fall_back(campaign_id) as state:
        _lock_campaign(cur, campaign_id)
        create_table(cur, table, campaign_id)
        for index, (source, params) in enumerate(pieces):
            # One statement after the other, each in sheet order.
            cur.execute(f"INSERT INTO {table} ({columns}) SELECT {select} {source}", params)
            moved += cur.rowcount
            if progress:
                progress(FILL_SHARE * (index + 1) / len(pieces))
        _create_indexes(
            cur, table, progress and (lambda done: progress(FILL_SHARE + (1 - FILL_SHARE) * 0.9 * done))
        )
        _attach(cur, table, campaign_id)
    if not state["ok"]:
        return None
    if progress:
        progress(1.0)
    return moved


def adopt(
    cur, stage: str, campaign_id: int, rows: int, progress: Callable[[float], None] | None = None
) -> int | None:
    """Make ``stage`` (``rows`` leads of campaign ``campaign_id``, indexed by :func:`index`)
    the campaign's own partition; return how many leads it brings, or ``None`` when it had to
    give up (the stage is as it was: insert the ordinary way).

    Numbers put on the do-not-call list since the dry run are deleted from it first; the
    column defaults the stage was filled with go; the table and its indexes take the
    partition's names. ``progress`` runs before the attach and may raise to abort."""
    table = table_for(campaign_id)
    with _or_fall_back(campaign_id) as state:
        _lock_campaign(cur, campaign_id)
        cur.execute(
            f"DELETE FROM {stage} s USING campaigns_donotcall d"  # noqa: S608 - our table names
            f" WHERE s.campaign_id = %s AND NOT s.source = 'platform' AND s.number = d.number",
            [campaign_id],
        )
        rows -= cur.rowcount
        cur.execute(
            "SELECT a.attname FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum"
            " WHERE d.adrelid = %s::regclass",
            [stage],
        )
        drops = ", ".join(f'ALTER "{name}" DROP DEFAULT' for (name,) in cur.fetchall())
        if drops:
            cur.execute(f"ALTER TABLE {stage} {drops}")
        cur.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass",
            [stage],
        )
        for (name,) in cur.fetchall():
            if name.startswith(f"{stage}_"):
                cur.execute(f"ALTER INDEX {name} RENAME TO {table}{name[len(stage) :]}")
        cur.execute(f"ALTER TABLE {stage} RENAME CONSTRAINT {stage}_campaign TO {table}_campaign")
        cur.execute(f"ALTER TABLE {stage} RENAME TO {table}")
        if progress:
            progress(0.5)
        _attach(cur, table, campaign_id)
    return rows if state["ok"] else None


def sweep() -> None:
    """Drop partitions whose campaign is gone (deleting a campaign deletes its leads through
    Django and leaves its partition empty). Dropping a partition locks ``campaigns_lead`` for a
    moment: a busy table is left for the next sweep."""
    with connection.cursor() as cur:
        if not partitioned(cur):
            return
        cur.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = %s::regclass AND c.relname ~ %s"
            " AND NOT EXISTS (SELECT 1 FROM campaigns_campaign WHERE id = substring(c.relname from %s)::bigint)",
            [PARENT, f"^{PREFIX}[0-9]+$", len(PREFIX) + 1],
        )
        stale = [row[0] for row in cur.fetchall()]
    for table in stale:
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute("SET LOCAL lock_timeout = '1s'")
                cur.execute(f"DROP TABLE IF EXISTS {table}")
        except DatabaseError as exc:
            log.info("left partition %s for the next sweep: %s", table, exc)
