"""The sheet import engine: stream a sheet, check every row, stage it, insert set-based.

Two passes over the file, both streaming in constant memory (chunks of ``CHUNK_ROWS`` records):

* :func:`dry_run` checks every row and writes the issues (invalid rows with line, column and
  reason; duplicates within the file and against the campaign; do-not-call hits) to a CSV error
  report next to the sheet. Duplicate detection keeps one ``int`` per distinct number (the E.164
  digits), about 60 bytes each: the only state that grows with the file.
* :func:`commit` inserts the staged rows set-based (``COPY`` or ``INSERT ... SELECT``, see
  :meth:`_PostgresStage.insert`). On PostgreSQL the dry
  run already staged every checked row as a lead, with its reserved id, in one table (two
  processes on a big sheet, see :func:`_staged_dry_run`; for a new campaign the table is its
  partition to be, indexed by the dry run), and the import trusts it when :func:`fingerprint`
  and the row count match, so it checks nothing again. Otherwise (SQLite, a changed mapping, a server restart) it
  checks the rows again and stages them: ``COPY`` on PostgreSQL, batched ``executemany`` into a
  TEMP table on SQLite. ``ON CONFLICT DO NOTHING`` (``INSERT OR IGNORE`` on SQLite) on the
  ``(campaign, number)`` constraint makes a repeated sheet add nothing and lets the first of two
  rows with one number win. A staged dry run instead prunes the duplicates it reported from its
  stage, and the import, holding the campaign's append lock (:mod:`campaigns.locks`), inserts
  plainly, filtering only numbers that reached the campaign after the dry run read it. Until
  that statement runs nothing is visible, so a cancel at any point before it leaves the campaign
  untouched.

Row checks can run in a ``multiprocessing`` pool for big sheets (``AGENTDESK_IMPORT_WORKERS``,
default 0 = inline; see :func:`_workers`), keeping the parent for CSV parsing and database writes.
Figures: BENCHMARKS.md.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import mmap
import multiprocessing
import os
import pickle
import re
import select
import subprocess
import sys
import tempfile
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, models, transaction
from django.utils import timezone

from calls.models import PlatformIdentity
from campaigns import csvsafe, nul, partitions, rowcheck, sheets
from campaigns.locks import lead_append_lock
from campaigns.models import Campaign, DoNotCall, Lead, SheetUpload
from campaigns.rowcheck import DNC, DUPLICATE, DUPLICATE_CAMPAIGN, INVALID, ChunkResult, Plan

log = logging.getLogger("campaigns.importer")

CHUNK_ROWS = 20_000
POOL_MIN_BYTES = 4 * 1024 * 1024  # below this a pool costs more than it saves
REPORT_SAMPLE = 200  # issues kept on the model for the page; all of them go to the CSV report
PROGRESS_EVERY = 0.5  # seconds between progress callbacks
CHUNK_BYTES = 1024 * 1024
SPLIT_MIN_BYTES = 4 * 1024 * 1024  # below this a second process costs more than it saves
SPLIT_ENCODINGS = ("utf-8", "utf-8-sig", "cp1252", "latin-1")
INSERT_CHUNKS = 10  # statements per staged insert, the progress bar moves between them
COPY_MIN_BYTES = 4 * 1024 * 1024  # a smaller stage goes in with one INSERT ... SELECT
# 2: duplicates pruned at the end of the dry run; 3: one table shaped like a lead; 4: numbers in "C"
STAGE_FORMAT = 4
RESERVE_LOCK_TIMEOUT = "10s"  # reserve_ids's wait for the lead id sequence
HEAD_SHARE = 0.45  # the head process also settles duplicates and writes the report


class Cancelled(Exception):
    """The supervisor cancelled the upload; nothing was written to the campaign."""


@dataclass
class Outcome:
    """Counts of one pass. ``sample``: the first issues, for the page."""

    total: int = 0
    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    duplicates_campaign: int = 0
    dnc: int = 0
    imported: int = 0
    updates: int = 0  # rows whose number is a lead the import updates (mode "update")
    sample: list[dict[str, object]] = field(default_factory=list)
    # The issues grouped by reason: "kind|reason" -> {kind, reason, count, examples}
    # (see :meth:`_Reporter.add`), shown most frequent first.
    reasons: dict[str, dict[str, object]] = field(default_factory=dict)
    stage: dict[str, object] | None = None  # the dry run's staged rows (PostgreSQL), see dry_run

    def as_report(self) -> dict[str, object]:
        return {
            "total": self.total,
            "valid": self.valid,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
            "duplicates_campaign": self.duplicates_campaign,
            "dnc": self.dnc,
            "imported": self.imported,
            "updates": self.updates,
            "sample": self.sample,
            "reasons": sorted(self.reasons.values(), key=lambda group: -group["count"]),
            **({"stage": self.stage} if self.stage else {}),
        }


# progress(fraction, rows), or progress(fraction, rows, step) when the pass says in words what
# it is doing (a long single statement: "Writing 195,715 leads…").
ProgressFn = Callable[..., None]
CancelledFn = Callable[[], bool]


# -- plan: what the mapping step chose -----------------------------------------------------------


def plan_for(upload: SheetUpload) -> tuple[Plan, bool]:
    """The row plan from ``upload.mapping`` (``{"columns": [...targets], "has_header": bool}``)
    and whether the first record is a header."""
    mapping = upload.mapping or {}
    targets: list[str] = list(mapping.get("columns") or [])
    headers: list[str] = list(mapping.get("headers") or [])
    if sheets.NUMBER not in targets:
        raise ValueError("Choose the column that holds the phone numbers.")
    fields = tuple(
        (i, t[len(sheets.FIELD_PREFIX) :]) for i, t in enumerate(targets) if t.startswith(sheets.FIELD_PREFIX)
    )
    campaign = upload.campaign
    plan = Plan(
        number_col=targets.index(sheets.NUMBER),
        name_col=targets.index(sheets.NAME) if sheets.NAME in targets else None,
        agents_col=targets.index(sheets.AGENTS) if sheets.AGENTS in targets else None,
        fields=fields,
        region=campaign.default_region or "US",
        headers=tuple(headers),
        agent_aliases=agent_aliases(campaign),
    )
    return plan, bool(mapping.get("has_header", True))


def agent_aliases(campaign: Campaign) -> tuple[tuple[str, str], ...]:
    """Usernames on the campaign's platform -> AgentDesk usernames, so a sheet written for the
    platform (a Ryng sheet's agent column) still matches the desk's ``assigned_agents`` filter."""
    return tuple(
        PlatformIdentity.objects.filter(platform=campaign.platform)
        .exclude(username="")
        .values_list("username", "agent__user__username")
    )


def dnc_keys() -> frozenset[int]:
    return frozenset(
        int(n[1:]) for n in DoNotCall.objects.values_list("number", flat=True).iterator() if n[1:].isdigit()
    )


# -- reading and checking ---------------------------------------------------------------------------


def _chunks(stream: sheets.RowStream, skip_header: bool) -> Iterator[list[tuple[int, list[str]]]]:
    chunk: list[tuple[int, list[str]]] = []
    first = True
    for item in stream:
        if first:
            first = False
            if skip_header:
                continue
        chunk.append(item)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _workers(size_bytes: int) -> int:
    """Row-check processes: ``AGENTDESK_IMPORT_WORKERS`` (default 0, checks run inline).

    Measured on the 2-CPU reference machine (BENCHMARKS.md): a pool is no faster there, because
    the parent's share (CSV parsing, pickling chunks, duplicate bookkeeping, the database
    writes) is as large as the checking it hands off. It pays off with more cores."""
    configured = os.environ.get("AGENTDESK_IMPORT_WORKERS", "")
    if not configured.isdigit() or size_bytes < POOL_MIN_BYTES:
        return 0
    return int(configured)


@contextmanager
def _checked(
    chunks: Iterable[list[tuple[int, list[str]]]],
    plan: Plan,
    dnc: frozenset[int],
    *,
    copy: bool | None,
    workers: int,
    id_base: int = 0,
) -> Iterator[Iterator[ChunkResult]]:
    """Checked chunks in file order, from a process pool when ``workers`` > 0.

    At most ``2 * workers`` chunks are in flight: ``Pool.imap`` would read the whole file ahead
    into its task queue, which is exactly the memory a streaming import must not use."""
    if workers <= 0:
        yield (rowcheck.check_chunk(c, plan, dnc, copy=copy, id_base=id_base) for c in chunks)
        return
    # fork, not spawn/forkserver: those re-import the parent's __main__ (a Celery worker, a
    # script) in every child. The children only run check_chunk (pure Python, no logging, no
    # database) and leave with os._exit, so the parent's copied connections are never touched.
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers, initializer=rowcheck.pool_init, initargs=(plan, dnc, copy, id_base)) as pool:

        def ordered() -> Iterator[ChunkResult]:
            pending: deque = deque()
            for chunk in chunks:
                pending.append(pool.apply_async(rowcheck.pool_check, (chunk,)))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().get()
            while pending:
                yield pending.popleft().get()

        yield ordered()


REASON_GROUPS = 40  # distinct reasons counted apart on the page
REASON_EXAMPLES = 3  # example rows shown for each


class _Reporter:
    """Writes every issue to the CSV error report and keeps the first few for the page."""

    HEADER = ("line", "column", "value", "reason", "kind")

    def __init__(self, path: Path | None, outcome: Outcome):
        self.outcome = outcome
        self.handle = open(path, "w", newline="", encoding="utf-8") if path else None  # noqa: SIM115
        self.writer = csvsafe.writer(self.handle) if self.handle else None
        if self.writer:
            self.writer.writerow(self.HEADER)

    def add(self, issue: tuple[int, str, str, str, str]) -> None:
        # A NUL in a cell is shown as the symbol for one: PostgreSQL's JSON refuses the character
        # itself (the report is stored on the upload), and a reader sees that it was there.
        issue = tuple(nul.shown(part) if isinstance(part, str) else part for part in issue)
        kind = issue[4]
        if kind == INVALID:
            self.outcome.invalid += 1
        elif kind == DUPLICATE:
            self.outcome.duplicates += 1
        elif kind == DUPLICATE_CAMPAIGN:
            self.outcome.duplicates_campaign += 1
        elif kind == DNC:
            self.outcome.dnc += 1
        issue = (*issue[:3], rowcheck.sentence(issue[3]), kind)
        self._group(*issue)
        if len(self.outcome.sample) < REPORT_SAMPLE:
            self.outcome.sample.append(dict(zip(self.HEADER, issue, strict=True)))
        if self.writer:
            self.writer.writerow(issue)

    def _group(self, line: int, column: str, value: str, reason: str, kind: str) -> None:
        """Count the issue under its reason, with the first few examples. A sheet has a handful
        of reasons; past :data:`REASON_GROUPS` (reasons naming a value) the rest count together."""
        groups = self.outcome.reasons
        key = f"{kind}|{reason}"
        if key not in groups and len(groups) >= REASON_GROUPS:
            key, reason = f"{kind}|", "Other reasons (see the full list)."
        group = groups.setdefault(key, {"kind": kind, "reason": reason, "count": 0, "examples": []})
        group["count"] += 1
        if len(group["examples"]) < REASON_EXAMPLES:
            group["examples"].append({"line": line, "column": column, "value": value[:100]})

    def close(self) -> None:
        if self.handle:
            self.handle.close()


class _Ticker:
    def __init__(self, progress: ProgressFn | None, cancelled: CancelledFn | None):
        self.progress = progress
        self.cancelled = cancelled
        self.last = 0.0

    def tick(self, fraction: float, rows: int, *, force: bool = False, step: str | None = None) -> None:
        """Report progress (at most every ``PROGRESS_EVERY`` s unless ``force``); ``step`` says
        in words what comes next, when the bar would otherwise sit still."""
        now = time.monotonic()
        if not force and now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        if self.cancelled and self.cancelled():
            raise Cancelled
        if self.progress:
            if step is None:
                self.progress(fraction, rows)
            else:
                self.progress(fraction, rows, step)


def report_path(upload: SheetUpload) -> Path:
    folder = Path(settings.MEDIA_ROOT) / "sheets" / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"upload-{upload.pk}-issues.csv"


class _Dedupe:
    """Duplicate detection in file order: within the sheet (one ``int`` per distinct number) and
    against the campaign's existing numbers. Feeds the reporter and the counts."""

    def __init__(
        self,
        plan: Plan,
        existing: set[int],
        reporter: _Reporter,
        outcome: Outcome,
        *,
        busy: set[int] | None = None,
    ):
        self.column = plan.header(plan.number_col)
        self.existing = existing
        # Mode "update": a number already in the campaign updates its lead unless that lead is
        # being worked (``busy``); ``updating`` keeps those rows' lines (a staged dry run moves
        # them to the update table).
        self.busy = busy
        self.updating = array("i")
        self.seen: set[int] = set()
        self.dropped = array("i")  # lines of the duplicates: pruned from a staged dry run's rows
        self.reporter = reporter
        self.outcome = outcome

    def add(self, result: ChunkResult) -> None:
        outcome, reporter, seen, existing = self.outcome, self.reporter, self.seen, self.existing
        outcome.total += len(result.keys) + len(result.issues)
        for issue in result.issues:
            reporter.add(issue)
        keys = result.keys
        fresh = set(keys)
        if len(fresh) == len(keys) and fresh.isdisjoint(seen) and fresh.isdisjoint(existing):
            # The usual chunk: no number seen before, none twice. Set operations, in C.
            seen.update(fresh)
            outcome.valid += len(keys)
            return
        raws, lines, dropped = result.raws, result.lines, self.dropped
        valid = 0
        for index, key in enumerate(keys):
            if key in seen:
                reporter.add(
                    (lines[index], self.column, raws[index], "appears earlier in this sheet", DUPLICATE)
                )
                dropped.append(lines[index])
            elif key in existing:
                if self.busy is not None:
                    seen.add(key)  # a later row updates nothing more: "earlier in this sheet"
                if self.busy is not None and key not in self.busy:
                    outcome.updates += 1
                    self.updating.append(lines[index])
                else:
                    reason = (
                        "already in this campaign"
                        if self.busy is None
                        else "already in this campaign and on a call"
                    )
                    reporter.add((lines[index], self.column, raws[index], reason, DUPLICATE_CAMPAIGN))
                dropped.append(lines[index])
            else:
                seen.add(key)
                valid += 1
        outcome.valid += valid


