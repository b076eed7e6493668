"""Staged rows are lead rows: ``COPY`` text of the lead columns with the custom fields as JSON,
rendered by fast paths that must always equal the reference (``json.dumps``, PostgreSQL's text
escaping), and land in ``campaigns_lead`` exactly as typed."""

from __future__ import annotations

import json
import random

import pytest
from django.db import connection

from campaigns import rowcheck
from campaigns.models import Lead, SheetUpload
from tests.campaigns.conftest import run_import, upload_sheet

pytestmark = pytest.mark.django_db(transaction=True)

ALPHABET = [
    "a",
    "Z",
    "0",
    " ",
    ",",
    '"',
    "'",
    "\\",
    "\t",
    "\n",
    "\r",
    "\x00",
    "%",
    "%s",
    "é",
    "☎",
    "\x1f",
    "{",
    "}",
]


def _reference_json(names, values) -> str:
    custom = {}
    for name, value in zip(names, values, strict=True):
        if value := value.replace("\x00", ""):
            custom[name] = value
    return json.dumps(custom, ensure_ascii=False)


def _reference_text(rows) -> str:
    def escape(cell: str) -> str:
        return (
            cell.replace("\x00", "")
            .replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )

    return "".join("\t".join(escape(c) for c in row) + "\n" for row in rows)


def _cell(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return rng.choice(["Springfield", "gold", "", "New York", "Ann O'Neil"])
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 6)))


@pytest.mark.parametrize(
    "names", [(), ("City",), ("City", "Plan"), ('Odd "name" %s', "Plan"), ("City", "City")], ids=repr
)
def test_custom_fields_json_equals_json_dumps(names):
    rng = random.Random(7)
    plain, careful, column = rowcheck.custom_fields_json(names)
    samples = [tuple(_cell(rng) for _ in names) for _ in range(5000)]
    for values in samples:
        reference = json.loads(_reference_json(names, values))
        assert json.loads(careful(values)) == reference, values
        if not rowcheck._JSON_ESCAPED.search("".join(values)):  # what check_chunk checks first
            assert json.loads(plain(values)) == reference, values
    plain_only = [v for v in samples if not rowcheck._JSON_ESCAPED.search("".join(v))]
    for chunk in (samples, plain_only):  # a chunk with escapes somewhere, and one without
        for values, text in zip(chunk, column(chunk), strict=True):
            assert json.loads(text) == json.loads(_reference_json(names, values)), values


def test_check_chunk_renders_custom_fields_like_json_dumps():
    rng = random.Random(3)
    names = ("City", "Plan", "City")
    plan = rowcheck.Plan(
        number_col=0,
        name_col=None,
        agents_col=None,
        fields=tuple(zip((1, 2, 3), names, strict=True)),
        region="US",
        headers=(),
    )
    chunk = [(n + 1, [f"+1212555{n:04d}", *(_cell(rng) for _ in names)]) for n in range(2000)]
    for copy in (True, False):
        result = rowcheck.check_chunk(chunk, plan, frozenset(), copy=copy, id_base=100)
        if copy:
            rendered = [line.split("\t")[4].replace("\\\\", "\\") for line in result.rows.splitlines()]
        else:
            rendered = [row[6] for row in result.rows]
        assert len(rendered) == len(chunk)
        for (_, record), text in zip(chunk, rendered, strict=True):
            assert json.loads(text) == json.loads(_reference_json(names, tuple(record[1:]))), record


def test_copy_text_equals_escaping_every_cell():
    rng = random.Random(11)
    for size in (1, 2, 50):
        for _ in range(300):
            rows = [tuple(_cell(rng) for _ in range(7)) for _ in range(size)]
            assert rowcheck._copy_text(rows) == _reference_text(rows), rows
            columns = [list(column) for column in zip(*rows, strict=True)]
            assert rowcheck._copy_columns(columns) == _reference_text(rows), rows
    plain = [("1", "+12125550134", "(212) 555-0134", "Ann", "{}", "", "America/New_York")]
    assert rowcheck._copy_text(plain) == "\t".join(plain[0]) + "\n"
    assert rowcheck._copy_text([]) == ""


def test_tricky_cells_land_exactly_as_typed(campaign):
    """Tabs, backslashes, quotes, newlines, percent signs, unicode and NUL in every kind of cell,
    through the real import (PostgreSQL: COPY text into the stage; SQLite: its own path)."""
    rows = [
        ("Tab\there \\ back", "+12125550101", "C:\\new\\table", 'say "hi"\n%s'),
        ("Nul\x00name", "+12125550102", "\x00", "pct %d 100%"),
        ("Ünïcødé ☎", "+12125550103", "", '{"json": [1]}'),
        ("Carriage\rreturn", "+12125550104", "line\r\nbreak", "\\"),
    ]
    lines = ["Name\tPhone\tCity\tPlan"]
    for name, number, city, plan in rows:
        cells = [name, number, city, plan]
        lines.append("\t".join('"' + c.replace('"', '""') + '"' for c in cells))
    data = ("\r\n".join(lines) + "\r\n").encode()
    upload = run_import(upload_sheet(campaign, data, name="tricky.tsv"))
    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert upload.imported_rows == 4
    got = {lead.number: lead for lead in Lead.objects.filter(campaign=campaign)}
    for name, number, city, plan in rows:
        lead = got[number]
        assert lead.name == name.replace("\x00", "")
        expected = {k: v.replace("\x00", "") for k, v in (("City", city), ("Plan", plan))}
        assert lead.custom_fields == {k: v for k, v in expected.items() if v}
    if connection.vendor == "postgresql":
        # Ids follow the sheet there too.
        assert [got[r[1]].pk for r in rows] == sorted(got[r[1]].pk for r in rows)


