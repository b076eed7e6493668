"""Reading lead sheets: encoding and delimiter detection, streaming rows, auto-mapping columns.

Sheets come from CRMs and spreadsheets, so this module reads what Excel and friends write:

* UTF-8 with or without a byte-order mark; UTF-16 LE/BE with a BOM (Excel's "Unicode Text");
  UTF-16 without a BOM when every other byte is NUL; otherwise Windows-1252, or Latin-1 when the
  file holds one of the five bytes cp1252 leaves undefined.
* Comma, semicolon (European Excel), tab (Unicode Text) and pipe delimiters.
* Quoted fields with embedded newlines and CRLF line ends (``newline=""`` lets the csv module see
  them).

Nothing here reads a whole file into memory: detection looks at a bounded sample (plus one
streaming UTF-8 check over the file) and :func:`iter_rows` yields rows one at a time.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

SAMPLE_BYTES = 64 * 1024
CHUNK_BYTES = 1024 * 1024
DELIMITERS = (",", ";", "\t", "|")
# Mapping targets for a column.
NUMBER, NAME, AGENTS, IGNORE = "number", "name", "agents", ""
FIELD_PREFIX = "field:"

csv.field_size_limit(1024 * 1024)  # one odd cell must not abort a million-row import


def detect_encoding(path: Path) -> str:
    """The Python codec name for a sheet (see the module docstring for the order of guesses)."""
    with open(path, "rb") as handle:
        head = handle.read(SAMPLE_BYTES)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"  # the codec reads the BOM and picks the byte order
        if len(head) >= 4:
            even_nuls = head[0::2].count(0)
            odd_nuls = head[1::2].count(0)
            half = len(head) // 2
            if odd_nuls > half * 0.4 and even_nuls < half * 0.05:
                return "utf-16-le"
            if even_nuls > half * 0.4 and odd_nuls < half * 0.05:
                return "utf-16-be"
        # A streaming strict UTF-8 check over the whole file: a cp1252 byte on line 900,000 must
        # not turn into an import failure after the dry run said yes. Runs at memory speed.
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        undefined_cp1252 = False
        valid_utf8 = True
        while chunk := handle.read(CHUNK_BYTES):
            if valid_utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    valid_utf8 = False
            if not valid_utf8 and re.search(rb"[\x81\x8d\x8f\x90\x9d]", chunk):
                undefined_cp1252 = True
                break
        if valid_utf8:
            try:
                decoder.decode(b"", final=True)
                return "utf-8"
            except UnicodeDecodeError:
                pass
        return "latin-1" if undefined_cp1252 else "cp1252"


def open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    """A text stream for csv: ``newline=""`` keeps quoted newlines and CRLF for the csv module.
    ``errors="replace"`` only matters for a truncated final character; detection already vouched
    for the encoding."""
    return open(path, encoding=encoding, newline="", errors="replace")


def detect_delimiter(sample: str) -> str:
    """The candidate that splits the sample's records into the most consistent column count.

    Scores each delimiter by how many records share the most common width (width > 1), so a comma
    inside a quoted name does not beat the semicolons that separate every column.
    """
    best, best_score = ",", (0, 0)
    lines = sample.splitlines(keepends=True)
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample may have cut the last record in half
    text = "".join(lines[:200])
    for delimiter in DELIMITERS:
        try:
            widths = [len(row) for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row]
        except csv.Error:
            continue
        if not widths:
            continue
        width, count = Counter(widths).most_common(1)[0]
        score = (count if width > 1 else 0, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def read_sample(path: Path, encoding: str, chars: int = SAMPLE_BYTES) -> str:
    with open_text(path, encoding) as handle:
        return handle.read(chars)


class CountingReader(io.RawIOBase):
    """Wraps a binary file and counts bytes read, for progress through a file of unknown rows."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = self.raw.readinto(buffer)
        self.count += n or 0
        return n or 0

    def close(self) -> None:
        self.raw.close()
        super().close()


@dataclass
class RowStream:
    """Rows of a sheet with the physical line each record starts on (header = line 1)."""

    path: Path
    encoding: str
    delimiter: str
    counter: CountingReader | None = field(default=None, init=False)

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        self.counter = CountingReader(open(self.path, "rb"))  # noqa: SIM115
        buffered = io.BufferedReader(self.counter, buffer_size=CHUNK_BYTES)
        text = io.TextIOWrapper(buffered, encoding=self.encoding, newline="", errors="replace")
        try:
            reader = csv.reader(text, delimiter=self.delimiter)
            start = 1
            for row in reader:
                yield start, row
                start = reader.line_num + 1
        finally:
            text.close()

    @property
    def bytes_read(self) -> int:
        return self.counter.count if self.counter else 0


def preview(path: Path, encoding: str, delimiter: str, rows: int = 6) -> list[list[str]]:
    """The first records of a sheet, for the mapping step."""
    out: list[list[str]] = []
    for _line, row in RowStream(path, encoding, delimiter):
        out.append(row)
        if len(out) >= rows:
            break
    return out


# -- auto-mapping ------------------------------------------------------------------------------------

_NUMBER_HEADERS = {
    "number", "phone", "phonenumber", "phoneno", "mobile", "mobilenumber", "cell", "cellphone",
    "telephone", "tel", "msisdn", "customernumber", "contactnumber", "customerphone", "e164",
}  # fmt: skip
_NAME_HEADERS = {"name", "fullname", "customername", "contactname", "customer", "contact", "leadname"}
_AGENT_HEADERS = {
    "agent",
    "agents",
    "agentsassigned",
    "assignedagent",
    "assignedagents",
    "agentusername",
    "owner",
}


def _key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def auto_map(header: list[str], custom_field_names: list[str]) -> list[str]:
    """A target per column from its header: number, name, agents, ``field:<name>`` or ignore.

    Custom fields map by name to the campaign's custom field names (or ``customField{N}`` to the
    N-th); when the campaign defines none, every other column becomes a custom field named by its
    header, so nothing in the sheet is dropped without the supervisor choosing to.
    """
    targets: list[str] = []
    names = {_key(n): n for n in custom_field_names}
    used: set[str] = set()
    for raw in header:
        key = _key(raw)
        target = IGNORE
        if key in _NUMBER_HEADERS and NUMBER not in used:
            target = NUMBER
        elif key in _NAME_HEADERS and NAME not in used:
            target = NAME
        elif key in _AGENT_HEADERS and AGENTS not in used:
            target = AGENTS
        elif key in names:
            target = FIELD_PREFIX + names[key]
        elif (m := re.fullmatch(r"customfield(\d+)", key)) and 0 < int(m.group(1)) <= len(custom_field_names):
            target = FIELD_PREFIX + custom_field_names[int(m.group(1)) - 1]
        elif not custom_field_names and raw.strip():
            target = FIELD_PREFIX + raw.strip()
        if target in used and target != IGNORE:
            target = IGNORE
        used.add(target)
        targets.append(target)
    return targets


def looks_like_header(row: list[str]) -> bool:
    """A first row with no cell that is mostly digits is a header."""
    return not any(sum(c.isdigit() for c in cell) >= 6 for cell in row)