def dry_run(
    upload: SheetUpload, *, progress: ProgressFn | None = None, cancelled: CancelledFn | None = None
) -> Outcome:
    """Check every row and write the error report; touch no lead.

    On PostgreSQL the checked rows are also staged (:class:`_PostgresStage`, see
    :func:`_staged_dry_run`) so the import can skip every check; ``outcome.stage`` records what
    the import needs to trust them."""
    plan, has_header = plan_for(upload)
    path = Path(upload.file.path)
    size = max(1, path.stat().st_size)
    outcome = Outcome()
    postgres = connection.vendor == "postgresql"
    # Leads above this id arrived after `existing` was read: the import checks for them.
    leads_seen_to = _last_lead_id() if postgres else 0
    existing = set(
        int(n[1:])
        for n in upload.campaign.leads.exclude(source=Lead.Source.PLATFORM)
        .values_list("number", flat=True)
        .iterator()
    )
    busy = None
    if upload.updates:
        busy = {int(n[1:]) for n in _busy_leads(upload.campaign).values_list("number", flat=True).iterator()}
    ticker = _Ticker(progress, cancelled)
    reporter = _Reporter(report_path(upload), outcome)
    dedupe = _Dedupe(plan, existing, reporter, outcome, busy=busy)
    dnc = dnc_keys()
    if postgres:
        drop_stage(upload)
        sweep_stages()
        partitions.sweep()
    try:
        if postgres:
            # A big sheet for a campaign with no lead yet: stage it as the campaign's partition
            # to be (logged, indexed here), so the import only has to attach it.
            with connection.cursor() as cur:
                own = size >= COPY_MIN_BYTES and partitions.can_build(cur, upload.campaign_id)
            id_base = reserve_ids(_line_count(path))
            stage = _PostgresStage(upload, plan, id_base=id_base, logged=own)
            with rowcheck.gc_paused() as sweep:
                staged = _staged_dry_run(
                    upload, plan, has_header, path, size, dnc, dedupe, ticker, stage, sweep
                )
            updates = _split_updates(upload, stage, dedupe.updating)
            staged -= _prune(stage, dedupe.dropped)
            if own:
                partitions.index(
                    stage.table,
                    lambda done: ticker.tick(0.9 + 0.1 * done, outcome.total),
                    connect=side_connection,
                )
            outcome.stage = {
                "tables": stage.tables,
                "rows": staged,
                "fingerprint": fingerprint(upload, plan),
                "leads_seen_to": leads_seen_to,
                "built": own,
                **({"updates": updates, "update_rows": len(dedupe.updating)} if updates else {}),
            }
        else:
            stream = sheets.RowStream(path, upload.encoding, upload.delimiter)
            with (
                rowcheck.gc_paused() as sweep,
                _checked(
                    _chunks(stream, has_header), plan, dnc, copy=None, workers=_workers(size)
                ) as results,
            ):
                for result in results:
                    dedupe.add(result)
                    sweep()
                    ticker.tick(stream.bytes_read / size, outcome.total)
    except BaseException:
        if postgres:
            drop_stage(upload)
        raise
    finally:
        reporter.close()
    return outcome


