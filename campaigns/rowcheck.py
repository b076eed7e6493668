"""Checking rows of a sheet, in chunks, without Django: the part of an import that parallelises.

:func:`check_chunk` turns raw CSV records into staged lead rows and issues. It imports nothing
from Django so worker processes of a ``multiprocessing`` pool start quickly and never touch a
database connection. The parent process keeps everything stateful: duplicate detection, counts,
the error report and the database writes (``campaigns/importer.py``).
"""

from __future__ import annotations

import csv
import gc
import io
import json
import re
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import accumulate, compress, repeat
from operator import add, itemgetter

from campaigns.phone import Normalized, normalizer

# Field limits from campaigns.models.Lead.
MAX_RAW = 64
MAX_NAME = 200
MAX_AGENTS = 1000

_AGENT_SPLIT = re.compile(r"[,;|\s]+")

INVALID, DUPLICATE, DUPLICATE_CAMPAIGN, DNC = "invalid", "duplicate", "duplicate_campaign", "dnc"

# The checks' short reasons (also the intake API's, which answers a program) as the sentences a
# supervisor reads in the dry run's report: what is wrong and what to do about it. The ``kind``
# beside each stays the machine-readable code.
SENTENCES = {
    "empty": "The phone number cell is empty.",
    "the row has no number column": "This row ends before the phone number column: it has too few cells.",
    "wrong number of digits": "The phone number has too many or too few digits for its country.",
    "not a valid number": "The phone number is not one that exists: check for a typing mistake.",
    "unknown country code": "The phone number starts with a country code that does not exist.",
    "not a phone number": "The phone number cell does not hold a phone number.",
    "too short": "The phone number is too short to be dialed.",
    "too long": "The phone number is too long to be dialed.",
    "has an extension; preview dialing cannot reach extensions": (
        "The phone number has an extension, which preview dialing cannot reach: give the main number."
    ),
    f"longer than {MAX_RAW} characters": f"The phone number cell is longer than {MAX_RAW} characters.",
    f"longer than {MAX_NAME} characters": f"The name is longer than {MAX_NAME} characters: shorten it.",
    "too many agents": f"The agents cell names more agents than fit in {MAX_AGENTS:,} characters.",
    "on the do-not-call list": "This number is on the do-not-call list: it will not be called.",
    "appears earlier in this sheet": "This number is on an earlier line of this sheet: only the first is kept.",
    "already in this campaign": "This number is already a lead of this campaign: the row is left out.",
    "already in this campaign and on a call": (
        "This number is a lead of this campaign that an agent is working now: it is left as it is."
    ),
}


def sentence(reason: str) -> str:
    """A check's reason as a sentence for the report (an unknown reason, capitalised)."""
    known = SENTENCES.get(reason)
    if known:
        return known
    return (reason[:1].upper() + reason[1:]).rstrip(".") + "." if reason else reason


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


# The lead columns a staged row carries (PostgreSQL), in COPY order; every other column of the
# staging table takes its default (campaigns.importer: the stage is shaped like campaigns_lead).
STAGE_COLUMNS = ("id", "number", "raw_number", "name", "custom_fields", "assigned_agents", "timezone")


def stage_copy_sql(table: str) -> str:
    return f"COPY {table} ({', '.join(STAGE_COLUMNS)}) FROM STDIN"


_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": ""})


def _copy_text(rows: list[tuple[str, ...]]) -> str:
    """Rows for ``COPY ... FROM STDIN`` in PostgreSQL's text format (tab-separated, backslash
    escapes; an empty cell is an empty string, never NULL). NUL cannot be stored in PostgreSQL
    text at all, so it is dropped.

    Almost every chunk needs no escaping at all, and then the text is the cells joined with tabs
    and newlines: two C-level joins. The join is only kept when it provably is the escaped text:
    no backslash or carriage return anywhere, and exactly the tabs and newlines that separate the
    cells and rows. Anything else escapes cell by cell."""
    if not rows:
        return ""
    text = "\n".join(map("\t".join, rows)) + "\n"
    if not _joined_as_escaped(text, len(rows), sum(map(len, rows)) - len(rows)):
        text = "".join("\t".join(cell.translate(_TEXT_ESCAPES) for cell in row) + "\n" for row in rows)
    return text