def test_gc_paused_turns_the_collector_off_for_the_pass_and_back_as_it_was():
    import gc
    import weakref

    class Node:
        pass

    assert gc.isenabled()
    with rowcheck.gc_paused() as sweep:
        assert not gc.isenabled()
        node = Node()
        node.me = node
        alive = weakref.ref(node)
        del node
        assert alive() is not None  # a cycle: reference counting alone never frees it
        sweep()
        assert alive() is None  # the sweep did
    assert gc.isenabled()
    gc.disable()
    try:
        with rowcheck.gc_paused():
            pass
        assert not gc.isenabled()  # it was off: it stays off
    finally:
        gc.enable()


def test_a_number_phonenumbers_refuses_leaves_no_cycle_behind():
    """phonenumbers.parse keeps an exception it handled in a local; campaigns.phone breaks the
    cycle, so a pass's chunk is freed by reference counting, not held until a collection."""
    import gc

    from campaigns.phone import PhoneError, clear_cache, normalize

    clear_cache()  # the slow path's answers are cached: ask phonenumbers for real
    gc.collect()
    gc.disable()
    try:
        for raw in ("+99912345678", "+999 1234", "not a number", "12345"):
            assert isinstance(normalize(raw, "US"), PhoneError)
        assert gc.collect() == 0
    finally:
        gc.enable()


NUMBERS = [
    "+12125550134",
    "(212) 555-0135",
    "212.555.0136",
    "2125550137",
    "+44 20 7946 0958",
    "+1 212 555 0138",
    "12345",
    "not a number",
    "+99912345678",
    "",
    "-",
    "+1 212 555 0139 ext 4",
    "  +12125550140  ",
    "+1212555014" + "0" * 60,
    "".join(chr(0xFF10 + int(d)) for d in "2125550141"),  # full-width digits
]


def _record(rng: random.Random, width: int) -> list[str]:
    shape = rng.random()
    if shape < 0.03:
        return []  # a blank line
    if shape < 0.06:
        return [""]  # a line with one empty cell
    if shape < 0.09:
        return [_cell(rng)]  # too narrow for the number column
    number = rng.choice(NUMBERS) if rng.random() < 0.4 else f"+1212555{rng.randint(0, 9999):04d}"
    name = "x" * 201 if rng.random() < 0.02 else _cell(rng)
    agents = (
        ",".join(f"agent{n}" for n in range(300)) if rng.random() < 0.02 else rng.choice(["", "a1", "a1; b2"])
    )
    cells = [name, number, agents, *(_cell(rng) for _ in range(width - 3))]
    return cells[: rng.randint(2, width)] if rng.random() < 0.1 else cells  # some ragged rows


@pytest.mark.parametrize("mapping", ["full", "no name or agents", "no fields"])
def test_the_column_pass_answers_as_the_row_loop_does(mapping):
    """check_chunk (a column at a time) against check_rows (every rule, a row at a time): same
    rows, keys, lines, raws and issues, on chunks with every kind of row a sheet has."""
    rng = random.Random(mapping)
    plan = rowcheck.Plan(
        number_col=1,
        name_col=None if mapping == "no name or agents" else 0,
        agents_col=None if mapping == "no name or agents" else 2,
        fields=() if mapping == "no fields" else ((3, "City"), (4, "Plan"), (3, "Again")),
        region="US",
        headers=("Name", "Phone", "Agents", "City", "Plan"),
        agent_aliases=(("a1", "alice"),),
    )
    dnc = frozenset({12125550134, 12125550007})
    for size in (0, 1, 3, 400):
        for _ in range(8):
            chunk = [(n + 2, _record(rng, 5)) for n in range(size)]
            for copy in (True, False, None):
                got = rowcheck.check_chunk(chunk, plan, dnc, copy=copy, id_base=1000)
                want = rowcheck.check_rows(chunk, plan, dnc, copy=copy, id_base=1000)
                assert (got.rows, got.keys, got.lines, got.raws) == (
                    want.rows,
                    want.keys,
                    want.lines,
                    want.raws,
                )
                assert got.issues == want.issues


def test_a_chunk_crosses_from_the_tail_process_intact():
    """The tail's bookkeeping (keys, lines, raw numbers, issues) packed and unpacked, as the head
    reads it: every value the same, the raw numbers as typed, however odd."""
    import pickle

    raws = ["+12125550134", "(212) 555-0135", "", "212\n555 0136", "☎ 212", "x" * 64]
    result = rowcheck.ChunkResult(
        rows="ignored",
        keys=[12125550134 + n for n in range(len(raws))],
        lines=[2, 3, 5, 8, 9, 2**40],
        issues=[(4, "Phone", "12345", "too short", rowcheck.INVALID)],
        raws=raws,
    )
    back = rowcheck.unpack(pickle.loads(pickle.dumps(rowcheck.pack(result), protocol=5)))
    assert list(back.keys) == result.keys and list(back.lines) == result.lines
    assert back.issues == result.issues
    assert len(back.raws) == len(raws) and [back.raws[i] for i in range(len(raws))] == raws
    assert back.raws[-1] == raws[-1] and back.raws[1:3] == raws[1:3]