def _busy_leads(campaign: Campaign):
    """The campaign's leads an import must not update: on a call or held by an agent (a lease,
    even a lapsed one: the agent may still be looking at it). :data:`BUSY_SQL` says the same."""
    return campaign.leads.exclude(source=Lead.Source.PLATFORM).filter(
        models.Q(status=Lead.Status.IN_PROGRESS) | models.Q(lease_owner__isnull=False)
    )


BUSY_SQL = "({l}.status = 'in_progress' OR {l}.lease_owner_id IS NOT NULL)"  # {l}: the lead table's alias


def _split_updates(upload: SheetUpload, stage: _PostgresStage, lines: array) -> str | None:
    """Mode "update", PostgreSQL: move the rows that update a lead (``lines``) out of the stage
    into ``<stage>_u`` (number, name, custom fields), so the stage holds only what the import
    adds. The table's name, or None when there is nothing to update."""
    if not lines:
        return None
    table = update_table(upload)
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(
            f"CREATE UNLOGGED TABLE {table} AS SELECT s.id, s.number, s.name, s.custom_fields"  # noqa: S608
            f" FROM {stage.table} s JOIN unnest(%s::bigint[]) AS d(id) ON s.id = d.id",
            [[stage.id_base + line for line in lines]],
        )
    return table


def update_leads(cur, campaign: Campaign, source: str, *, first: str = "") -> int:
    """Apply mode "update": each lead of ``campaign`` whose number a row of ``source`` (a table
    or subquery aliased ``u`` with ``number, name, custom_fields``) holds, and that nobody is
    working (:data:`BUSY_SQL`), takes the row's name when it is not empty and its custom fields
    over its own (a field the row leaves empty keeps its value). Status, attempts, history,
    agents and the lead's upload stay. Set-based (``UPDATE ... FROM``) on both databases.
    Returns how many leads were updated."""
    postgres = connection.vendor == "postgresql"
    # SQLite's UPDATE cannot alias its target: there the lead is the table's own name.
    target, l = ("campaigns_lead l", "l") if postgres else ("campaigns_lead", "campaigns_lead")  # noqa: E741
    merge = (
        f"{l}.custom_fields || u.custom_fields"
        if postgres
        else f"json_patch({l}.custom_fields, u.custom_fields)"
    )
    cur.execute(
        f"UPDATE {target} SET name = CASE WHEN u.name <> '' THEN u.name ELSE {l}.name END,"  # noqa: S608
        f" custom_fields = {merge} FROM {source} WHERE {l}.campaign_id = %s AND {l}.number = u.number"
        f" AND {l}.source <> 'platform' AND NOT {BUSY_SQL.format(l=l)}",
        [campaign.pk],
    )
    return cur.rowcount


def _last_lead_id() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM campaigns_lead")
        return cur.fetchone()[0]


def _prune(stage: _PostgresStage, lines: array) -> int:
    """Delete the duplicates' rows from the stage, so it holds exactly what the import adds
    (less what arrives in the campaign meanwhile) and the insert needs no ``ON CONFLICT``."""
    if not lines:
        return 0
    with connection.cursor() as cur:
        cur.execute(
            f"DELETE FROM {stage.table} s USING unnest(%s::bigint[]) AS d(id) WHERE s.id = d.id",  # noqa: S608
            [[stage.id_base + line for line in lines]],
        )
        return cur.rowcount


# -- commit: stage, then one set-based insert ---------------------------------------------------------


def _lead_columns(
    campaign: Campaign, upload: SheetUpload | None, source: str, *, with_id: bool = False
) -> tuple[list[str], list[str], list[object]]:
    """Every concrete Lead column with the SQL that fills it from a stage row (``s.``, the stage
    being shaped like ``campaigns_lead``) or a parameter. Columns other helpers may add later get
    their model default, so this insert keeps working when Lead grows. ``with_id``: the stage's
    reserved ids too (PostgreSQL)."""
    staged = {"number", "raw_number", "name", "assigned_agents", "timezone", "custom_fields"}
    now = timezone.now()
    fixed: dict[str, object] = {
        "campaign_id": campaign.pk,
        "upload_id": upload.pk if upload else None,
        "source": source,
    }
    columns, exprs, params = [], [], []
    for f in Lead._meta.concrete_fields:
        column = f.column
        if f.primary_key:
            if with_id:
                columns.append(connection.ops.quote_name(column))
                exprs.append(f"s.{column}")
            continue
        columns.append(connection.ops.quote_name(column))
        if column in staged:
            exprs.append(f"s.{column}")
            continue
        if column in fixed:
            value: object = fixed[column]
        elif getattr(f, "auto_now_add", False) or getattr(f, "auto_now", False):
            value = now
        else:
            value = f.get_default()  # "" for NOT NULL text columns without a default, else None
        exprs.append("%s")
        params.append(f.get_db_prep_save(value, connection) if column not in fixed else value)
    return columns, exprs, params


