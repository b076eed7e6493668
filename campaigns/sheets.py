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

Workbooks (.xlsx, .xls, .ods) are turned into a CSV by :mod:`campaigns.workbooks` before any of
this reads them: :func:`check_head` lets a zip or OLE2 file through when asked to.

Hostile or mistaken files are refused in words (:class:`SheetError`): :func:`check_head` before a
file is stored (empty, over the size limit, binary by its first bytes, whatever its name says),
:func:`first_row` once it is (no rows, a header and nothing else, a cell over
:data:`CELL_MAX_BYTES`, more columns than the limit).
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

CELL_MAX_BYTES = 1024 * 1024
csv.field_size_limit(CELL_MAX_BYTES)  # a bound on one cell's memory; a longer cell is refused in words
HEAD_BYTES = 8 * 1024  # what check_head looks at
SCAN_RECORDS = 200  # first_row reads this many records for the widest (as detect_delimiter does)


class SheetError(ValueError):
    """A file that is not a sheet we can read, in words a supervisor can act on."""


# -- refusals ------------------------------------------------------------------------------------

_WORKBOOK_ADVICE = "save it as CSV (in Excel: File, Save As, CSV UTF-8) and upload the .csv file"
_OTHER_ADVICE = "upload the lead list exported as CSV or text"
# First bytes of files people upload by mistake: (magic, what it is, what to do instead).
_ZIP, _OLE2 = b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAGIC = (
    (_ZIP, "a zip/Excel workbook file (.xlsx, .ods or .zip)", _WORKBOOK_ADVICE),
    (b"PK\x05\x06", "an empty zip file", _OTHER_ADVICE),
    (_OLE2, "an old Excel workbook (.xls)", _WORKBOOK_ADVICE),
    (b"%PDF-", "a PDF document", _OTHER_ADVICE),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", _OTHER_ADVICE),
    (b"\xff\xd8\xff", "a JPEG image", _OTHER_ADVICE),
    (b"GIF8", "a GIF image", _OTHER_ADVICE),
    (b"\x1f\x8b", "a gzip archive", _OTHER_ADVICE),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", _OTHER_ADVICE),
    (b"Rar!\x1a\x07", "a RAR archive", _OTHER_ADVICE),
    (b"\x7fELF", "a program (ELF)", _OTHER_ADVICE),
)


# Bytes no text sheet holds more than a few of: C0 controls but tab, LF, CR, form feed and escape.
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\f\x1b")
BINARY_SHARE = 0.05


def human_size(size: int) -> str:
    """``250 MB``, ``2.5 MB``, ``14.6 KB``, ``900 bytes`` (binary units, as file managers show)."""
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + " " + unit
    return f"{size} bytes"


def size_refusal(size: int, limit: int) -> str:
    return f"This file is {human_size(size)}; the limit is {human_size(limit)}."


def _utf16_order(head: bytes) -> str | None:
    """``utf-16-le``/``-be`` for UTF-16 text without a BOM: every other byte of the sample NUL."""
    if len(head) < 4:
        return None
    even_nuls = head[0::2].count(0)
    odd_nuls = head[1::2].count(0)
    half = len(head) // 2
    if odd_nuls > half * 0.4 and even_nuls < half * 0.05:
        return "utf-16-le"
    if even_nuls > half * 0.4 and odd_nuls < half * 0.05:
        return "utf-16-be"
    return None


def binary_kind(head: bytes) -> tuple[str, str] | None:
    """What a file is and what to do instead, when its first bytes say it is not text; else None.

    By content, never by name: a workbook renamed ``leads.csv`` is still a workbook. Past the
    known signatures, a head where control bytes (NUL among them) are more than
    :data:`BINARY_SHARE` of it is binary, unless it is UTF-16 text (Excel's "Unicode Text", with
    a BOM; or without one, every other byte NUL)."""
    for magic, kind, advice in _MAGIC:
        if head.startswith(magic):
            return kind, advice
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _utf16_order(head):
        return None
    # A stray NUL in a cell happens in real CRM exports (the import drops it: test_stage_rows);
    # a binary file is full of NULs and other control bytes.
    if head and len(head) - len(head.translate(None, _CONTROL_BYTES)) > len(head) * BINARY_SHARE:
        if head.startswith(b"MZ"):
            return "a Windows program (.exe or .dll)", _OTHER_ADVICE
        return "a binary file", _OTHER_ADVICE
    return None


def check_head(head: bytes, *, size: int, max_bytes: int, workbooks: bool = False) -> bool:
    """Refuse, before it is stored, a file that is empty, too big or not text (:class:`SheetError`).

    With ``workbooks``, a zip or OLE2 file passes (True: the caller asks
    ``campaigns.workbooks.identify`` what it holds); else it is refused as any binary file."""
    if size == 0:
        raise SheetError("This file is empty.")
    if size > max_bytes:
        raise SheetError(size_refusal(size, max_bytes))
    if workbooks and head.startswith((_ZIP, _OLE2)):
        return True
    if found := binary_kind(head):
        kind, advice = found
        raise SheetError(f"This is {kind}, not a CSV sheet: {advice}.")
    return False


def first_row(path: Path, encoding: str, delimiter: str, *, max_columns: int) -> list[str]:
    """The first record of a stored sheet, once its first records show it can be imported:
    refuses a file with no record, a header with no lead under it, a cell over
    :data:`CELL_MAX_BYTES` and more than ``max_columns`` columns."""
    records: list[list[str]] = []
    for _line, row in RowStream(path, encoding, delimiter):
        if any(cell.strip() for cell in row):
            records.append(row)
        if len(records) >= SCAN_RECORDS:
            break
    if not records:
        raise SheetError("This file is empty: it holds no rows, only blank lines.")
    if len(records) == 1 and looks_like_header(records[0]):
        raise SheetError("This sheet has a header row but no leads: there is nothing under it to import.")
    width = max(len(row) for row in records)
    if width > max_columns:
        raise SheetError(width_refusal(width, max_columns))
    return records[0]


def width_refusal(width: int, max_columns: int) -> str:
    return (
        f"This sheet has {width:,} columns; the limit is {max_columns:,}. "
        "Remove the columns you do not need (keep the phone number) and upload it again."
    )


def csv_error_message(exc: csv.Error, *, line: int | None = None) -> str:
    """A csv module error in words (the one a sheet can cause: a cell over the size limit)."""
    where = f"Line {line:,}" if line else "A row"
    if "field larger than field limit" in str(exc):
        return (
            f"{where} has a cell over {human_size(CELL_MAX_BYTES)}, the most one cell may hold: "
            "check that the file is the lead list (an unclosed quote makes the rest of a file one cell)."
        )
    return f"{where} cannot be read as CSV ({exc})."


def detect_encoding(path: Path) -> str:
    """The Python codec name for a sheet (see the module docstring for the order of guesses)."""
    with open(path, "rb") as handle:
        head = handle.read(SAMPLE_BYTES)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"  # the codec reads the BOM and picks the byte order
        if order := _utf16_order(head):
            return order
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
    """Rows of a sheet with the physical line each record starts on (header = line 1). A record
    the csv module cannot read (a cell over :data:`CELL_MAX_BYTES`) raises :class:`SheetError`
    naming its line."""

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
        except csv.Error as exc:  # around the loop, not in it: nothing added per row
            raise SheetError(csv_error_message(exc, line=start)) from exc
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
