"""Checking rows of a sheet, in chunks, without Django: the part of an import that parallelises.

:func:`check_chunk` turns raw CSV records into staged lead rows and issues. It imports nothing
from Django so worker processes of a ``multiprocessing`` pool start quickly and never touch a
database connection. The parent process keeps everything stateful: duplicate detection, counts,
the error report and the database writes (``campaigns/importer.py``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter

from campaigns.phone import Normalized, normalizer

# Field limits from campaigns.models.Lead.
MAX_RAW = 64
MAX_NAME = 200
MAX_AGENTS = 1000

_AGENT_SPLIT = re.compile(r"[,;|\s]+")

INVALID, DUPLICATE, DUPLICATE_CAMPAIGN, DNC = "invalid", "duplicate", "duplicate_campaign", "dnc"


@dataclass(frozen=True)
class Plan:
    """What to read from each record: column indexes from the mapping step, and the campaign's
    default region for national numbers. ``agent_aliases`` maps a platform username (Ryng) to
    the AgentDesk username stored in ``Lead.assigned_agents``."""

    number_col: int
    name_col: int | None
    agents_col: int | None
    fields: tuple[tuple[int, str], ...]
    region: str
    headers: tuple[str, ...]
    agent_aliases: tuple[tuple[str, str], ...] = ()

    def header(self, index: int) -> str:
        return (
            self.headers[index]
            if index < len(self.headers) and self.headers[index]
            else f"column {index + 1}"
        )


@dataclass
class ChunkResult:
    """``rows``: staged leads, either PostgreSQL COPY text or tuples (see :func:`check_chunk`).
    ``keys``/``lines``: the E.164 digits as an int and the line of each staged row, for the
    parent's duplicate checks. ``issues``: (line, column, value, reason, kind)."""

    rows: str | list[tuple]
    keys: list[int]
    lines: list[int]
    issues: list[tuple[int, str, str, str, str]]
    raws: list[str] = field(default_factory=list)  # the number as typed, for the duplicate report


def _copy_csv(rows: list[tuple]) -> str:
    """Rows as CSV for ``COPY ... (FORMAT csv)``. NUL cannot be stored in PostgreSQL text at
    all, so it is dropped.

    Almost every chunk needs no quoting at all, and then CSV is the cells joined with commas and
    newlines: two C-level joins, against 1.4 µs a row in the csv writer. The join is only kept
    when it provably is what the writer writes: every cell text (a ``TypeError`` otherwise), no
    quote or carriage return anywhere, no comma or newline beyond the separators, and no row of
    fewer than two cells (the writer quotes a lone empty cell). Anything else goes to the csv
    writer, whose quoting is the reference."""
    if not rows:
        return ""
    try:
        text = "\n".join(map(",".join, rows)) + "\n"
    except TypeError:
        text = ""
    if (
        not text
        or '"' in text
        or "\r" in text
        or text.count("\n") != len(rows)
        or text.count(",") != sum(map(len, rows)) - len(rows)
        or min(map(len, rows)) < 2
    ):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        text = buffer.getvalue()
    return text.replace("\x00", "") if "\x00" in text else text


def split_agents(cell: str, aliases: dict[str, str]) -> str:
    """``"a@x.com; b"`` -> ``",alice,b,"`` (``Lead.assigned_agents``), platform usernames mapped
    to ours; names we do not know are kept as given (they may exist on the platform)."""
    names = [aliases.get(n, n) for n in _AGENT_SPLIT.split(cell.strip()) if n]
    return f",{','.join(dict.fromkeys(names))}," if names else ""


def _picker(indexes: tuple[int, ...]) -> Callable[[list[str]], tuple[str, ...]]:
    """``record -> tuple(record[i] for i in indexes)`` in C (``itemgetter``), for records wide
    enough to have every index."""
    if len(indexes) >= 2:
        return itemgetter(*indexes)  # type: ignore[return-value]
    if indexes:
        (index,) = indexes
        return lambda record: (record[index],)
    return lambda record: ()