def reserve_ids(count: int) -> int:
    """Reserve ``count`` consecutive lead ids from ``campaigns_lead``'s sequence and return the
    one before the first: the stage's rows take ``base + line`` (gaps where a line holds no
    lead are harmless), so ids follow the sheet whichever process writes the row.

    ``ALTER SEQUENCE`` blocks every other ``nextval`` until this short transaction commits, so
    nobody can draw an id between the ``nextval`` and the ``setval``. It first waits for the
    transactions that drew an id to end (they hold the sequence until then: inserts of single
    leads, short; the importer's own inserts give their ids, so they draw none), at most
    :data:`RESERVE_LOCK_TIMEOUT`, then the dry run fails with that error rather than hold up
    every lead insert behind it. Run it outside a long transaction (the dry run and the import
    run in autocommit)."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"SET LOCAL lock_timeout = '{RESERVE_LOCK_TIMEOUT}'")
        cur.execute("SELECT pg_get_serial_sequence('campaigns_lead', 'id')")
        sequence = cur.fetchone()[0]
        try:
            with transaction.atomic():
                cur.execute(f"ALTER SEQUENCE {sequence} INCREMENT BY 1")  # the lock; increment stays 1
        except OperationalError as exc:
            raise RuntimeError(
                f"Lead ids could not be reserved: another transaction held the lead id sequence for"
                f" {RESERVE_LOCK_TIMEOUT}. Run the dry run again."
            ) from exc
        cur.execute("SELECT nextval(%s::regclass)", [sequence])
        first = cur.fetchone()[0]
        cur.execute("SELECT setval(%s::regclass, %s)", [sequence, first + max(count, 1) - 1])
    return first - 1


def _line_count(path: Path) -> int:
    """Physical lines of the file (an upper bound on its records' line numbers)."""
    return _newlines_before(path, path.stat().st_size) + 1


class _PostgresStage:
    """The rows an import adds, checked and shaped like ``campaigns_lead`` already: a table of
    the same columns, filled with ``COPY`` of :data:`rowcheck.STAGE_COLUMNS` (ids reserved by
    :func:`reserve_ids`), every other column from the table's defaults (the upload, the
    campaign, "pending", ...). UNLOGGED (no WAL for rows that only live until the import) unless
    ``logged``: then it is meant to become the campaign's own partition as it is
    (:func:`campaigns.partitions.adopt`), and must survive a crash like any lead."""

    def __init__(self, upload: SheetUpload, plan: Plan, *, id_base: int, logged: bool = False):
        self.table = stage_table(upload)
        self.tables = [self.table]
        self.plan = plan
        self.id_base = id_base
        campaign = upload.campaign
        columns, exprs, params = _lead_columns(campaign, upload, Lead.Source.SHEET)
        defaults = [f"ALTER {c} SET DEFAULT %s" for c, e in zip(columns, exprs, strict=True) if e == "%s"]
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {', '.join(stage_tables(upload))}")
            partitions.create_table(cur, self.table, campaign.pk, logged=logged)
            cur.execute(f"ALTER TABLE {self.table} {', '.join(defaults)}", params)

    def write(self, rows: str | list[tuple]) -> None:
        if not rows:
            return
        with connection.cursor() as cur, cur.cursor.copy(rowcheck.stage_copy_sql(self.table)) as copy:
            copy.write(rows)

    @contextmanager
    def writer(self) -> Iterator[Callable[[str | list[tuple]], None]]:
        """``write(rows)`` for a whole pass: one ``COPY`` on a connection of its own, so the
        server stores rows while this process checks the next chunk (a ``COPY`` per chunk
        waits for the server each time), and Django's connection stays free for the progress
        bar and the cancel check. Committed when the block ends without an error. Inside a
        transaction (a test's) the table is not visible to another connection: then each
        chunk is its own ``COPY`` on Django's connection."""
        if connection.in_atomic_block:
            yield self.write
            return
        with (
            side_connection() as side,
            side.cursor() as cur,
            cur.copy(rowcheck.stage_copy_sql(self.table)) as copy,
        ):

            def write(rows: str | list[tuple]) -> None:
                if rows:
                    copy.write(rows)

            yield write

    def _select(
        self, campaign: Campaign, upload: SheetUpload | None, source: str
    ) -> tuple[str, str, list[object]]:
        """``(columns, select list, parameters)`` turning a staged row into a lead (its reserved
        id, its checked values, the rest fresh: ``created_at`` is the import's time)."""
        columns, exprs, params = _lead_columns(campaign, upload, source, with_id=True)
        return ", ".join(columns), ", ".join(exprs), params

    def insert(
        self,
        campaign: Campaign,
        upload: SheetUpload | None,
        source: str,
        *,
        pruned_at: int | None = None,
        built: bool = False,
        rows: int = 0,
        progress: Callable[[float], None] | None = None,
    ) -> int:
        """Move the staged rows into ``campaigns_lead`` inside the caller's transaction, with
        their reserved ids (which follow the sheet), leaving out numbers put on the do-not-call
        list since the rows were checked.

        ``pruned_at``: the stage holds no duplicate and no number the campaign had when its
        leads up to this id were read (a pruned dry run). Under the campaign's append lock the
        rows then need no ``ON CONFLICT``. When the campaign has no lead yet, a stage the dry
        run already indexed (``built``, ``rows`` rows) is attached as the campaign's own partition as it is
        (:func:`campaigns.partitions.adopt`), and another big stage is copied into a new one
        (:func:`campaigns.partitions.build`); else a big stage goes in with ``COPY``
        (:meth:`_copy_in`); only numbers that leads added since then brought are filtered out.
        Otherwise one
        ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` per table keeps the first of two rows
        with one number. ``progress`` (the fraction of the stage moved) runs between the
        ``COPY``'s :data:`INSERT_CHUNKS` pieces and may raise to abort the insert."""
        lead_append_lock(campaign.pk)
        with transaction.atomic(), connection.cursor() as cur:  # SET LOCAL needs a transaction
            # Nothing is lost if the server crashes in the next few hundred ms after COMMIT
            # returns that a re-run (idempotent) would not restore; the fsync wait is saved.
            cur.execute("SET LOCAL synchronous_commit = off")
            # The leads are counted once, at the end: a counter locked by the first of many
            # statements would hold every disposition in the campaign until COMMIT (migration
            # 0017). A partition attached whole is counted by its attach.
            cur.execute("SET LOCAL agentdesk.lead_counts = 'later'")
            try:
                inserted, counted = self._insert(
                    cur, campaign, upload, source, pruned_at, built, rows, progress
                )
            finally:
                cur.execute("SET LOCAL agentdesk.lead_counts = ''")
            if inserted and not counted:
                cur.execute(
                    "INSERT INTO campaigns_leadcount (campaign_id, status, n) VALUES (%s, %s, %s)"
                    " ON CONFLICT (campaign_id, status) DO UPDATE SET n = campaigns_leadcount.n + EXCLUDED.n",
                    [campaign.pk, Lead.Status.PENDING, inserted],
                )
            return inserted

    def _insert(
        self,
        cur,
        campaign: Campaign,
        upload: SheetUpload | None,
        source: str,
        pruned_at: int | None,
        built: bool,
        rows: int,
        progress: Callable[[float], None] | None,
    ) -> tuple[int, bool]:
        """:meth:`insert`'s work: how many leads went in, and whether they are counted already
        (a partition attached whole)."""
        columns, select, params = self._select(campaign, upload, source)
        where, suffix, guard = "", "", None
        if pruned_at is None:
            suffix = " ON CONFLICT DO NOTHING"
        elif _added_since(cur, campaign, pruned_at):
            guard = campaign
        # A partition of its own only for many leads: the dry run chose by the file's size,
        # and the sheet's invalid rows and duplicates may have left few.
        big = pruned_at is not None and _stage_bytes(cur, self.tables) >= COPY_MIN_BYTES
        if big and built and guard is None and partitions.can_build(cur, campaign.pk):
            adopted = partitions.adopt(cur, self.table, campaign.pk, rows, progress)
            if adopted is not None:
                if progress:
                    progress(1.0)
                return adopted, True
        if big:
            if guard is None and partitions.can_build(cur, campaign.pk):
                pieces = [(clause, [*params, *more]) for clause, more, _ in self._pieces(cur, None)[0]]
                moved = partitions.build(cur, campaign.pk, pieces, columns, select, progress)
                if moved is not None:
                    return moved, True
            return self._copy_in(cur, columns, select, params, guard, progress), False
        if guard is not None:
            where = (
                " WHERE NOT EXISTS (SELECT 1 FROM campaigns_lead l WHERE l.campaign_id = %s"
                " AND l.number = s.number AND l.source <> 'platform')"
            )
        # Keep each scan from starting mid-table: the first row of a number is the one kept.
        cur.execute("SET LOCAL synchronize_seqscans = off")
        inserted = 0
        for table in self.tables:
            cur.execute(f"DELETE FROM {table} s USING campaigns_donotcall d WHERE d.number = s.number")  # noqa: S608
            cur.execute(
                # Table and column names are ours (model meta, the upload's integer id).
                f"INSERT INTO campaigns_lead ({columns}) SELECT {select} FROM {table} s{where}{suffix}",  # noqa: S608
                [*params, *([guard.pk] if guard else [])],
            )
            inserted += cur.rowcount
        if progress:
            progress(1.0)
        return inserted, False

    def _copy_in(
        self,
        cur,
        columns: str,
        select: str,
        params: list[object],
        guard: Campaign | None,
        progress: Callable[[float], None] | None,
    ) -> int:
        """``COPY campaigns_lead FROM STDIN`` fed by ``COPY (SELECT ...) TO STDOUT`` of the stage
        on a second, read-only connection (docs/import.md, "The insert").

        ``COPY`` writes the heap a page of rows at a time where ``INSERT ... SELECT`` writes it
        row by row, and the second connection's server process turns staged rows into lead
        rows on the other CPU: a million rows went in about 30% faster (BENCHMARKS.md). The
        reader's snapshot is taken after this transaction took the campaign's append lock, so
        it sees every lead the ``guard`` filter must: none can be added until this COMMIT.
        The rows are written inside the caller's transaction; an exception from ``progress``
        (a cancel) between two pieces makes the caller roll them all back."""
        import psycopg

        moved = 0
        with side_connection() as reader:
            reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot for every piece
            reader.read_only = True
            source = psycopg.ClientCursor(reader)
            # Each piece is its own pair of COPY statements, so this connection is free between
            # them for ``progress`` (a query, a cancel check).
            pieces, blocks = self._pieces(cur, guard)
            done = 0
            for clause, more, size in pieces:
                query = source.mogrify(f"SELECT {select} {clause}", [*params, *more])
                with (
                    cur.cursor.copy(f"COPY campaigns_lead ({columns}) FROM STDIN") as sink,
                    source.copy(f"COPY ({query}) TO STDOUT") as rows,
                ):
                    for row in rows:
                        sink.write(row)
                        moved += 1
                done += size
                if progress:
                    progress(min(1.0, done / blocks))
        return moved

    def _pieces(self, cur, guard: Campaign | None) -> tuple[list[tuple[str, list[object], int]], int]:
        """The stage as :data:`INSERT_CHUNKS` ``(FROM ... WHERE clause over s, its parameters,
        blocks)`` in file order, so lead ids follow the sheet: tables in list order, each by
        consecutive block ranges (a TID range scan reads exactly the blocks asked for). Numbers
        put on the do-not-call list since the dry run are left out, and with a ``guard`` the
        numbers that reached that campaign since (the caller holds its append lock)."""
        filters = "NOT EXISTS (SELECT 1 FROM campaigns_donotcall d WHERE d.number = s.number)"
        filter_params: list[object] = []
        if guard is not None:
            filters += (
                " AND NOT EXISTS (SELECT 1 FROM campaigns_lead l WHERE l.campaign_id = %s"
                " AND l.number = s.number AND l.source <> 'platform')"
            )
            filter_params = [guard.pk]
        ranges, blocks = _block_ranges(cur, self.tables, INSERT_CHUNKS)
        pieces = []
        for table, low, high, size in ranges:
            bounds = "s.ctid >= %s::tid" + ("" if high is None else " AND s.ctid < %s::tid")
            bound_params = [f"({low},0)", *([] if high is None else [f"({high},0)"])]
            pieces.append(
                (f"FROM {table} s WHERE {bounds} AND {filters}", [*bound_params, *filter_params], size)
            )
        return pieces, blocks

    def drop(self) -> None:
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {', '.join(self.tables)}")

    def first_rows(self) -> str:
        """The stage's first row of each number, as ``u`` for :func:`update_leads`."""
        return (
            f"(SELECT DISTINCT ON (number) number, name, custom_fields FROM {self.table}"  # noqa: S608
            " ORDER BY number, id) u"
        )


def _block_ranges(cur, tables: list[str], pieces: int) -> tuple[list[tuple[str, int, int | None, int]], int]:
    """About ``pieces`` consecutive block ranges ``(table, first, end or None, blocks)`` over
    ``tables`` (in order) and the block count. Each table's last range is open-ended: a TID range
    scan reads exactly the blocks asked for."""
    sizes = []
    for table in tables:
        cur.execute("SELECT pg_relation_size(%s) / current_setting('block_size')::bigint", [table])
        sizes.append((table, int(cur.fetchone()[0])))
    total = sum(n for _, n in sizes)
    step = max(1, -(-total // pieces))
    ranges: list[tuple[str, int, int | None, int]] = []
    for table, count in sizes:
        starts = list(range(0, max(count, 1), step))
        for index, low in enumerate(starts):
            last = index == len(starts) - 1
            ranges.append((table, low, None if last else low + step, (count if last else low + step) - low))
    return ranges, max(total, 1)


def _stage_bytes(cur, tables: list[str]) -> int:
    cur.execute("SELECT sum(pg_relation_size(t::regclass)) FROM unnest(%s::text[]) AS t", [tables])
    return int(cur.fetchone()[0] or 0)


def side_conninfo() -> dict[str, object]:
    """``psycopg.connect()`` keyword arguments for a second connection to Django's database."""
    params = dict(connection.get_connection_params())
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return params


def side_connection():
    """A second psycopg connection to Django's database (use it as a context manager)."""
    import psycopg

    return psycopg.connect(**side_conninfo())


def _added_since(cur, campaign: Campaign, lead_id: int) -> bool:
    """Whether sheet or intake leads reached the campaign after lead ``lead_id`` was written."""
    cur.execute(
        "SELECT EXISTS (SELECT 1 FROM campaigns_lead WHERE id > %s AND campaign_id = %s"
        " AND source <> 'platform')",
        [lead_id, campaign.pk],
    )
    return cur.fetchone()[0]


class _SqliteStage(_PostgresStage):
    """A TEMP table filled with ``executemany`` (SQLite has no COPY); ids come at the insert."""

    def __init__(self, upload: SheetUpload, plan: Plan):
        self.table = stage_table(upload)
        self.tables = [self.table]
        self.plan = plan
        self.id_base = 0  # SQLite gives ids at the insert
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS temp.{self.table}")
            cur.execute(
                f"CREATE TEMP TABLE {self.table} (line integer, number text, raw_number text, name text,"
                " assigned_agents text, timezone text, custom_fields text)"
            )

    def write(self, rows: str | list[tuple]) -> None:
        if not rows:
            return
        with transaction.atomic(), connection.cursor() as cur:
            cur.executemany(f"INSERT INTO {self.table} VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)  # noqa: S608

    @contextmanager
    def writer(self) -> Iterator[Callable[[str | list[tuple]], None]]:
        yield self.write

    def first_rows(self) -> str:
        return (
            f"(SELECT number, name, custom_fields FROM {self.table}"  # noqa: S608
            f" WHERE line IN (SELECT min(line) FROM {self.table} GROUP BY number)) u"
        )

    def insert(self, campaign: Campaign, upload: SheetUpload | None, source: str) -> int:
        columns, exprs, params = _lead_columns(campaign, upload, source)
        with connection.cursor() as cur:
            cur.execute(
                f"INSERT OR IGNORE INTO campaigns_lead ({', '.join(columns)}) SELECT {', '.join(exprs)} "  # noqa: S608
                f"FROM {self.table} s ORDER BY s.line",
                params,
            )
            return cur.rowcount


def _stage(upload: SheetUpload, plan: Plan) -> _PostgresStage:
    if connection.vendor == "postgresql":
        return _PostgresStage(upload, plan, id_base=reserve_ids(_line_count(Path(upload.file.path))))
    return _SqliteStage(upload, plan)


# -- the staged dry run (PostgreSQL): check once, in two processes, keep the rows for the import ----


def stage_table(upload: SheetUpload) -> str:
    """The staging table of an upload. The name carries the upload id, so leftovers can be
    swept by it."""
    return f"campaigns_stage_{upload.pk}"


def update_table(upload: SheetUpload) -> str:
    """The rows of a staged dry run that update leads (mode "update"), see :func:`_split_updates`."""
    return f"{stage_table(upload)}_u"


def stage_tables(upload: SheetUpload) -> tuple[str, str, str]:
    """Every name a stage of the upload may have: the table, the second table that versions
    before ``STAGE_FORMAT`` 3 gave the tail of the sheet, and the update rows' table (dropped
    with it)."""
    return stage_table(upload), f"{stage_table(upload)}_b", update_table(upload)


def drop_stage(upload: SheetUpload) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {', '.join(stage_tables(upload))}")


def sweep_stages() -> None:
    """Drop staging tables whose upload is gone or will never import them (done, cancelled,
    failed): a dry run that was never imported must not keep its rows forever."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename ~ '^campaigns_stage_[0-9]+(_b|_u)?$'"
        )
        tables = [row[0] for row in cur.fetchall()]
    if not tables:
        return
    ids = {int(t.split("_")[2]) for t in tables}
    live = set(
        SheetUpload.objects.filter(
            pk__in=ids,
            status__in=(
                SheetUpload.Status.VALIDATING,
                SheetUpload.Status.VALIDATED,
                SheetUpload.Status.IMPORTING,
            ),
        ).values_list("pk", flat=True)
    )
    stale = [t for t in tables if int(t.split("_")[2]) not in live]
    if stale:
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {', '.join(stale)}")


def fingerprint(upload: SheetUpload, plan: Plan) -> str:
    """What the staged rows depend on: the file's bytes, how it is read and mapped, the region
    and the agent aliases. Any change sends the import back to checking the file."""
    basis = [
        STAGE_FORMAT,
        upload.sha256,
        upload.encoding,
        upload.delimiter,
        upload.mapping,
        plan.region,
        plan.agent_aliases,
    ]
    return hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()


def _reusable_stage(upload: SheetUpload, plan: Plan) -> list[str] | None:
    """The dry run's staging table when the import may trust it: same fingerprint, and every
    staged row still there (an UNLOGGED table comes back empty after a server crash)."""
    info = (upload.report or {}).get("stage")
    if not isinstance(info, dict) or info.get("fingerprint") != fingerprint(upload, plan):
        return None
    tables = [t for t in info.get("tables") or [] if t in stage_tables(upload)]
    if not tables:
        return None
    with connection.cursor() as cur:
        for table in tables:
            cur.execute("SELECT to_regclass(%s)", [table])
            if cur.fetchone()[0] is None:
                return None
        cur.execute(" + ".join(f"(SELECT count(*) FROM {t})" for t in tables).join(["SELECT ", ""]))  # noqa: S608
        if cur.fetchone()[0] != info.get("rows"):
            return None
        if info.get("updates"):  # mode "update": its rows too (UNLOGGED as well)
            if info["updates"] != update_table(upload):
                return None
            cur.execute("SELECT to_regclass(%s)", [info["updates"]])
            if cur.fetchone()[0] is None:
                return None
            cur.execute(f"SELECT count(*) FROM {info['updates']}")  # noqa: S608
            if cur.fetchone()[0] != info.get("update_rows"):
                return None
    return tables


def _split_enabled() -> bool:
    """``AGENTDESK_IMPORT_SPLIT=0`` keeps the dry run in one process."""
    return os.environ.get("AGENTDESK_IMPORT_SPLIT", "1") != "0" and (os.cpu_count() or 1) >= 2


def split_point(path: Path, encoding: str, share: float = HEAD_SHARE) -> int | None:
    """A byte offset near ``share`` of the file where a record starts, or ``None`` (one process).

    Only for encodings where a ``\n`` byte is a line end (UTF-8, cp1252, Latin-1) and files
    without bare ``\r`` line ends. The candidate is the first line start after the target with
    an even number of quote characters before it; that is only a guess for malformed quoting,
    so the head process confirms it by parsing up to it (:func:`_head_chunks`)."""
    if encoding not in SPLIT_ENCODINGS:
        return None
    size = path.stat().st_size
    if size < SPLIT_MIN_BYTES:
        return None
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if mm.find(b"\r") != -1 and re.search(rb"\r(?!\n)", mm):
            return None
        newline = mm.find(b"\n", int(size * share))
        if newline == -1:
            return None
        candidate = newline + 1
        parity = mm[:candidate].count(b'"') % 2
        for _ in range(10_000):
            if parity == 0:
                return candidate if candidate < size else None
            newline = mm.find(b"\n", candidate)
            if newline == -1:
                return None
            parity = (parity + mm[candidate : newline + 1].count(b'"')) % 2
            candidate = newline + 1
    return None


def _head_chunks(
    path: Path,
    encoding: str,
    delimiter: str,
    boundary: int,
    skip_header: bool,
    state: dict[str, bool],
) -> Iterator[list[tuple[int, list[str]]]]:
    """Records from the start of the file up to the split, which follows its ``boundary``-th
    newline; ``state["split_ok"]`` says whether a record ended exactly there. If not (quotes
    the parity guess misread), it reads on to the end of the file and the tail process's work
    is thrown away.

    The split starts a physical line and the file has no bare CR (:func:`split_point`), so
    ``reader.line_num`` (newline-ended lines read) tells where the reader is: a record ended at
    the split when ``line_num`` is exactly ``boundary`` after it. The reading itself is C all
    the way (a ``TextIOWrapper``), as in the tail process: tracking the byte offset line by line
    in Python cost the head 2 µs a row."""
    # "utf-8-sig" reads a BOM-less file like "utf-8" and drops a BOM where there is one.
    codec = "utf-8-sig" if encoding in ("utf-8", "utf-8-sig") else encoding
    with open(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding=codec, newline="", errors="replace")
        reader = csv.reader(text, delimiter=delimiter)
        chunk: list[tuple[int, list[str]]] = []
        start = 1
        first = True
        watching = True
        try:  # around the loop, not in it: nothing added per row
            for row in reader:
                if first and skip_header:
                    first = False
                else:
                    first = False
                    chunk.append((start, row))
                start = reader.line_num + 1
                if watching and reader.line_num >= boundary:
                    watching = False
                    if reader.line_num == boundary:
                        state["split_ok"] = True
                        break
                if len(chunk) >= CHUNK_ROWS:
                    state["offset"] = raw.tell()  # type: ignore[assignment]
                    yield chunk
                    chunk = []
        except csv.Error as exc:
            raise sheets.SheetError(sheets.csv_error_message(exc, line=start)) from exc
        if chunk:
            yield chunk


def _tail_results(out_path: str) -> Iterator[ChunkResult]:
    with open(out_path, "rb") as handle:
        while True:
            try:
                # Our own file, written a moment ago by the tail process we started.
                packed = pickle.load(handle)  # noqa: S301
            except EOFError:
                return
            yield rowcheck.unpack(packed)


def _staged_dry_run(
    upload: SheetUpload,
    plan: Plan,
    has_header: bool,
    path: Path,
    size: int,
    dnc: frozenset[int],
    dedupe: _Dedupe,
    ticker: _Ticker,
    stage: _PostgresStage,
    sweep: Callable[[], None],
) -> int:
    """Check every row and stage it in ``stage``; return how many rows were staged.

    With two CPUs and a big enough sheet the file is split at a record boundary: this process
    checks the head while a second process checks the tail and COPYs it into the same table
    over its own connection. Each row carries its reserved id (``stage.id_base`` + its line),
    so the order the two processes write in does not matter. Duplicates are then settled here
    in file order (head, then the tail's results from disk), so the report is the one a single
    pass would write."""
    outcome = dedupe.outcome
    split = split_point(path, upload.encoding) if _split_enabled() else None

    def check_and_stage(chunks: Iterable[list[tuple[int, list[str]]]], done: Callable[[], float]) -> int:
        """This process's share: check, stage, settle duplicates, chunk by chunk."""
        count = 0
        with stage.writer() as write:
            for chunk in chunks:
                result = rowcheck.check_chunk(chunk, plan, dnc, copy=True, id_base=stage.id_base)
                write(result.rows)
                count += len(result.keys)
                dedupe.add(result)
                chunk.clear()  # its rows freed before the sweep, which then has little to walk
                sweep()
                ticker.tick(done(), outcome.total)
        return count

    if split is None:
        stream = sheets.RowStream(path, upload.encoding, upload.delimiter)
        return check_and_stage(_chunks(stream, has_header), lambda: 0.9 * stream.bytes_read / size)

    start_line = 1 + _newlines_before(path, split)
    params = side_conninfo()
    folder = report_path(upload).parent
    fd, out_path = tempfile.mkstemp(prefix=f"upload-{upload.pk}-", suffix=".tail", dir=folder)
    os.close(fd)
    job = rowcheck.TailJob(
        path=str(path),
        encoding=upload.encoding,
        delimiter=upload.delimiter,
        start=split,
        start_line=start_line,
        plan=plan,
        dnc=dnc,
        table=stage.table,
        id_base=stage.id_base,
        conninfo=params,
        out_path=out_path,
        chunk_rows=CHUNK_ROWS,
    )
    # A fresh interpreter, not a fork: see campaigns/rowcheck.py, "the tail of a staged dry run".
    child = subprocess.Popen(
        [sys.executable, "-m", "campaigns.rowcheck"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=settings.BASE_DIR,
    )
    try:
        pickle.dump(job, child.stdin, protocol=5)
        child.stdin.flush()
        state: dict[str, bool] = {"split_ok": False}
        staged = check_and_stage(
            _head_chunks(path, upload.encoding, upload.delimiter, start_line - 1, has_header, state),
            lambda: 0.4 * min(1.0, state.get("offset", 0) / split),
        )
        if not state["split_ok"]:
            log.warning(
                "upload %s: split guess at byte %s was inside a record; checked in one process",
                upload.pk,
                split,
            )
            child.kill()  # its transaction rolls back: none of its rows stays in the stage
            child.wait()
            return staged
        _await(child, "checked", ticker, outcome)
        child.stdin.write(b"commit\n")
        child.stdin.flush()
        _await(child, "committed", ticker, outcome)
        for result in _tail_results(out_path):
            staged += len(result.keys)
            dedupe.add(result)
            sweep()
            ticker.tick(0.45 + 0.45 * outcome.total / max(1, staged + outcome.total), outcome.total)
        return staged
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            stream.close()
        os.unlink(out_path)


def _newlines_before(path: Path, offset: int) -> int:
    count, remaining = 0, offset
    with open(path, "rb") as handle:
        while remaining > 0:
            block = handle.read(min(CHUNK_BYTES, remaining))
            if not block:
                break
            count += block.count(b"\n")
            remaining -= len(block)
    return count


def _await(child: subprocess.Popen, expected: str, ticker: _Ticker, outcome: Outcome) -> None:
    """Wait for the tail process's next word, still honouring a cancel meanwhile."""
    fd = child.stdout.fileno()
    while not select.select([fd], [], [], 0.2)[0]:
        ticker.tick(0.45, outcome.total)
    word = child.stdout.readline().decode(errors="replace").strip()
    if word != expected:
        raise RuntimeError(f"the second import process failed: {word or f'exit {child.wait()}'}")


# -- commit -----------------------------------------------------------------------------------------


def commit(
    upload: SheetUpload,
    *,
    progress: ProgressFn | None = None,
    cancelled: CancelledFn | None = None,
    before_insert: Callable[[], None] | None = None,
) -> Outcome:
    """Stage every row (or reuse the dry run's staged rows), then insert them in one statement.

    On PostgreSQL, when the dry run's staging tables match this upload's file and mapping
    (:func:`fingerprint`) and are intact, no row is checked again: the import is the set-based
    insert alone. Otherwise (SQLite, a changed mapping, a server restart) every row is checked
    and staged again first.

    ``before_insert`` runs inside the inserting transaction, before the insert: the service uses
    it to lock the upload row and raise :class:`Cancelled` when a cancel has landed."""
    plan, has_header = plan_for(upload)
    ticker = _Ticker(progress, cancelled)
    if connection.vendor == "postgresql":
        tables = _reusable_stage(upload, plan)
        if tables:
            return _insert_staged(upload, plan, tables, ticker, before_insert)
        drop_stage(upload)
    path = Path(upload.file.path)
    size = max(1, path.stat().st_size)
    stream = sheets.RowStream(path, upload.encoding, upload.delimiter)
    copy = connection.vendor == "postgresql"
    outcome = Outcome()
    stage = _stage(upload, plan)
    try:
        with (
            rowcheck.gc_paused() as sweep,
            _checked(
                _chunks(stream, has_header),
                plan,
                dnc_keys(),
                copy=copy,
                workers=_workers(size),
                id_base=stage.id_base,
            ) as results,
            stage.writer() as write,
        ):
            for result in results:
                outcome.total += len(result.keys) + len(result.issues)
                outcome.valid += len(result.keys)
                for issue in result.issues:
                    if issue[4] == DNC:
                        outcome.dnc += 1
                    else:
                        outcome.invalid += 1
                write(result.rows)
                sweep()
                ticker.tick(0.95 * stream.bytes_read / size, outcome.total)
        # The insert is one statement (SQLite: several seconds for 200,000 rows): say so.
        ticker.tick(0.95, outcome.total, force=True, step=_writing(outcome.valid, upload.updates))
        with transaction.atomic():
            if before_insert:
                before_insert()
            if upload.updates:
                lead_append_lock(upload.campaign_id)
                with connection.cursor() as cur:
                    outcome.updates = update_leads(cur, upload.campaign, stage.first_rows())
            outcome.imported = stage.insert(upload.campaign, upload, Lead.Source.SHEET)
    finally:
        stage.drop()
    outcome.duplicates = outcome.valid - outcome.imported
    return outcome


def _insert_staged(
    upload: SheetUpload,
    plan: Plan,
    tables: list[str],
    ticker: _Ticker,
    before_insert: Callable[[], None] | None,
) -> Outcome:
    info = (upload.report or {}).get("stage") or {}
    outcome = Outcome(
        total=upload.total_rows,
        valid=int(info.get("rows") or 0),
        invalid=upload.invalid_rows,
        dnc=upload.dnc_rows,
    )
    updates = info.get("updates") if upload.updates else None
    # The last point a cancel is cheap.
    ticker.tick(0.5, outcome.total, force=True, step=_writing(outcome.valid, bool(updates)))

    def inserting(done: float) -> None:
        # Between two pieces of the insert: a cancel (left in the cache, the upload row being
        # ours until COMMIT) rolls everything back.
        if ticker.cancelled and ticker.cancelled():
            raise Cancelled
        if ticker.progress:
            ticker.progress(0.5 + 0.5 * done, outcome.total)

    stage = _PostgresStage.__new__(_PostgresStage)
    stage.table, stage.tables, stage.plan = tables[0], tables, plan
    with transaction.atomic():
        if before_insert:
            before_insert()
        if updates:
            lead_append_lock(upload.campaign_id)
            with connection.cursor() as cur:
                cur.execute("SELECT to_regclass(%s)", [updates])
                if cur.fetchone()[0] is not None:
                    outcome.updates = update_leads(cur, upload.campaign, f"{updates} u")
        outcome.imported = stage.insert(
            upload.campaign,
            upload,
            Lead.Source.SHEET,
            pruned_at=info.get("leads_seen_to"),
            built=bool(info.get("built")),
            rows=outcome.valid,
            progress=inserting,
        )
    stage.drop()
    drop_stage(upload)  # and the update rows' table
    outcome.duplicates = outcome.valid - outcome.imported
    return outcome


def _writing(rows: int, updates: bool) -> str:
    if updates:
        return f"Updating leads and writing {rows:,} rows…"
    return f"Writing {rows:,} leads…"


# -- undo: take back the leads an import added ------------------------------------------------------

UNDO_BATCH = 5_000  # lead ids per DELETE; each batch commits on its own, with progress between
UNDO_SAMPLE = 200  # kept leads listed on the page
UNDO_RETRIES = 3


@dataclass
class UndoOutcome:
    removed: int = 0
    kept: int = 0
    # Removed leads that had been pushed to the campaign's platform (``Lead.pushed_at``): the
    # platform keeps its copy (Ryng's API has no way to take a lead back: docs/import.md, Undo).
    pushed: int = 0
    kept_sample: list[dict[str, object]] = field(default_factory=list)


# A lead nobody has touched: never attempted, never called, not held by an agent, no call row.
# Waiting ("pending") or put on the do-not-call list since the import ("dnc": nobody called it;
# the number stays on the list). SQLite's lead_has_calls trigger deletes a deleted lead's calls
# instead of refusing, so the NOT EXISTS is what keeps history there.
_UNTOUCHED_SQL = (
    "status IN ('pending', 'dnc') AND attempts = 0 AND last_called_at IS NULL"
    " AND lease_owner_id IS NULL"
    " AND NOT EXISTS (SELECT 1 FROM calls_call c WHERE c.lead_id = campaigns_lead.id)"
)


def undo(upload: SheetUpload, *, progress: ProgressFn | None = None) -> UndoOutcome:
    """Delete the leads ``upload`` added that nobody has touched; keep (and list) the others.

    Nothing finds leads by upload through an index (``Lead.upload`` has none, on purpose:
    models.py), so one pass over the campaign's leads (on PostgreSQL its own partition, or
    its share of the DEFAULT one) finds the id range the upload's leads span (they were inserted
    together: reserved ids follow the sheet); then each ``UNDO_BATCH`` ids of it go with a
    ``DELETE`` that the primary key serves, in its own transaction. Safe to run again after a
    crash: it starts over on what is left. A lead an agent takes meanwhile is re-checked by the
    ``DELETE`` itself on PostgreSQL (a row changed under it is evaluated again); a call that
    commits for one in the same instant makes the ``lead_has_calls`` trigger refuse the batch,
    which is then tried again (and then leaves that lead)."""
    outcome = UndoOutcome()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT min(id), max(id), count(*) FROM campaigns_lead WHERE campaign_id = %s AND upload_id = %s",
            [upload.campaign_id, upload.pk],
        )
        low, high, total = cur.fetchone()
    if not total:
        return outcome
    span = high - low + 1
    for start in range(low, high + 1, UNDO_BATCH):
        end = min(high, start + UNDO_BATCH - 1)
        removed, pushed = _undo_batch(upload, start, end)
        outcome.removed += removed
        outcome.pushed += pushed
        if progress:
            progress((end - low + 1) / span, outcome.removed)
    kept = Lead.objects.filter(campaign_id=upload.campaign_id, upload_id=upload.pk)
    outcome.kept = kept.count()
    outcome.kept_sample = [
        {
            "number": lead.number,
            "name": lead.name,
            "status": lead.get_status_display(),
            "attempts": lead.attempts,
        }
        for lead in kept.order_by("id")[:UNDO_SAMPLE]
    ]
    return outcome


def _undo_batch(upload: SheetUpload, start: int, end: int) -> tuple[int, int]:
    """The leads removed from ids ``start``-``end``, and how many of them had been pushed."""
    for attempt in range(UNDO_RETRIES):
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute(
                    "DELETE FROM campaigns_lead WHERE campaign_id = %s AND upload_id = %s"  # noqa: S608
                    f" AND id BETWEEN %s AND %s AND {_UNTOUCHED_SQL}"
                    " RETURNING pushed_at",
                    [upload.campaign_id, upload.pk, start, end],
                )
                # The column itself: SQLite 3.40 answered CASE WHEN pushed_at IS NULL ... with 1
                # for rows whose pushed_at was NULL (measured in test_undo_update).
                pushed = [row[0] for row in cur.fetchall()]
                return len(pushed), sum(1 for when in pushed if when is not None)
        except IntegrityError:
            # lead_has_calls: a call for one of these leads committed while the DELETE ran.
            log.info("undo of upload %s: a call started in ids %s-%s; trying again", upload.pk, start, end)
            if attempt == UNDO_RETRIES - 1:
                raise
    return 0, 0