def _copy_columns(columns: list[list[str]]) -> str:
    """``_copy_text`` of the rows ``zip(*columns)`` makes, without a list of them: ``zip`` hands
    each to ``"\\t".join`` in the one tuple it reuses."""
    count = len(columns[0])
    if not count:
        return ""
    text = "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"
    if not _joined_as_escaped(text, count, count * (len(columns) - 1)):
        return _copy_text(list(zip(*columns, strict=True)))
    return text


def _joined_as_escaped(text: str, rows: int, tabs: int) -> bool:
    """Whether cells joined with tabs and newlines are already COPY text: no backslash, carriage
    return or NUL anywhere, and exactly the separators' tabs and newlines."""
    return not ("\\" in text or "\r" in text or "\x00" in text) and (
        text.count("\n") == rows and text.count("\t") == tabs
    )


# Characters JSON text must escape: a value holding one goes through json.dumps.
_JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')


def custom_fields_json(
    names: tuple[str, ...],
) -> tuple[
    Callable[[tuple[str, ...]], str],
    Callable[[tuple[str, ...]], str],
    Callable[[list[tuple[str, ...]]], list[str]],
]:
    """``(plain, careful, column)``: ``values -> Lead.custom_fields`` JSON text, every field
    with a non-empty value, named as the mapping says (of two columns mapped to one name the
    last one given wins, as in a dict and in ``jsonb``).

    ``plain`` fills a ``%`` template of the fields present (0.2-0.5 µs against 2 µs for
    ``json.dumps``) and is right only for values without a character JSON escapes
    (:data:`_JSON_ESCAPED`); ``careful`` is ``json.dumps``, dropping NUL (PostgreSQL's
    ``jsonb`` refuses ``\\u0000``). ``column`` renders a chunk's values, each the way it needs:
    a whole chunk is checked for escapes at once, and a row with every field filled is one
    ``%`` in a comprehension, no call."""
    if not names:
        return (lambda values: "{}"), (lambda values: "{}"), (lambda column: ["{}"] * len(column))
    keys = [json.dumps(n, ensure_ascii=False).replace("%", "%%") + ': "%s"' for n in names]
    full = "{" + ", ".join(keys) + "}"
    templates: dict[tuple[bool, ...], str] = {}

    def plain(values: tuple[str, ...]) -> str:
        if "" not in values:
            return full % values
        present = tuple(map(bool, values))
        template = templates.get(present)
        if template is None:
            template = templates[present] = (
                "{" + ", ".join(k for k, p in zip(keys, present, strict=True) if p) + "}"
            )
        return template % tuple(filter(None, values))

    def careful(values: tuple[str, ...]) -> str:
        custom = {}
        for name, value in zip(names, values, strict=True):
            if value := value.replace("\x00", ""):
                custom[name] = value
        return json.dumps(custom, ensure_ascii=False)

    def column(picked: list[tuple[str, ...]]) -> list[str]:
        if _JSON_ESCAPED.search("".join(map("".join, picked))):
            return [careful(v) if _JSON_ESCAPED.search("".join(v)) else plain(v) for v in picked]
        return [full % v if "" not in v else plain(v) for v in picked]

    return plain, careful, column


