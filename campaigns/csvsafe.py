"""The one CSV writer for files a person opens in a spreadsheet (the export, issue reports).

Spreadsheets run a cell that starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return as a
formula (OWASP "CSV injection"). Such cells get a leading apostrophe, which Excel, LibreOffice and
Google Sheets show as text. Every cell goes through :func:`neutralize`, headers included: a
campaign's custom field names and a sheet's column headers are customer data too. E.164 numbers
(``+14155550100``) start with ``+`` but are not formulas anyone could abuse, and supervisors
re-import them, so they stay exactly as they are.

Files written for a platform (``calls/providers/ryng.py``'s lead push) are a machine format read
by that platform, not by a person, and do not come through here.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_E164 = re.compile(r"\+[1-9]\d{1,14}")


def neutralize(value: object) -> str:
    """A cell as text, with a leading apostrophe when a spreadsheet would run it as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _E164.fullmatch(text):
        return "'" + text
    return text


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


class SafeWriter:
    """``csv.writer`` whose every cell is neutralized; ``writerow`` returns what the file's
    ``write`` returned (a streamed response hands the line straight back)."""

    def __init__(self, file: _Writable, **fmt: Any):
        self._writer = csv.writer(file, **fmt)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow([neutralize(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(file: _Writable, **fmt: Any) -> SafeWriter:
    return SafeWriter(file, **fmt)


class Echo:
    """A "file" whose ``write`` hands the written line straight back, for streaming a CSV."""

    def write(self, value: str) -> str:
        return value


def lines(rows: Iterable[Iterable[object]], **fmt: Any) -> Iterator[str]:
    """Each row as one neutralized CSV line (for ``StreamingHttpResponse``)."""
    safe = writer(Echo(), **fmt)
    for row in rows:
        yield safe.writerow(row)