def check_chunk(
    chunk: list[tuple[int, list[str]]], plan: Plan, dnc: frozenset[int] | set[int], *, copy: bool | None
) -> ChunkResult:
    """Validate and normalise records. ``copy=True`` renders CSV for PostgreSQL ``COPY (FORMAT csv)`` with columns
    ``line, number, raw, name, agents, timezone, f1..fN``; otherwise tuples with the same columns
    but one JSON ``custom_fields`` text in place of ``f1..fN`` (the SQLite path); ``copy=None``
    only checks (the SQLite dry run). Every mode keeps each valid row's raw number in ``raws``."""
    out_text: list[tuple] = []
    out_rows: list[tuple] = []
    keys: list[int] = []
    lines: list[int] = []
    raws: list[str] = []
    issues: list[tuple[int, str, str, str, str]] = []
    number_col, name_col, agents_col, fields = plan.number_col, plan.name_col, plan.agents_col, plan.fields
    normalize = normalizer(plan.region)
    aliases = dict(plan.agent_aliases)
    number_header = plan.header(number_col)
    indexes = tuple(i for i, _ in fields)
    names = tuple(n for _, n in fields)
    pick = _picker(indexes)
    reach = max(indexes, default=-1)  # records wider than this have every field
    # Bound methods: each row appends to five lists.
    add_issue, add_key, add_line, add_raw = issues.append, keys.append, lines.append, raws.append
    add_text, add_row = out_text.append, out_rows.append
    for line, record in chunk:
        width = len(record)
        if width <= number_col:
            if width <= 1 and not "".join(record).strip():
                continue  # a blank line is not a lead and not worth an error
            add_issue((line, number_header, "", "the row has no number column", INVALID))
            continue
        raw = record[number_col].strip()
        result = normalize(raw)
        if not isinstance(result, Normalized):
            add_issue((line, number_header, raw[:100], result.reason, INVALID))
            continue
        if len(raw) > MAX_RAW:
            add_issue((line, number_header, raw[:100], f"longer than {MAX_RAW} characters", INVALID))
            continue
        name = record[name_col].strip() if name_col is not None and name_col < width else ""
        if len(name) > MAX_NAME:
            add_issue(
                (line, plan.header(name_col), name[:100], f"longer than {MAX_NAME} characters", INVALID)
            )  # type: ignore[arg-type]
            continue
        agents = (
            split_agents(record[agents_col], aliases) if agents_col is not None and agents_col < width else ""
        )
        if len(agents) > MAX_AGENTS:
            add_issue((line, plan.header(agents_col), agents[:100], "too many agents", INVALID))  # type: ignore[arg-type]
            continue
        e164, timezone, _ = result
        key = int(e164)  # int() takes the leading "+" as a sign: the digits, without a slice
        if key in dnc:
            add_issue((line, number_header, raw[:100], "on the do-not-call list", DNC))
            continue
        add_key(key)
        add_line(line)
        add_raw(raw)
        if copy is None:
            continue  # the check-only dry run keeps the value (raws), for its duplicate report
        values = pick(record) if width > reach else tuple(record[i] if i < width else "" for i in indexes)
        if copy:
            # The line as text: CSV writes it the same, and _copy_csv can then join the row.
            add_text((str(line), e164, raw, name, agents, timezone, *values))
        else:
            custom = {n: v for n, v in zip(names, values, strict=True) if v != ""}
            add_row((line, e164, raw, name, agents, timezone, json.dumps(custom, ensure_ascii=False)))
    rows: str | list[tuple] = _copy_csv(out_text) if copy else out_rows
    return ChunkResult(rows=rows, keys=keys, lines=lines, issues=issues, raws=raws)


# -- process-pool plumbing: the plan and the do-not-call set are sent once per worker -------------

_worker_state: dict[str, object] = {}


def pool_init(plan: Plan, dnc: frozenset[int], copy: bool | None) -> None:
    _worker_state.update(plan=plan, dnc=dnc, copy=copy)


def pool_check(chunk: list[tuple[int, list[str]]]) -> ChunkResult:
    return check_chunk(chunk, _worker_state["plan"], _worker_state["dnc"], copy=_worker_state["copy"])  # type: ignore[arg-type]


# -- the tail of a staged dry run, in its own interpreter (``python -m campaigns.rowcheck``) ---------
#
# A fresh interpreter rather than a fork: the parent is a Celery worker or a test process with
# threads, and a forked child can deadlock on a lock one of those threads held at fork time.
# Protocol over the pipes: the parent pickles a TailJob to stdin; the child checks the rows,
# COPYs them in one open transaction, writes each chunk's (keys, lines, raws, issues) to
# ``out_path`` and prints "checked"; the parent answers "commit" or "rollback"; the child prints
# "committed" or "rolled back". Any failure prints "error <text>".


@dataclass(frozen=True)
class TailJob:
    path: str
    encoding: str
    delimiter: str
    start: int  # byte offset of the first record
    start_line: int  # its physical line number
    plan: Plan
    dnc: frozenset[int]
    table: str
    conninfo: dict[str, object]  # psycopg.connect() keyword arguments
    out_path: str
    chunk_rows: int = 20_000


def run_tail(job: TailJob, say, hear) -> None:
    """Check ``job``'s range and stage it; ``say``/``hear`` are the protocol's two directions."""
    import pickle

    import psycopg

    conn = psycopg.connect(**job.conninfo)
    codec = "utf-8" if job.encoding == "utf-8-sig" else job.encoding
    plan, dnc, start_line = job.plan, job.dnc, job.start_line
    with (
        open(job.path, "rb") as raw,
        open(job.out_path, "wb") as out,
        conn.cursor() as cur,
        cur.copy(f"COPY {job.table} FROM STDIN (FORMAT csv, FORCE_NOT_NULL (raw, name, agents, tz))") as copy,
    ):
        raw.seek(job.start)
        text = io.TextIOWrapper(raw, encoding=codec, newline="", errors="replace")
        reader = csv.reader(text, delimiter=job.delimiter)
        chunk: list[tuple[int, list[str]]] = []
        line = start_line

        def flush() -> None:
            result = check_chunk(chunk, plan, dnc, copy=True)
            if result.rows:
                copy.write(result.rows)
            pickle.dump((result.keys, result.lines, result.raws, result.issues), out, protocol=5)

        for row in reader:
            chunk.append((line, row))
            line = start_line + reader.line_num
            if len(chunk) >= job.chunk_rows:
                flush()
                chunk = []
        if chunk:
            flush()
    say("checked")
    if hear() == "commit":
        conn.commit()
        say("committed")
    else:
        conn.rollback()
        say("rolled back")
    conn.close()


def _tail_main() -> None:
    import pickle
    import sys

    job = pickle.load(sys.stdin.buffer)  # noqa: S301 - our parent's own job description

    def say(word: str) -> None:
        sys.stdout.write(word + "\n")
        sys.stdout.flush()

    def hear() -> str:
        return sys.stdin.readline().strip()

    try:
        run_tail(job, say, hear)
    except BaseException as exc:
        say(f"error {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        raise SystemExit(1) from exc


if __name__ == "__main__":
    _tail_main()
