"""Excel and OpenDocument workbooks as sheets: what a file is, and its rows as a UTF-8 CSV.

A workbook is turned into the CSV the rest of the import reads (``upload.file``, UTF-8, comma),
so every check, limit and report of a CSV sheet holds for it too. Which workbooks:

* ``.xlsx`` (and ``.xlsm``): a zip holding ``xl/workbook.xml``;
* ``.ods``: a zip whose ``mimetype`` member says ``application/vnd.oasis.opendocument.spreadsheet``;
* ``.xls`` (Excel 97-2003): an OLE2 compound file holding a ``Workbook`` (or BIFF5 ``Book``) stream.

A zip that is no workbook is an archive of one sheet (a CSV, a text file or a workbook):
:func:`unzip` takes it out, and it is read as if uploaded itself.

By content, never by name. The rows are those of the sheet the supervisor chose (by name), else
of the first visible worksheet that holds a value (a blank "Sheet1" before the leads is passed
over), as a person sees the cells: whole numbers
without ``.0`` nor an exponent (a phone number Excel stores as 2125550100.0 is ``2125550100``),
dates ``YYYY-MM-DD`` (``YYYY-MM-DD HH:MM:SS`` with a time), booleans ``TRUE``/``FALSE``, empty
cells empty, trailing empty cells of a row dropped.

The reading is python-calamine's (Rust; about 20 times openpyxl's read-only mode, BENCHMARKS.md).
It runs in a child interpreter (``python -m campaigns.workbooks``), for two reasons: calamine
holds a whole sheet in memory as a dense grid, so a hostile workbook (one value in A1, one in
XFD1048576) asks for gigabytes, and Rust aborts the process when an allocation fails; the child
runs under an address-space limit and its death is a refusal in words, not a dead web or
Celery worker. And the parent can stop it (a cancelled dry run). Django-free, like
``campaigns.rowcheck``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import html
import json
import re
import resource
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

from campaigns.sheets import (
    CELL_MAX_BYTES,
    HEAD_BYTES,
    SheetError,
    check_head,
    human_size,
    size_refusal,
    width_refusal,
)

XLSX, ODS, XLS = "xlsx", "ods", "xls"
ZIPPED = "zip"  # a zip that is no workbook: :func:`unzip` takes out the one sheet it must hold
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
# Declared unpacked size of a zip workbook's members: over this it is refused before it is read
# (a zip bomb; a million-row, twenty-column sheet is about 1 GB of XML).
UNPACKED_MAX_BYTES = 2 * 1024**3
# The reading child's address space (calamine's grid, the interpreter, the zip's buffers).
MEMORY_MAX_BYTES = 4 * 1024**3
PROGRESS_ROWS = 20_000  # the child reports its progress every this many rows

_SAVE_AS = "open it in Excel or LibreOffice and save it as .xlsx or CSV"
DAMAGED = "This workbook is damaged and cannot be read ({detail}): " + _SAVE_AS + ", then upload it again."
ENCRYPTED = (
    "This workbook is protected with a password, so it cannot be read: open it, remove the "
    "password (in Excel: File, Info, Protect Workbook, Encrypt with Password, and clear it) and "
    "upload it again."
)
NO_DATA = "This workbook has no sheet with data in it: {sheets}."
NOT_A_WORKBOOK = (
    "This is a Microsoft Office file that is not a workbook (a Word or PowerPoint file?): "
    "upload the lead list exported as CSV or as an Excel workbook."
)


def identify(file: BinaryIO) -> str:
    """The workbook format (``xlsx``, ``ods``, ``xls``) of a zip or OLE2 file, :data:`ZIPPED` for
    a zip that is no workbook (an archive of a sheet, for :func:`unzip`), or :class:`SheetError`
    in words: a damaged zip, a workbook behind a password, an Office file that is no workbook. Reads the zip's directory, or scans an OLE2
    file for its stream names; leaves the file at offset 0."""
    file.seek(0)
    head = file.read(8)
    try:
        if head.startswith(b"PK\x03\x04"):
            return _identify_zip(file)
        if head == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
            return _identify_ole2(file)
        raise SheetError("This is not a workbook.")
    finally:
        file.seek(0)


def _identify_zip(file: BinaryIO) -> str:
    file.seek(0)
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise SheetError(DAMAGED.format(detail=f"its zip structure is broken: {exc}")) from exc
    with archive:
        names = set(archive.namelist())
        if sum(info.file_size for info in archive.infolist()) > UNPACKED_MAX_BYTES:
            raise SheetError(
                f"This workbook unpacks to more than {human_size(UNPACKED_MAX_BYTES)}, the most a "
                "sheet may: save the leads as CSV and upload that."
            )
        if "xl/workbook.xml" in names:
            return XLSX
        if "xl/workbook.bin" in names:
            raise SheetError(f"This is an Excel binary workbook (.xlsb), which is not read here: {_SAVE_AS}.")
        if "mimetype" in names:
            mimetype = archive.read("mimetype").strip()
            if mimetype == ODS_MIMETYPE:
                manifest = archive.read("META-INF/manifest.xml") if "META-INF/manifest.xml" in names else b""
                if b"encryption-data" in manifest:
                    raise SheetError(ENCRYPTED)
                return ODS
            kind = mimetype.decode("ascii", "replace").rsplit(".", 1)[-1][:40]
            raise SheetError(
                f"This is an OpenDocument file ({kind}), not a spreadsheet: upload the lead list."
            )
        if "[Content_Types].xml" in names:  # an Office Open XML package: a .docx, a .pptx
            raise SheetError(NOT_A_WORKBOOK)
    return ZIPPED


def _utf16(name: str) -> bytes:
    return name.encode("utf-16-le")


_ENCRYPTED_STREAM = _utf16("EncryptedPackage")  # an .xlsx encrypted with a password is OLE2
_WORKBOOK_STREAM = re.compile(re.escape(_utf16("Workbook")) + b"|" + re.escape(_utf16("Book")) + b"\x00\x00")


def _identify_ole2(file: BinaryIO) -> str:
    """An OLE2 file's directory names its streams in UTF-16: ``Workbook`` (``Book`` for Excel 5)
    is an .xls; ``EncryptedPackage`` is an .xlsx encrypted with a password (MS-OFFCRYPTO 2.3.4.4);
    anything else (``WordDocument``, ``PowerPoint Document``) is some other Office file."""
    file.seek(0)
    tail = b""
    workbook = False
    while chunk := file.read(1024 * 1024):
        window = tail + chunk
        if _ENCRYPTED_STREAM in window:
            raise SheetError(ENCRYPTED)
        workbook = workbook or bool(_WORKBOOK_STREAM.search(window))
        tail = window[-64:]
    if workbook:
        return XLS
    raise SheetError(NOT_A_WORKBOOK)


# -- a zip of one sheet ----------------------------------------------------------------------------

# What zip tools put beside the file zipped (macOS Finder's resource forks, folder views): not a
# second file of the supervisor's.
_ZIP_LITTER = re.compile(r"(?:^|/)(?:__MACOSX/|\.DS_Store$|Thumbs\.db$|desktop\.ini$)", re.IGNORECASE)
_UNZIP_CHUNK = 1024 * 1024
_S_IFLNK, _S_IFMT = 0o120000, 0o170000
_UNZIP_ADVICE = "unzip it and upload the sheet itself"


def unzip(file: BinaryIO, dest: BinaryIO, *, max_bytes: int) -> tuple[str, str]:
    """Unpack the one sheet of a zip (:data:`ZIPPED`) into ``dest``: the sheet's file name (its
    last part: the zip's folders are never followed, nothing is written by the zip's names) and
    its workbook format (``""`` for a CSV or text sheet). Refused in words: a zip of no file or
    of several (named), behind a password, damaged, a member that unpacks to more than
    ``max_bytes`` (a zip bomb: its declared size, then the bytes as they come, whatever it
    declares), or that is no sheet (a PDF, another zip: named as a file upload's is)."""
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            members = [i for i in archive.infolist() if not i.is_dir() and not _ZIP_LITTER.search(i.filename)]
            # The last part of each name, cut for the messages (a zip's names run to 64 KB).
            names = [(re.split(r"[\\/]", i.filename)[-1] or i.filename)[:120] for i in members]
            if not members:
                raise SheetError(f"This zip file holds no file: {_UNZIP_ADVICE}.")
            if len(members) > 1:
                shown = ", ".join(f"“{n}”" for n in names[:5]) + (
                    f" and {len(names) - 5} more" if len(names) > 5 else ""
                )
                raise SheetError(
                    f"This zip file holds {len(members):,} files ({shown}): upload a zip of one sheet, "
                    "or the sheet itself."
                )
            info, name = members[0], names[0]
            if info.flag_bits & 0x1:
                raise SheetError(f"This zip file is protected with a password: {_UNZIP_ADVICE}.")
            if (info.external_attr >> 16) & _S_IFMT == _S_IFLNK:
                raise SheetError(f"This zip file holds “{name}”, a link to another file, not a sheet.")
            if info.file_size > max_bytes:
                raise SheetError(f"This zip file holds “{name}”: {size_refusal(info.file_size, max_bytes)}")
            dest.seek(0)
            dest.truncate()
            written = 0
            with archive.open(info) as member:
                while chunk := member.read(_UNZIP_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:  # it declared less: a crafted zip
                        raise SheetError(
                            f"This zip file holds “{name}”, which unpacks to more than "
                            f"{human_size(max_bytes)}, the limit."
                        )
                    dest.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as exc:
        raise SheetError(
            f"This zip file is damaged or cannot be unpacked here ({exc}): {_UNZIP_ADVICE}."
        ) from exc
    dest.flush()
    dest.seek(0)
    try:
        is_workbook = check_head(dest.read(HEAD_BYTES), size=written, max_bytes=max_bytes, workbooks=True)
        workbook_format = identify(dest) if is_workbook else ""
        if workbook_format == ZIPPED:
            raise SheetError(f"This is a zip file inside the zip: {_UNZIP_ADVICE}.")
    except SheetError as exc:
        raise SheetError(f"This zip file holds “{name}”: {exc}") from exc
    dest.seek(0)
    return name, workbook_format


_TAG = rb"<(?:\w+:)?%s\b[^>]*>"
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension ref="[A-Z]+(\d+)(?::[A-Z]+(\d+))?"')
_NO_ROWS = re.compile(rb"<(?:\w+:)?sheetData\s*/>|<(?:\w+:)?sheetData>\s*</(?:\w+:)?sheetData>")
_INDEX_BYTES = 1024 * 1024  # of workbook.xml and its relationships: a few KB in a real workbook


def _attribute(tag: bytes, name: bytes) -> str:
    found = re.search(rb"\s" + name + rb'="([^"]*)"', tag)
    return html.unescape(found.group(1).decode("utf-8", "replace")) if found else ""


def xlsx_row_estimates(path: Path) -> dict[str, int]:
    """Rows per sheet of an ``.xlsx`` by the ``<dimension>`` each sheet declares at its head
    (the used range Excel and openpyxl write), without reading a sheet's cells: a cheap estimate
    for the sheet choice of a workbook too big to count. Read with bounded regular expressions,
    not an XML parser (a hostile workbook's entities). Sheets without one are left out; 0 for a
    sheet whose head shows no row. Never raises: an estimate is not worth a refusal."""
    estimates: dict[str, int] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            with archive.open("xl/_rels/workbook.xml.rels") as handle:
                rels = handle.read(_INDEX_BYTES)
            targets = {
                _attribute(tag, rb"Id"): _attribute(tag, rb"Target")
                for tag in re.findall(_TAG % rb"Relationship", rels)
            }
            with archive.open("xl/workbook.xml") as handle:
                book = handle.read(_INDEX_BYTES)
            for tag in re.findall(_TAG % rb"sheet", book):
                target = targets.get(_attribute(tag, rb"r:id") or _attribute(tag, rb"\w+:id"), "")
                if not target:
                    continue
                member = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
                with archive.open(member) as handle:
                    head = handle.read(4096)
                name = _attribute(tag, rb"name")
                if _NO_ROWS.search(head):
                    estimates[name] = 0
                elif found := _DIMENSION.search(head):
                    first, last = found.group(1), found.group(2) or found.group(1)
                    estimates[name] = int(last) - int(first) + 1
    except (KeyError, OSError, ValueError, zipfile.BadZipFile):
        pass
    return estimates


# -- cells -----------------------------------------------------------------------------------------


def cell_text(value: object) -> str:
    """A cell as the person sees it in the spreadsheet (see the module docstring)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))  # 2125550100.0 -> 2125550100; 1e20 -> 100000000000000000000
        text = repr(value)
        if "e" in text or "E" in text:
            return format(Decimal(text), "f")  # 1.5e-07 -> 0.00000015
        return text
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):  # a duration, as Excel's [h]:mm:ss shows it
        seconds = int(value.total_seconds())
        sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
        return f"{sign}{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return "" if value is None else str(value)


# -- the child: calamine reads, a CSV is written ---------------------------------------------------


def _convert_here(
    src: Path,
    dest: Path,
    *,
    max_columns: int,
    rows: int | None,
    sheet_name: str | None = None,
    count: bool = False,
) -> dict:
    """Write a sheet's rows (or its first ``rows``) to ``dest`` as UTF-8 CSV: the one named
    ``sheet_name``, else the first visible worksheet with a value. Returns the sheet's name, the
    rows written, its height, and the workbook's visible worksheets (``sheets``: name and rows,
    ``None`` where not read; with ``count`` every one is read for its rows). Runs in the child."""
    import python_calamine  # the child's import: the parent never loads the reader

    def load(index: int):
        try:
            return workbook.get_sheet_by_index(index)
        except python_calamine.PasswordError as exc:
            raise SheetError(ENCRYPTED) from exc
        except python_calamine.CalamineError as exc:
            raise SheetError(DAMAGED.format(detail=str(exc)[:200])) from exc

    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(src))
    except python_calamine.PasswordError as exc:
        raise SheetError(ENCRYPTED) from exc
    except python_calamine.CalamineError as exc:
        raise SheetError(DAMAGED.format(detail=str(exc)[:200])) from exc
    with workbook:
        sheet = None
        listed: list[dict] = []
        for index, meta in enumerate(workbook.sheets_metadata):
            if meta.typ != python_calamine.SheetTypeEnum.WorkSheet:
                continue
            if meta.visible != python_calamine.SheetVisibleEnum.Visible:
                continue
            entry: dict = {"name": meta.name, "rows": None}
            listed.append(entry)
            wanted = meta.name == sheet_name if sheet_name is not None else sheet is None
            if not (wanted or count):
                continue
            candidate = load(index)
            has_data = bool(candidate.height) and candidate.start is not None
            entry["rows"] = candidate.height if has_data else 0
            if wanted and sheet is None:
                if sheet_name is not None and not has_data:
                    raise SheetError(
                        f"The sheet “{meta.name}” is empty: choose the sheet that holds the leads."
                    )
                if has_data:
                    sheet = candidate
        if sheet is None and sheet_name is not None:
            raise SheetError(f"This workbook has no sheet named “{sheet_name}”.")
        if sheet is None:
            names = ", ".join(f"“{n}”" for n in workbook.sheet_names[:10]) or "it holds no sheet"
            raise SheetError(
                NO_DATA.format(sheets=f"sheets {names} are empty" if workbook.sheet_names else names)
            )
        if sheet.width > max_columns:
            raise SheetError(width_refusal(sheet.width, max_columns))
        height = sheet.height
        written = 0
        with open(dest, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\r\n")
            for line, row in enumerate(sheet.iter_rows(), start=1):
                cells = [cell_text(v) for v in row]
                while cells and not cells[-1]:
                    cells.pop()
                for cell in cells:
                    if len(cell) > CELL_MAX_BYTES // 4 and len(cell.encode()) > CELL_MAX_BYTES:
                        raise SheetError(
                            f"Line {line:,} has a cell over {human_size(CELL_MAX_BYTES)}, the most one "
                            "cell may hold: check that the file is the lead list."
                        )
                writer.writerow(cells)
                written = line
                if rows is not None and written >= rows:
                    break
                if written % PROGRESS_ROWS == 0:
                    print(f"progress {written} {height}", flush=True)
        return {"sheet": sheet.name, "rows": written, "height": height, "sheets": listed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m campaigns.workbooks")
    parser.add_argument("src", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--max-columns", type=int, required=True)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--sheet", default=None)
    parser.add_argument("--count", action="store_true")
    parser.add_argument("--memory", type=int, default=MEMORY_MAX_BYTES)
    args = parser.parse_args(argv)
    if args.memory:
        resource.setrlimit(resource.RLIMIT_AS, (args.memory, args.memory))
    try:
        result = _convert_here(
            args.src,
            args.dest,
            max_columns=args.max_columns,
            rows=args.rows,
            sheet_name=args.sheet,
            count=args.count,
        )
    except SheetError as exc:
        print(json.dumps({"refused": str(exc)}), flush=True)
        return 0
    except MemoryError:
        print(json.dumps({"refused": _too_big(args.memory)}), flush=True)
        return 0
    print(json.dumps(result), flush=True)
    return 0


# -- the parent ------------------------------------------------------------------------------------


def _too_big(memory: int) -> str:
    return (
        f"This workbook needs more than {human_size(memory)} of memory to read (its sheet spans "
        "more rows and columns than a lead list does; a stray value far to the right or at the "
        "bottom?): save the leads as CSV and upload that."
    )


@dataclass(frozen=True)
class Converted:
    sheet: str
    rows: int  # rows written to the CSV
    height: int  # rows the sheet holds
    # The workbook's visible worksheets in order: {"name", "rows"} (rows None where not read).
    sheets: tuple[dict, ...] = ()


def convert(
    src: Path,
    dest: Path,
    *,
    max_columns: int,
    rows: int | None = None,
    sheet: str | None = None,
    count: bool = False,
    memory: int = MEMORY_MAX_BYTES,
    progress: Callable[[float, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Converted | None:
    """The workbook's ``sheet`` (by name; else the first visible worksheet with data) as a
    UTF-8 CSV at ``dest`` (its first ``rows`` only, if given), read by a child interpreter; with
    ``count``, every visible worksheet is read for its row count (the supervisor's choice); :class:`SheetError` in words when it cannot be; ``None`` when
    ``cancelled()`` said so (the child is stopped, ``dest`` removed)."""
    command = [
        sys.executable,
        "-m",
        "campaigns.workbooks",
        str(src.resolve()),
        str(dest.resolve()),
        f"--max-columns={max_columns}",
    ]
    command += [f"--memory={memory}"] + ([f"--rows={rows}"] if rows is not None else [])
    command += ([f"--sheet={sheet}"] if sheet is not None else []) + (["--count"] if count else [])
    child = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    result: dict | None = None
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("progress "):
                done, total = (int(n) for n in line.split()[1:3])
                if progress:
                    progress(done / max(total, 1), done)
                if cancelled and cancelled():
                    child.kill()
                    child.wait()
                    dest.unlink(missing_ok=True)
                    return None
            elif line.startswith("{"):
                result = json.loads(line)
        stderr = child.stderr.read() if child.stderr else ""
        code = child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if result is None or "refused" in result:
        dest.unlink(missing_ok=True)
        if result is not None:
            raise SheetError(result["refused"])
        if "memory allocation" in stderr or code in (-6, -9) or "MemoryError" in stderr:
            raise SheetError(_too_big(memory))
        raise SheetError(DAMAGED.format(detail=f"the reader stopped: {stderr.strip()[-200:] or code}"))
    return Converted(
        sheet=result["sheet"], rows=result["rows"], height=result["height"], sheets=tuple(result["sheets"])
    )


if __name__ == "__main__":
    sys.exit(main())
