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
    plain, careful = rowcheck.custom_fields_json(names)
    for _ in range(5000):
        values = tuple(_cell(rng) for _ in names)
        reference = json.loads(_reference_json(names, values))
        assert json.loads(careful(values)) == reference, values
        if not rowcheck._JSON_ESCAPED.search("".join(values)):  # what check_chunk checks first
            assert json.loads(plain(values)) == reference, values


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