@contextmanager
def gc_paused() -> Iterator[Callable[[], None]]:
    """Python's cyclic garbage collector off for a pass over a sheet; yields ``sweep()``, to
    call once per chunk.

    A pass allocates and drops millions of short-lived lists and tuples (records, chunks, staged
    rows). Reference counting frees them, yet each counts towards the collector's runs, and the
    full ones walk every tracked object, a whole Django worker's included: 20-30% of a checking
    process's time (BENCHMARKS.md, "Sixth round"). A few do end in reference cycles
    (``phonenumbers.parse`` keeps an exception it handled in a local, which pins its callers'
    frames, a whole chunk; ``campaigns.phone`` breaks the cycles it knows of), so ``sweep()``
    collects the youngest generation: whatever was made since the last sweep and is still there.
    Called once a chunk is dropped, it walks next to nothing. The collector is on again, as it
    was, when the pass ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield lambda: gc.collect(0)
    finally:
        if enabled:
            gc.enable()


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
    chunk: list[tuple[int, list[str]]],
    plan: Plan,
    dnc: frozenset[int] | set[int],
    *,
    copy: bool | None,
    id_base: int = 0,
) -> ChunkResult:
    """Validate and normalise records. ``copy=True`` renders PostgreSQL ``COPY`` text of the
    :data:`STAGE_COLUMNS`, the lead id being ``id_base`` + the record's line (ids reserved for the
    sheet, see ``campaigns.importer.reserve_ids``); otherwise tuples ``(line, number, raw, name,
    agents, timezone, custom_fields JSON)`` (SQLite, the intake API); ``copy=None`` only checks
    (the SQLite dry run). Every mode keeps each valid row's raw number in ``raws``.

    The chunk is checked a column at a time: each step is one ``map`` over a column, C calling
    the per-cell function (``str.strip``, the number's normaliser, ``int``), and whole-column
    tests (``max`` of the lengths, a set's ``isdisjoint``) find the rare rows that fail a rule.
    Those rows are set aside and :func:`check_rows`, the same rules a row at a time, says what is
    wrong with each. Measured with the numbers' own check included: 4.6-4.8 µs a row against
    5.3 for a loop that takes every row through every rule (BENCHMARKS.md, "Seventh round")."""
    number_col, name_col, agents_col = plan.number_col, plan.name_col, plan.agents_col
    aside: set[int] = set()  # positions of rows check_rows reports on
    lines = list(map(itemgetter(0), chunk))
    records = list(map(itemgetter(1), chunk))
    if records and min(map(len, records)) <= number_col:
        aside.update(i for i, record in enumerate(records) if len(record) <= number_col)
        records = [r if len(r) > number_col else [""] * (number_col + 1) for r in records]
    raws = list(map(str.strip, map(itemgetter(number_col), records)))
    results = list(map(normalizer(plan.region), raws))
    names = _column(records, name_col)
    agents = _column(records, agents_col, lambda cell, a=dict(plan.agent_aliases): split_agents(cell, a))
    for column, limit in ((raws, MAX_RAW), (names, MAX_NAME), (agents, MAX_AGENTS)):
        if column and max(map(len, column)) > limit:
            aside.update(i for i, cell in enumerate(column) if len(cell) > limit)
    aside.update(i for i, result in enumerate(results) if result.__class__ is not Normalized)
    if aside:
        keep = [i not in aside for i in range(len(records))]
        records, lines, raws, results, names, agents = (
            list(compress(column, keep)) if column else column
            for column in (records, lines, raws, results, names, agents)
        )
    numbers = list(map(itemgetter(0), results))
    keys = list(map(int, numbers))  # int() takes the leading "+" as a sign: the digits
    if dnc and not dnc.isdisjoint(keys):
        # Rare: drop the listed numbers' rows; check_rows reports them with the others below.
        listed = [key in dnc for key in keys]
        aside_lines = set(compress(lines, listed))
        kept = [not hit for hit in listed]
        records, lines, raws, results, names, agents, numbers, keys = (
            list(compress(column, kept)) if column else column
            for column in (records, lines, raws, results, names, agents, numbers, keys)
        )
        aside.update(i for i, (line, _) in enumerate(chunk) if line in aside_lines)
    issues = check_rows([chunk[i] for i in sorted(aside)], plan, dnc, copy=None).issues if aside else []
    if copy is None:
        return ChunkResult(rows=[], keys=keys, lines=lines, issues=issues, raws=raws)
    zones = list(map(itemgetter(1), results))
    custom = _custom_fields(records, plan.fields)
    names = names or [""] * len(records)
    agents = agents or [""] * len(records)
    if copy:
        ids = list(map(str, map(add, lines, repeat(id_base))))
        text = _copy_columns([ids, numbers, raws, names, custom, agents, zones])
        return ChunkResult(rows=text, keys=keys, lines=lines, issues=issues, raws=raws)
    rows = list(zip(lines, numbers, raws, names, agents, zones, custom, strict=True))
    if any("\x00" in cell for row in rows for cell in row[1:]):
        # As the COPY text does: PostgreSQL cannot store NUL in text, SQLite should not either.
        rows = [(row[0], *(cell.replace("\x00", "") for cell in row[1:])) for row in rows]
    return ChunkResult(rows=rows, keys=keys, lines=lines, issues=issues, raws=raws)


def _column(
    records: list[list[str]], index: int | None, convert: Callable[[str], str] = str.strip
) -> list[str]:
    """``convert`` of each record's cell at ``index`` ("" where a record is too short); ``[]``
    for an unmapped column."""
    if index is None:
        return []
    if min(map(len, records), default=index + 1) > index:
        return list(map(convert, map(itemgetter(index), records)))
    return [convert(r[index]) if index < len(r) else "" for r in records]


def _custom_fields(records: list[list[str]], fields: tuple[tuple[int, str], ...]) -> list[str]:
    """Each record's ``Lead.custom_fields`` JSON text (:func:`custom_fields_json`)."""
    *_, column = custom_fields_json(tuple(n for _, n in fields))
    if not fields:
        return column(records)
    indexes = tuple(i for i, _ in fields)
    pick = _picker(indexes)
    reach = max(indexes)
    if min(map(len, records), default=reach + 1) > reach:
        return column(list(map(pick, records)))
    return column(
        [pick(r) if len(r) > reach else tuple(r[i] if i < len(r) else "" for i in indexes) for r in records]
    )


def check_rows(
    chunk: list[tuple[int, list[str]]],
    plan: Plan,
    dnc: frozenset[int] | set[int],
    *,
    copy: bool | None,
    id_base: int = 0,
) -> ChunkResult:
    """:func:`check_chunk` a row at a time: every rule in its order, the first one a row breaks
    named in its issue. Reports the rows the column pass sets aside, and is the reference it is
    tested against."""
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
    *_, render_custom = custom_fields_json(tuple(n for _, n in fields))
    for line, record in chunk:
        width = len(record)
        if width <= number_col:
            if width <= 1 and not "".join(record).strip():
                continue  # a blank line is not a lead and not worth an error
            issues.append((line, number_header, "", "the row has no number column", INVALID))
            continue
        raw = record[number_col].strip()
        result = normalize(raw)
        if not isinstance(result, Normalized):
            issues.append((line, number_header, raw[:100], result.reason, INVALID))
            continue
        if len(raw) > MAX_RAW:
            issues.append((line, number_header, raw[:100], f"longer than {MAX_RAW} characters", INVALID))
            continue
        name = record[name_col].strip() if name_col is not None and name_col < width else ""
        if len(name) > MAX_NAME:
            issues.append(
                (line, plan.header(name_col), name[:100], f"longer than {MAX_NAME} characters", INVALID)
            )  # type: ignore[arg-type]
            continue
        agents = (
            split_agents(record[agents_col], aliases) if agents_col is not None and agents_col < width else ""
        )
        if len(agents) > MAX_AGENTS:
            issues.append((line, plan.header(agents_col), agents[:100], "too many agents", INVALID))  # type: ignore[arg-type]
            continue
        e164, timezone, _ = result
        key = int(e164)
        if key in dnc:
            issues.append((line, number_header, raw[:100], "on the do-not-call list", DNC))
            continue
        keys.append(key)
        lines.append(line)
        raws.append(raw)
        if copy is None:
            continue
        [custom] = render_custom([tuple(record[i] if i < width else "" for i in indexes)])
        if copy:
            out_text.append((str(id_base + line), e164, raw, name, custom, agents, timezone))
        else:
            row = (line, e164, raw, name, agents, timezone, custom)
            out_rows.append((line, *(cell.replace("\x00", "") for cell in row[1:])))
    rows: str | list[tuple] = _copy_text(out_text) if copy else out_rows
    return ChunkResult(rows=rows, keys=keys, lines=lines, issues=issues, raws=raws)


# -- a checked chunk's bookkeeping, as the tail process hands it to the head -----------------------


class _Joined(Sequence[str]):
    """Strings kept as one text and their lengths; one is cut out only when asked for (the raw
    numbers, wanted only for the report of a duplicate)."""

    def __init__(self, text: str, lengths: array):
        self.text, self.lengths = text, lengths
        self.ends: list[int] | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if self.ends is None:
            self.ends = list(accumulate(self.lengths))
        end = self.ends[index]
        return self.text[end - self.lengths[index] : end]


def pack(result: ChunkResult) -> tuple:
    """``result``'s keys, lines, raw numbers and issues (not its rows, which went to the stage),
    in a form that pickles and unpickles as a few byte strings, not a million small objects: the
    head process reads the tail's while nothing else runs."""
    return (
        array("q", result.keys).tobytes(),
        array("q", result.lines).tobytes(),
        "".join(result.raws),
        array("q", map(len, result.raws)).tobytes(),
        result.issues,
    )


def unpack(packed: tuple) -> ChunkResult:
    keys, lines, raws, lengths, issues = packed
    return ChunkResult(
        rows="",
        keys=array("q", keys),  # type: ignore[arg-type]
        lines=array("q", lines),  # type: ignore[arg-type]
        issues=issues,
        raws=_Joined(raws, array("q", lengths)),  # type: ignore[arg-type]
    )


# -- process-pool plumbing: the plan and the do-not-call set are sent once per worker -------------

_worker_state: dict[str, object] = {}


def pool_init(plan: Plan, dnc: frozenset[int], copy: bool | None, id_base: int = 0) -> None:
    _worker_state.update(plan=plan, dnc=dnc, copy=copy, id_base=id_base)


def pool_check(chunk: list[tuple[int, list[str]]]) -> ChunkResult:
    state = _worker_state
    return check_chunk(chunk, state["plan"], state["dnc"], copy=state["copy"], id_base=state["id_base"])  # type: ignore[arg-type]


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
    id_base: int  # lead id = id_base + line (ids reserved for the sheet)
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
        gc_paused() as sweep,
        open(job.path, "rb") as raw,
        open(job.out_path, "wb") as out,
        conn.cursor() as cur,
        cur.copy(stage_copy_sql(job.table)) as copy,
    ):
        raw.seek(job.start)
        text = io.TextIOWrapper(raw, encoding=codec, newline="", errors="replace")
        reader = csv.reader(text, delimiter=job.delimiter)
        chunk: list[tuple[int, list[str]]] = []
        line = start_line

        def flush() -> None:
            result = check_chunk(chunk, plan, dnc, copy=True, id_base=job.id_base)
            if result.rows:
                copy.write(result.rows)
            pickle.dump(pack(result), out, protocol=5)

        for row in reader:
            chunk.append((line, row))
            line = start_line + reader.line_num
            if len(chunk) >= job.chunk_rows:
                flush()
                chunk = []
                sweep()  # with the chunk freed: nothing but leftovers to walk
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
