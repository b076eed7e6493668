"""Writes for campaigns, sheet uploads, the intake API, do-not-call and the Ryng push.

Services are the only writers (STYLE.md): keyword-only, typed, atomic. Celery tasks in
``campaigns/tasks.py`` are thin wrappers over the ``*_run`` services here; every task is enqueued
and every live push sent only after the transaction commits.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import os
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import File
from django.core.files.uploadedfile import UploadedFile
from django.db import OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import get_valid_filename

from agentdesk import live
from agentdesk.models import Agent, AuditEntry, audit_record, person_name
from calls import services as engine
from calls.providers import append_campaign, get_provider, provider_class
from campaigns import blockers, importer, sheets, tasks, workbooks
from campaigns.locks import lead_append_lock
from campaigns.models import DESK_KEYS, Campaign, Disposition, DoNotCall, Lead, SheetUpload
from campaigns.phone import Normalized, normalize
from campaigns.rowcheck import INVALID, Plan, check_chunk
from campaigns.selectors import lead_counts

log = logging.getLogger("campaigns.services")


class ServiceError(Exception):
    """A request a supervisor can fix (shown as a message, never a 500)."""


# -- campaigns ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DispositionSpec:
    name: str
    outcome: str = Disposition.Outcome.FINAL
    retry_delay_minutes: int | None = None
    is_conversion: bool = False
    key: str = ""  # the desk key, one of DESK_KEYS; empty: handed out by place (desk_keys)
    pk: int | None = None  # the row it edits (a rename keeps the row and its calls' history)


@transaction.atomic
def campaign_save(
    *,
    campaign: Campaign,
    agents: Iterable[Any] | None = None,
    dispositions: Sequence[DispositionSpec] | None = None,
) -> Campaign:
    """Save a new or edited campaign with its agents and dispositions (replacing both lists)."""
    campaign.full_clean(exclude=["intake_token"])
    campaign.save()
    if agents is not None:
        campaign.agents.set(list(agents))
    if dispositions is not None:
        _dispositions_replace(campaign, dispositions)
    _push_campaign_row(campaign)
    return campaign


def _dispositions_replace(campaign: Campaign, specs: Sequence[DispositionSpec]) -> None:
    """The campaign's dispositions become ``specs``, in that order. A disposition keeps its row,
    and so its calls' history, when a spec names its id or, failing that, its name."""
    names = [spec.name.casefold() for spec in specs]
    keys = [spec.key for spec in specs if spec.key]
    if len(set(names)) != len(names):
        raise ServiceError("Disposition names must be unique.")
    if len(set(keys)) != len(keys) or not set(keys) <= set(DESK_KEYS):
        raise ServiceError("Each disposition key is a different digit.")
    unclaimed = {row.pk: row for row in campaign.dispositions.all()}
    rows = [unclaimed.pop(spec.pk, None) if spec.pk is not None else None for spec in specs]
    by_name = {row.name: row for row in unclaimed.values()}
    rows = [row or by_name.pop(spec.name, None) for row, spec in zip(rows, specs, strict=True)]
    campaign.dispositions.exclude(pk__in=[row.pk for row in rows if row]).delete()
    # A rename may take a name another row is giving up in the same save: park renamed rows on a
    # name nobody types (a control character) first.
    for row, spec in zip(rows, specs, strict=True):
        if row and row.name != spec.name:
            Disposition.objects.filter(pk=row.pk).update(name=f"\x01{row.pk}")
    for position, (row, spec) in enumerate(zip(rows, specs, strict=True)):
        row = row or Disposition(campaign=campaign)
        row.name, row.outcome, row.key = spec.name, spec.outcome, spec.key
        row.retry_delay_minutes, row.is_conversion = spec.retry_delay_minutes, spec.is_conversion
        row.position = position
        row.save()


def campaign_set_status(*, campaign: Campaign, status: str, by: Any) -> Campaign:
    """A supervisor (``by``) pauses or resumes. A paused campaign offers no leads (the desk's queue
    filters on status, and the dial-time checks refuse its leads). Recorded in the audit trail,
    and the desks working the campaign are told. Where the platform hands out the leads, a pause
    reaches it once recorded: its agents Not ready there, their offers given back
    (``calls.services.campaign_paused_on_platform``)."""
    if _campaign_status_save(campaign=campaign, status=status, by=by) and status == Campaign.Status.PAUSED:
        engine.campaign_paused_on_platform(campaign=campaign)
    return campaign


@transaction.atomic
def _campaign_status_save(*, campaign: Campaign, status: str, by: Any) -> bool:
    """The status, its audit row and the desks told; False when it was already ``status``."""
    if status not in Campaign.Status.values:
        raise ServiceError(f"Unknown campaign status {status!r}.")
    if status == campaign.status:
        return False  # a second click on a stale page: nothing happened, nothing to record
    campaign.status = status
    campaign.save(update_fields=["status"])
    paused = status == Campaign.Status.PAUSED
    audit_record(
        by=by,
        action=AuditEntry.Action.CAMPAIGN_PAUSE if paused else AuditEntry.Action.CAMPAIGN_RESUME,
        campaign=campaign,
        summary=f"{campaign.name}: {'paused' if paused else 'resumed'}",
    )
    if paused:
        message = f"A supervisor ({person_name(by)}) paused {campaign.name}: no new leads for now."
    else:
        message = f"A supervisor ({person_name(by)}) resumed {campaign.name}."
    for agent_id in Agent.objects.filter(desk_campaign=campaign).values_list("pk", flat=True):
        live.desk_changed(agent_id, live.ALERT, alert=live.alert(message, level="info"))
    _push_campaign_row(campaign)
    return True


@transaction.atomic
def campaign_rotate_token(*, campaign: Campaign, by: Any) -> Campaign:
    """A new intake token; the old one stops working at once (a CRM must be given the new one).
    Recorded in the audit trail (that it was rotated, never the token)."""
    campaign.intake_token = Campaign._meta.get_field("intake_token").get_default()
    campaign.save(update_fields=["intake_token"])
    audit_record(
        by=by,
        action=AuditEntry.Action.TOKEN_ROTATE,
        campaign=campaign,
        summary=f"{campaign.name}: new intake token, the old one stopped working",
    )
    return campaign


def _push_campaign_row(campaign: Campaign) -> None:
    live.campaign_counts_changed(campaign.pk)


# -- uploads ------------------------------------------------------------------------------------------


def check_takes_sheets(campaign: Campaign) -> None:
    """Refuse a sheet for a campaign whose platform offers its leads itself."""
    adapter = provider_class(campaign.platform)
    if adapter.offers_leads:
        raise ServiceError(f"{adapter.label} campaigns get their leads from the platform: no sheet upload.")


@transaction.atomic
def upload_create(*, campaign: Campaign, file: UploadedFile | File, user: Any = None) -> SheetUpload:
    """Store the sheet (Django already streamed the request body to a temporary file; this copies
    it chunk by chunk while hashing), detect encoding and delimiter, and propose a mapping.

    A file that is empty, too big or not text is refused (``ServiceError``, logged) before it is
    stored; one whose first records cannot be imported (no lead, a cell or a width over the
    limits) is refused and its stored copy deleted. Either way no row and no file is left.

    A zip of one sheet is unpacked into a temporary file (gone when this returns, refused or
    not) and that sheet is stored and read as if it had been uploaded itself."""
    check_takes_sheets(campaign)
    name = Path(getattr(file, "name", "") or "sheet.csv").name
    size = getattr(file, "size", 0) or 0
    file.seek(0)
    head = file.read(sheets.HEAD_BYTES)
    file.seek(0)
    try:
        is_workbook = sheets.check_head(head, size=size, max_bytes=settings.UPLOAD_MAX_BYTES, workbooks=True)
        workbook_format = workbooks.identify(file) if is_workbook else ""
        if workbook_format != workbooks.ZIPPED:
            return _upload_store(campaign, file, user, name=name, size=size, workbook_format=workbook_format)
        with tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as unpacked:
            member, workbook_format = workbooks.unzip(file, unpacked, max_bytes=settings.UPLOAD_MAX_BYTES)
            return _upload_store(
                campaign,
                File(unpacked, name=member),
                user,
                name=member,
                size=unpacked.seek(0, os.SEEK_END),
                workbook_format=workbook_format,
                zipped=name,
            )
    except sheets.SheetError as exc:
        raise _refused(campaign, name, size, user, exc) from exc


def _upload_store(
    campaign: Campaign,
    file: UploadedFile | File,
    user: Any,
    *,
    name: str,
    size: int,
    workbook_format: str,
    zipped: str = "",
) -> SheetUpload:
    """``upload_create``'s storing and reading of a file it accepted (``name``, of ``size``
    bytes; unpacked from the zip named ``zipped``); ``SheetError`` once every file is gone."""
    file.seek(0)
    digest = hashlib.sha256()
    for chunk in file.chunks():
        digest.update(chunk)
    file.seek(0)
    upload = SheetUpload(
        campaign=campaign,
        original_name=(zipped or name)[:255],
        sha256=digest.hexdigest(),
        created_by=user if getattr(user, "is_authenticated", False) else None,
        size_bytes=size,
    )
    # A workbook is stored under its format's suffix, whatever its name said: the reader goes by it.
    target = f"{Path(name).stem}.{workbook_format}" if workbook_format else name
    try:
        get_valid_filename(target)
    except SuspiciousFileOperation:  # a name of nothing storable ("[]", "..."): the page keeps it
        target = f"sheet.{workbook_format or 'csv'}"
    upload.file.save(target, file, save=False)
    stored = [upload.file.name]
    try:
        path = Path(upload.file.path)
        upload.size_bytes = path.stat().st_size
        workbook: dict[str, Any] = {}
        if workbook_format:
            workbook = _workbook_to_sheet(upload, workbook_format)
            stored.append(upload.file.name)
            path = Path(upload.file.path)
        _read_sheet(upload, path)
        if workbook:
            upload.mapping["workbook"] = workbook
        if zipped:
            upload.mapping["zip"] = {"name": zipped, "member": name[:255]}
        upload.save()
        if workbook and not workbook["file"]:
            upload.file.storage.delete(stored[0])  # the sheet is the CSV now
    except BaseException:
        for stored_name in stored:  # the transaction forgets the row; the files must go too
            upload.file.storage.delete(stored_name)
        raise
    return upload


def _read_sheet(upload: SheetUpload, path: Path) -> None:
    """Detect the stored sheet's encoding and delimiter, refuse what its first records cannot
    import (``SheetError``), and propose a mapping (``upload.mapping``, not saved)."""
    upload.encoding = sheets.detect_encoding(path)
    upload.delimiter = sheets.detect_delimiter(sheets.read_sample(path, upload.encoding))
    header = sheets.first_row(path, upload.encoding, upload.delimiter, max_columns=settings.SHEET_MAX_COLUMNS)
    has_header = sheets.looks_like_header(header)
    if has_header:
        columns = sheets.auto_map(header, list(upload.campaign.custom_field_names or []))
    else:
        columns = _guess_without_header(header)
    upload.mapping = {"columns": columns, "has_header": has_header, "headers": header if has_header else []}


def _workbook_to_sheet(
    upload: SheetUpload, workbook_format: str, sheet: str | None = None, listed: list | None = None
) -> dict[str, Any]:
    """Point ``upload.file`` at a UTF-8 CSV of a sheet of the stored workbook (``sheet`` by
    name, else the first with data: ``campaigns.workbooks``); the workbook's facts for
    ``upload.mapping["workbook"]``.

    A workbook up to ``WORKBOOK_INLINE_BYTES`` is converted whole here, and every visible sheet
    is counted. A bigger one would hold the request too long (about 15 s for a million rows):
    only its first records are written, enough for the refusals and the mapping, and the dry run
    converts the rest first (``_workbook_finish``); until then the workbook stays stored beside
    the CSV (``pending``). A workbook of several visible sheets is kept until the import, so the
    supervisor can choose another (``upload_choose_sheet``)."""
    storage = upload.file.storage
    workbook_name = upload.mapping["workbook"]["file"] if listed else upload.file.name
    csv_name = storage.get_available_name(str(Path(workbook_name).with_suffix(".csv")))
    Path(storage.path(csv_name)).parent.mkdir(parents=True, exist_ok=True)
    pending = upload.size_bytes > settings.WORKBOOK_INLINE_BYTES
    converted = workbooks.convert(
        Path(storage.path(workbook_name)),
        Path(storage.path(csv_name)),
        max_columns=settings.SHEET_MAX_COLUMNS,
        rows=sheets.SCAN_RECORDS if pending else None,
        sheet=sheet,
        count=not pending and not listed,
    )
    assert converted is not None  # nothing cancels an upload's conversion
    upload.file.name = csv_name
    read = {entry["name"]: entry["rows"] for entry in converted.sheets if entry["rows"] is not None}
    choosable = [
        {**e, "rows": read[e["name"]], "estimate": False} if e["name"] in read else e
        for e in listed or converted.sheets
    ]
    if workbook_format == workbooks.XLSX and any(e["rows"] is None for e in choosable):
        # A big workbook's other sheets are not read; an .xlsx declares each one's used range.
        estimates = workbooks.xlsx_row_estimates(Path(storage.path(workbook_name)))
        choosable = [
            {**e, "rows": estimates[e["name"]], "estimate": True}
            if e["rows"] is None and e["name"] in estimates
            else e
            for e in choosable
        ]
    return {
        "format": workbook_format,
        "sheet": converted.sheet,
        "rows": converted.height,
        "pending": pending,
        "file": workbook_name if pending or len(choosable) > 1 else "",
        "sheets": choosable,
    }


def _workbook_finish(upload: SheetUpload, progress, cancelled) -> bool:
    """Before a dry run: convert a big workbook's chosen sheet whole (its CSV held only the first
    records), with progress; False when cancelled. Two dry runs may both convert (a newer
    mapping): each writes its own file and the first to finish replaces the sheet, under the
    upload's lock, unless another sheet was chosen meanwhile (that choice's dry run converts it)."""
    workbook = (upload.mapping or {}).get("workbook") or {}
    if not workbook.get("pending"):
        return True
    storage = upload.file.storage
    target = Path(upload.file.path)
    partial = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
    # Kept when the supervisor may still choose another of its sheets (until the import).
    keep = len(workbook.get("sheets") or ()) > 1
    settled = {**workbook, "pending": False, "file": workbook["file"] if keep else ""}
    try:
        converted = workbooks.convert(
            Path(storage.path(workbook["file"])),
            partial,
            max_columns=settings.SHEET_MAX_COLUMNS,
            sheet=workbook.get("sheet"),
            progress=progress,
            cancelled=cancelled,
        )
        if converted is None:
            return False
        with transaction.atomic():
            current = SheetUpload.objects.select_for_update().get(pk=upload.pk)
            now = current.mapping.get("workbook") or {}
            if now.get("sheet") != workbook.get("sheet") or current.file.name != upload.file.name:
                raise importer.Cancelled  # another sheet was chosen: its own dry run follows
            done = not now.get("pending")
            if not done:
                os.replace(partial, target)
                current.mapping["workbook"] = settled
                current.save(update_fields=["mapping"])
        if not done and not keep:
            storage.delete(workbook["file"])
        upload.mapping = {**upload.mapping, "workbook": settled}
        return True
    finally:
        partial.unlink(missing_ok=True)


def _drop_kept_workbook(upload: SheetUpload) -> None:
    """Once imported, the sheet is settled: a workbook kept for choosing another sheet goes."""
    workbook = (upload.mapping or {}).get("workbook") or {}
    if workbook.get("file") and not workbook.get("pending"):
        upload.file.storage.delete(workbook["file"])
        upload.mapping = {**upload.mapping, "workbook": {**workbook, "file": ""}}
        SheetUpload.objects.filter(pk=upload.pk).update(mapping=upload.mapping)


@transaction.atomic
def upload_choose_sheet(*, upload: SheetUpload, sheet: str) -> SheetUpload:
    """Read another sheet of the uploaded workbook: its CSV replaces the sheet's, the mapping is
    proposed afresh for it and any dry run's counts are dropped (a dry run still going is
    superseded, as by a new mapping). Refused in words: a workbook of one sheet, a name it does
    not hold, an empty sheet, one the limits refuse (the upload stays on its sheet), and once the
    import has started."""
    upload = SheetUpload.objects.select_for_update().select_related("campaign").get(pk=upload.pk)
    if upload.status in _PAST_IMPORT:
        raise ServiceError(
            "This sheet is already imported; upload the workbook again to import another sheet."
        )
    workbook = (upload.mapping or {}).get("workbook") or {}
    listed = list(workbook.get("sheets") or [])
    if len(listed) < 2 or not workbook.get("file"):
        raise ServiceError("This file has one sheet only: there is no other to choose.")
    if sheet not in {entry["name"] for entry in listed}:
        raise ServiceError("This workbook has no sheet by that name: choose one from the list.")
    if sheet == workbook.get("sheet"):
        return upload
    old_csv = upload.file.name
    run = _dry_run_number(upload)
    try:
        chosen = _workbook_to_sheet(upload, workbook["format"], sheet=sheet, listed=listed)
        try:
            _read_sheet(upload, Path(upload.file.path))
        except sheets.SheetError:
            upload.file.storage.delete(upload.file.name)
            raise
    except sheets.SheetError as exc:
        named = f"“{sheet}”"
        raise ServiceError(str(exc) if named in str(exc) else f"The sheet {named}: {exc}") from exc
    upload.mapping = {**upload.mapping, "workbook": chosen, "run": run + 1}
    _set_status(
        upload,
        SheetUpload.Status.UPLOADED,
        file=upload.file.name,
        encoding=upload.encoding,
        delimiter=upload.delimiter,
        mapping=upload.mapping,
        report={},
        total_rows=0,
        valid_rows=0,
        invalid_rows=0,
        duplicate_rows=0,
        dnc_rows=0,
        error="",
    )
    # The old sheet's CSV and issue report go now (the last step: nothing after it can fail).
    upload.file.storage.delete(old_csv)
    importer.report_path(upload).unlink(missing_ok=True)
    _push_progress(upload)
    return upload


def _refused(campaign: Campaign, name: str, size: int, user: Any, exc: sheets.SheetError) -> ServiceError:
    log.warning(
        "upload refused: campaign=%s user=%s file=%r size=%s: %s",
        campaign.pk,
        getattr(user, "pk", None),
        name[:255],
        size,
        exc,
    )
    return ServiceError(str(exc))


def _guess_without_header(row: list[str]) -> list[str]:
    targets = [sheets.IGNORE] * len(row)
    for i, cell in enumerate(row):
        if sum(c.isdigit() for c in cell) >= 6:
            targets[i] = sheets.NUMBER
            break
    return targets


def upload_preview(upload: SheetUpload, rows: int = 6) -> list[list[str]]:
    return sheets.preview(Path(upload.file.path), upload.encoding, upload.delimiter, rows=rows)


def mapping_choices(campaign: Campaign, header: str) -> list[tuple[str, str]]:
    """The choices offered for one column in the mapping step: the campaign's custom fields, or
    (when it names none) a custom field named by this column's own header. Never every column's
    header for every column: a 1,200-column sheet made that an 84 MB page."""
    choices = [
        (sheets.IGNORE, "Ignore"),
        (sheets.NUMBER, "Phone number"),
        (sheets.NAME, "Name"),
        (sheets.AGENTS, "Agents"),
    ]
    names = list(campaign.custom_field_names or []) or ([header.strip()] if header.strip() else [])
    choices += [(sheets.FIELD_PREFIX + n, f"Custom field: {n}") for n in names]
    return choices


# An upload in these states has its leads (or had them): its mapping and dry run are settled.
_PAST_IMPORT = (
    SheetUpload.Status.IMPORTING,
    SheetUpload.Status.DONE,
    SheetUpload.Status.UNDOING,
    SheetUpload.Status.UNDONE,
)


@transaction.atomic
def upload_set_mapping(
    *, upload: SheetUpload, columns: Sequence[str], has_header: bool, mode: str = SheetUpload.Mode.ADD
) -> SheetUpload:
    """Record the supervisor's mapping and import mode (``SheetUpload.Mode``: add new leads
    only, or add new and update existing). Exactly one number column; others at most once."""
    upload = SheetUpload.objects.select_for_update().get(pk=upload.pk)
    if upload.status in _PAST_IMPORT:
        raise ServiceError("This sheet is already imported; upload it again to change the mapping.")
    if mode not in SheetUpload.Mode.values:
        raise ServiceError("Choose whether the import adds new leads only or also updates existing ones.")
    cleaned = [c or sheets.IGNORE for c in columns]
    if cleaned.count(sheets.NUMBER) != 1:
        raise ServiceError("Choose exactly one column as the phone number.")
    for target in (sheets.NAME, sheets.AGENTS):
        if cleaned.count(target) > 1:
            raise ServiceError(f"Only one column can be the {target}.")
    fields = [c for c in cleaned if c.startswith(sheets.FIELD_PREFIX)]
    if len(fields) != len(set(fields)):
        raise ServiceError("Each custom field can come from one column only.")
    mapping = dict(upload.mapping or {})
    header = sheets.preview(Path(upload.file.path), upload.encoding, upload.delimiter, rows=1)
    mapping.update(
        columns=cleaned,
        has_header=has_header,
        headers=(header[0] if header and has_header else []),
        mode=str(mode),
    )
    upload.mapping = mapping
    upload.status = SheetUpload.Status.UPLOADED
    upload.save(update_fields=["mapping", "status"])
    return upload


@transaction.atomic
def upload_start_dry_run(*, upload: SheetUpload) -> SheetUpload:
    upload = SheetUpload.objects.select_for_update().get(pk=upload.pk)
    if upload.status in _PAST_IMPORT:
        raise ServiceError("This sheet is already being imported.")
    importer.plan_for(upload)  # a mapping without a number column fails here, not in the worker
    # Each dry run has its number: a run still going when a new mapping starts another one is
    # superseded, and its counts (of the old mapping) are never shown nor imported from.
    upload.mapping = {**(upload.mapping or {}), "run": _dry_run_number(upload) + 1}
    upload.save(update_fields=["mapping"])
    _set_status(upload, SheetUpload.Status.VALIDATING)
    transaction.on_commit(lambda: tasks.upload_dry_run.delay(upload.pk))
    _push_progress(upload)
    return upload


@transaction.atomic
def upload_start_import(*, upload: SheetUpload, run: int | None = None) -> SheetUpload:
    """Import what the dry run checked. ``run`` is the number of the dry run whose report the
    supervisor read (the page's Import form carries it): unless it is the current mapping's, the
    import is refused, so a page left open on an older mapping's counts (another tab, another
    supervisor) never imports the newer mapping under them. ``None``: the current report."""
    upload = SheetUpload.objects.select_for_update().get(pk=upload.pk)
    if upload.status != SheetUpload.Status.VALIDATED:
        raise ServiceError("Run the dry run first; the import starts from its report.")
    if run is not None and run != _dry_run_number(upload):
        raise ServiceError(
            "Nothing was imported: the report you imported from is of an earlier mapping (it was "
            "changed and checked again since, perhaps in another tab). Check the current report "
            "and import from it."
        )
    _set_status(upload, SheetUpload.Status.IMPORTING)
    transaction.on_commit(lambda: tasks.upload_import.delay(upload.pk))
    _push_progress(upload)
    return upload


def _made_key(prefix: str, obj: Campaign | SheetUpload) -> str:
    """A cache key for one row: its id and when it was made, so a key left in a Redis that outlived
    its database (restored, re-created, a test run after another) never serves another row that
    got the same id."""
    return f"{prefix}:{obj.pk}:{obj.created_at.timestamp():.6f}"


def _cancel_flag(upload: SheetUpload, action: str) -> bool:
    """Set, read or clear the cancel left for an inserting import. The cache is Redis: when it
    is down, reading finds no cancel and setting reports False (the caller then waits)."""
    upload_id = upload.pk
    key = _made_key("campaigns:upload-cancel", upload)
    try:
        if action == "set":
            cache.set(key, True, timeout=3600)
            return True
        if action == "clear":
            cache.delete(key)
            return False
        return bool(cache.get(key))
    except Exception:
        log.warning(
            "upload %s: the cache did not answer (%s the cancel flag)", upload_id, action, exc_info=True
        )
        return False


@transaction.atomic
def upload_cancel(*, upload: SheetUpload) -> SheetUpload:
    """Stop a dry run or an import; an import cancelled at any point adds nothing, and one that
    finished is done (cancel then has nothing left to stop).

    While an import inserts, its transaction holds the upload row: instead of waiting for it,
    the cancel is left in the cache, where the import looks between its insert statements and
    rolls back (then records the cancel itself)."""
    if connection.features.has_select_for_update_nowait:
        try:
            with transaction.atomic():
                upload = SheetUpload.objects.select_for_update(nowait=True).get(pk=upload.pk)
        except OperationalError:
            if _cancel_flag(upload, "set"):
                log.info("upload %s: cancel asked while it inserts; the import will roll back", upload.pk)
                return SheetUpload.objects.get(pk=upload.pk)
            upload = SheetUpload.objects.select_for_update().get(pk=upload.pk)
    else:
        upload = SheetUpload.objects.select_for_update().get(pk=upload.pk)
    if upload.status in (
        SheetUpload.Status.DONE,
        SheetUpload.Status.CANCELLED,
        SheetUpload.Status.UNDOING,
        SheetUpload.Status.UNDONE,
    ):
        return upload  # nothing to stop (an undo is not cancelled: it only ever removes)
    _set_status(upload, SheetUpload.Status.CANCELLED)
    _push_progress(upload)
    return upload


def _set_status(upload: SheetUpload, status: str, **fields: Any) -> None:
    upload.status = status
    upload.progress = (
        0.0 if status in (SheetUpload.Status.VALIDATING, SheetUpload.Status.IMPORTING) else upload.progress
    )
    upload.processed_rows = (
        0
        if status in (SheetUpload.Status.VALIDATING, SheetUpload.Status.IMPORTING)
        else upload.processed_rows
    )
    upload.step = ""
    for key, value in fields.items():
        setattr(upload, key, value)
    upload.save(update_fields=["status", "progress", "processed_rows", "step", *fields])


def _push_progress(upload: SheetUpload) -> None:
    live.upload_progressed(upload.pk)


def _progress_reporter(upload: SheetUpload, phase: str):
    """Progress callbacks for the importer: save and push now (each UPDATE autocommits)."""

    def progress(fraction: float, rows: int, step: str | None = None) -> None:
        upload.progress = round(min(1.0, fraction), 4)
        upload.processed_rows = rows
        fields: dict[str, Any] = {"progress": upload.progress, "processed_rows": rows}
        if step is not None:
            upload.step = fields["step"] = step[:120]
        SheetUpload.objects.filter(pk=upload.pk, status=phase).update(**fields)
        live.upload_progressed(upload.pk, now=True)

    def cancelled() -> bool:
        return (
            _cancel_flag(upload, "get")
            or SheetUpload.objects.filter(pk=upload.pk, status=SheetUpload.Status.CANCELLED).exists()
        )

    return progress, cancelled


def _dry_run_number(upload: SheetUpload) -> int:
    return _run_of(upload.mapping)


def _run_of(mapping: dict | None) -> int:
    run = (mapping or {}).get("run")
    return run if isinstance(run, int) else 0  # a mapping no dry run was started for: 0


def _superseded(upload_id: int, run: int) -> bool:
    """Whether a newer dry run (a new mapping) was started since run ``run`` began."""
    return _run_of(SheetUpload.objects.filter(pk=upload_id).values_list("mapping", flat=True).first()) != run


def upload_dry_run_run(*, upload_id: int) -> SheetUpload | None:
    """The dry run (the Celery task's body): counts and the issue report, no leads written. A run
    superseded by a newer mapping's stops at its next check and leaves the upload to the newer."""
    upload = SheetUpload.objects.select_related("campaign").get(pk=upload_id)
    if upload.status != SheetUpload.Status.VALIDATING:
        return None  # cancelled or superseded before the worker got to it
    run = _dry_run_number(upload)
    progress, cancelled = _progress_reporter(upload, SheetUpload.Status.VALIDATING)
    stop = lambda: cancelled() or _superseded(upload_id, run)  # noqa: E731
    try:
        if not _workbook_finish(upload, progress, stop):
            raise importer.Cancelled
        outcome = importer.dry_run(upload, progress=progress, cancelled=stop)
    except importer.Cancelled:
        if _superseded(upload_id, run):
            log.info(
                "dry run %s of upload %s superseded by a new mapping; its counts are dropped", run, upload_id
            )
            return None
        return _finish(upload, SheetUpload.Status.CANCELLED)
    except Exception as exc:
        log.exception("dry run of upload %s failed", upload_id)
        return _finish(upload, SheetUpload.Status.FAILED, run=run, error=str(exc)[:2000])
    return _finish(
        upload,
        SheetUpload.Status.VALIDATED,
        run=run,
        total_rows=outcome.total,
        valid_rows=outcome.valid,
        invalid_rows=outcome.invalid,
        duplicate_rows=outcome.duplicates + outcome.duplicates_campaign,
        dnc_rows=outcome.dnc,
        processed_rows=outcome.total,
        report=outcome.as_report(),
        progress=1.0,
        error="",
    )


def upload_import_run(*, upload_id: int) -> SheetUpload | None:
    """The import (the Celery task's body). Safe to run twice: the second adds nothing."""
    upload = SheetUpload.objects.select_related("campaign").get(pk=upload_id)
    if upload.status != SheetUpload.Status.IMPORTING:
        return None
    progress, cancelled = _progress_reporter(upload, SheetUpload.Status.IMPORTING)

    def before_insert() -> None:
        # Lock the upload so a cancel either lands before the insert (nothing added) or waits for
        # the import to finish (and then finds it done).
        status = SheetUpload.objects.select_for_update().values_list("status", flat=True).get(pk=upload_id)
        if status != SheetUpload.Status.IMPORTING:
            raise importer.Cancelled

    try:
        outcome = importer.commit(upload, progress=progress, cancelled=cancelled, before_insert=before_insert)
    except importer.Cancelled:
        return _finish(upload, SheetUpload.Status.CANCELLED)
    except Exception as exc:
        log.exception("import of upload %s failed", upload_id)
        return _finish(upload, SheetUpload.Status.FAILED, error=str(exc)[:2000])
    report = dict(upload.report or {})
    report.pop("stage", None)  # the staged rows are inserted and dropped
    report["imported"] = outcome.imported
    report["updated"] = outcome.updates
    finished = _finish(
        upload,
        SheetUpload.Status.DONE,
        imported_rows=outcome.imported,
        processed_rows=outcome.total,
        progress=1.0,
        report=report,
    )
    _push_campaign_row(upload.campaign)
    if finished is not None and finished.status == SheetUpload.Status.DONE:
        _drop_kept_workbook(finished)
    # Updated names and fields are not pushed again: the push sends a lead once (pushed_at).
    if outcome.imported and _pushes_leads(upload.campaign):
        campaign_sync_start(campaign=upload.campaign)
    return finished


@transaction.atomic
def upload_start_undo(*, upload: SheetUpload) -> SheetUpload:
    """Queue the undo of a finished import (``upload_undo_run``): its leads nobody has touched
    go, the others stay and are listed. Only a done import can be undone, once."""
    upload = SheetUpload.objects.select_for_update().get(pk=upload.pk)
    if upload.status == SheetUpload.Status.UNDONE:
        raise ServiceError("This import is already undone.")
    if upload.status == SheetUpload.Status.UNDOING:
        raise ServiceError("This import is being undone already.")
    if upload.status != SheetUpload.Status.DONE:
        raise ServiceError("Only a finished import can be undone.")
    sync_status = Campaign.objects.filter(pk=upload.campaign_id).values_list("sync_status", flat=True).first()
    if sync_status == "running":
        # A push takes its leads, then sends them: a lead removed in between would reach the
        # platform without being counted as left there.
        label = provider_class(upload.campaign.platform).label
        raise ServiceError(f"Leads are being pushed to {label} right now: undo once the push has ended.")
    _set_status(upload, SheetUpload.Status.UNDOING, error="")
    transaction.on_commit(lambda: tasks.upload_undo.delay(upload.pk))
    _push_progress(upload)
    return upload


def upload_undo_run(*, upload_id: int) -> SheetUpload | None:
    """The undo (the Celery task's body, ``imports`` queue): delete the leads this upload added
    that were never called, never leased and have no call (``importer.undo``), in batches with
    progress; keep every other one and list them. Ends "undone" with the counts in
    ``report["undo"]``. Safe to run again: it continues on what is left. When it fails the
    upload is "done" again, with the error, and can be undone again."""
    upload = SheetUpload.objects.select_related("campaign").get(pk=upload_id)
    if upload.status != SheetUpload.Status.UNDOING:
        return None
    progress, _ = _progress_reporter(upload, SheetUpload.Status.UNDOING)
    try:
        outcome = importer.undo(upload, progress=progress)
    except Exception as exc:
        log.exception("undo of upload %s failed", upload_id)
        finished = _finish(
            upload,
            SheetUpload.Status.DONE,
            error=f"The undo stopped before the end ({str(exc)[:1500]}). Undo again to finish it.",
        )
        _push_campaign_row(upload.campaign)
        return finished
    report = dict(upload.report or {})
    # The import's leads less those kept: right also when an earlier, failed undo removed some.
    removed = max(outcome.removed, upload.imported_rows - outcome.kept)
    report["undo"] = {"removed": removed, "kept": outcome.kept, "kept_sample": outcome.kept_sample}
    if outcome.pushed:
        # The platform keeps what was pushed to it: its API can add leads, not remove them.
        report["undo"]["on_platform"] = {
            "leads": outcome.pushed,
            "platform": provider_class(upload.campaign.platform).label,
            "campaign": upload.campaign.platform_campaign_id,
        }
    finished = _finish(upload, SheetUpload.Status.UNDONE, progress=1.0, report=report, error="")
    _push_campaign_row(upload.campaign)
    return finished


@transaction.atomic
def _finish(upload: SheetUpload, status: str, run: int | None = None, **fields: Any) -> SheetUpload | None:
    """Record the end of a pass unless a cancel got there first, or (a dry run's ``run``) a
    newer dry run started meanwhile: then the newer one records its own end."""
    current = SheetUpload.objects.select_for_update().get(pk=upload.pk)
    if run is not None and _dry_run_number(current) != run:
        log.info("dry run %s of upload %s finished after a newer one started; dropped", run, upload.pk)
        return None
    _cancel_flag(upload, "clear")
    # A cancel wins over any ending but "done": leads already inserted stay recorded as imported.
    if current.status == SheetUpload.Status.CANCELLED and status not in (
        SheetUpload.Status.DONE,
        SheetUpload.Status.CANCELLED,
    ):
        return current
    current.step = ""
    for key, value in fields.items():
        setattr(current, key, value)
    current.status = status
    current.finished_at = timezone.now()
    current.save()
    _push_progress(current)
    return current


# -- do-not-call ---------------------------------------------------------------------------------------


def _mark_dnc(numbers: list[str]) -> None:
    """The waiting leads of ``numbers``, in every campaign, become do-not-call. Callbacks first,
    then the rest: each lead's status change moves two of its campaign's counters (LeadCount),
    and taking them in the order every writer takes them (callback < dnc < pending) keeps this
    many-row update from deadlocking with an agent's disposition in one of those campaigns."""
    for status in (Lead.Status.CALLBACK, Lead.Status.PENDING):
        Lead.objects.filter(number__in=numbers, status=status).update(status=Lead.Status.DNC)


@transaction.atomic
def dnc_add(*, number: str, reason: str, added_by: Any = None, region: str = "US") -> DoNotCall:
    """Put a number on the do-not-call list (idempotent; the first reason is kept) and mark the
    number's pending leads in every campaign as do-not-call. ``number`` may be national for
    ``region``. Raises :class:`ServiceError` for a value that is not a phone number."""
    result = normalize(number, region)
    if not isinstance(result, Normalized):
        raise ServiceError(f"{number!r} is not a phone number: {result.reason}.")
    user = added_by if getattr(added_by, "is_authenticated", False) else None
    row, _ = DoNotCall.objects.get_or_create(
        number=result.e164, defaults={"reason": reason[:200], "added_by": user}
    )
    _mark_dnc([result.e164])
    return row


@transaction.atomic
def dnc_remove(*, number: str) -> int:
    deleted, _ = DoNotCall.objects.filter(number=number).delete()
    return deleted


@dataclass
class DncImport:
    added: int = 0
    already: int = 0
    invalid: list[tuple[int, str, str]] = field(default_factory=list)


def dnc_import(
    *, file: UploadedFile | File, reason: str, added_by: Any = None, region: str = "US"
) -> DncImport:
    """A CSV (or one number a line) of numbers: the first cell of each row that parses. A file
    that is empty, too big or not text is refused first (``ServiceError``, logged)."""
    file.seek(0)
    head = file.read(sheets.HEAD_BYTES)
    file.seek(0)
    try:
        sheets.check_head(head, size=getattr(file, "size", 0) or 0, max_bytes=settings.UPLOAD_MAX_BYTES)
    except sheets.SheetError as exc:
        log.warning("do-not-call upload refused: file=%r: %s", (getattr(file, "name", "") or "")[:255], exc)
        raise ServiceError(str(exc)) from exc
    path_like = getattr(file, "temporary_file_path", None)
    if path_like:
        return _dnc_import_path(Path(path_like()), reason=reason, added_by=added_by, region=region)
    with tempfile.NamedTemporaryFile(suffix=".csv") as handle:  # gone when the import is
        for chunk in file.chunks():
            handle.write(chunk)
        handle.flush()
        return _dnc_import_path(Path(handle.name), reason=reason, added_by=added_by, region=region)


def _dnc_import_path(path: Path, *, reason: str, added_by: Any, region: str) -> DncImport:
    encoding = sheets.detect_encoding(path)
    delimiter = sheets.detect_delimiter(sheets.read_sample(path, encoding))
    result = DncImport()
    existing = set(DoNotCall.objects.values_list("number", flat=True))
    user = added_by if getattr(added_by, "is_authenticated", False) else None
    batch: list[DoNotCall] = []
    for line, row in sheets.RowStream(path, encoding, delimiter):
        cell = next((c for c in row if c.strip()), "")
        if not cell:
            continue
        parsed = normalize(cell, region)
        if not isinstance(parsed, Normalized):
            if line > 1:  # a header line is not worth reporting
                result.invalid.append((line, cell[:64], parsed.reason))
            continue
        if parsed.e164 in existing:
            result.already += 1
            continue
        existing.add(parsed.e164)
        batch.append(DoNotCall(number=parsed.e164, reason=reason[:200], added_by=user))
    with transaction.atomic():
        DoNotCall.objects.bulk_create(batch, ignore_conflicts=True, batch_size=2000)
        numbers = [d.number for d in batch]
        for start in range(0, len(numbers), 500):
            _mark_dnc(numbers[start : start + 500])
    result.added = len(batch)
    return result


# -- intake API: an Append Campaign body, appended through the same checks -----------------------------


class IntakeError(Exception):
    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []


@dataclass
class IntakeResult:
    received: int
    appended: int
    duplicates: int
    dnc: int


def intake_append(*, campaign: Campaign, body: Any) -> IntakeResult:
    """Append leads from an Append Campaign JSON body (seed 002, read by
    ``calls.providers.append_campaign``). All or nothing: when any row is invalid nothing is
    appended and every bad row comes back with its index and reason. Numbers already in the
    campaign (or repeated in the body) are counted, not errors."""
    try:
        read = append_campaign.read_body(body, field_names=list(campaign.custom_field_names or []))
    except append_campaign.BodyError as exc:
        raise IntakeError(str(exc)) from None
    errors = list(read.errors)
    plan = Plan(
        number_col=0,
        name_col=None,
        agents_col=1,
        fields=tuple((i + 2, read.names[n]) for i, n in enumerate(read.order)),
        region=campaign.default_region or "US",
        headers=read.headers,
        agent_aliases=importer.agent_aliases(campaign),
    )
    checked = check_chunk(read.records, plan, importer.dnc_keys(), copy=False)
    for line, column, value, reason, kind in checked.issues:
        if kind == INVALID:
            errors.append({"index": line, "field": column, "value": value, "reason": reason})
    if errors:
        raise IntakeError(
            "Some leads are invalid; nothing was appended.", errors=sorted(errors, key=lambda e: e["index"])
        )
    dnc = sum(1 for issue in checked.issues if issue[4] != INVALID)
    appended = _insert_rows(campaign, checked.rows, names_in_order=[read.names[n] for n in read.order])  # type: ignore[arg-type]
    if appended:
        _push_campaign_row(campaign)
        if _pushes_leads(campaign):
            transaction.on_commit(lambda: campaign_sync_start(campaign=campaign))
    return IntakeResult(
        received=read.received, appended=appended, duplicates=len(checked.keys) - appended, dnc=dnc
    )


@transaction.atomic
def _insert_rows(campaign: Campaign, rows: list[tuple], *, names_in_order: list[str]) -> int:
    """Insert checked rows (``check_chunk(copy=False)`` tuples); the first of a repeated number
    wins; numbers already in the campaign are skipped. Returns how many were added."""
    import json

    lead_append_lock(campaign.pk)  # `existing` below stays true until the commit
    seen: set[str] = set()
    fresh = []
    for row in rows:
        if row[1] not in seen:
            seen.add(row[1])
            fresh.append(row)
    existing = set(
        Lead.objects.filter(campaign=campaign, number__in=list(seen))
        .exclude(source=Lead.Source.PLATFORM)
        .values_list("number", flat=True)
    )
    leads = [
        Lead(
            campaign=campaign,
            number=row[1],
            raw_number=row[2],
            name=row[3],
            assigned_agents=row[4],
            timezone=row[5],
            custom_fields=json.loads(row[6]),
            source=Lead.Source.INTAKE,
        )
        for row in fresh
        if row[1] not in existing
    ]
    # ignore_conflicts still, for SQLite's sake and as a belt: under the lock nothing conflicts.
    Lead.objects.bulk_create(leads, ignore_conflicts=True, batch_size=1000)
    return len(leads)


# -- pushing leads to the platform (Append Campaign, where the platform takes pushed leads) --------------


def _pushes_leads(campaign: Campaign) -> bool:
    """Whether new leads go on to the campaign's platform (``Provider.takes_pushed_leads``, and the
    platform's campaign is set)."""
    return bool(campaign.platform_campaign_id) and provider_class(campaign.platform).takes_pushed_leads


@transaction.atomic
def campaign_sync_start(*, campaign: Campaign) -> Campaign:
    """Queue a push of the campaign's not-yet-pushed leads to its campaign on the platform."""
    adapter = provider_class(campaign.platform)
    if not adapter.takes_pushed_leads:
        raise ServiceError(f"{adapter.label} campaigns do not take pushed leads.")
    if not campaign.platform_campaign_id:
        raise ServiceError(f"Set the {adapter.label} campaign ID first.")
    Campaign.objects.filter(pk=campaign.pk).update(sync_status="queued", sync_message="Waiting for a worker.")
    campaign.sync_status = "queued"
    transaction.on_commit(lambda: tasks.campaign_sync.delay(campaign.pk))
    _push_sync(campaign)
    return campaign


SYNC_CHUNK = 500


LEAD_NAME_FIELD = "Name"


def campaign_sync_run(*, campaign_id: int) -> int:
    """Push every unpushed lead in chunks of ``SYNC_CHUNK``; each chunk (each request of it, where
    the adapter sends it in smaller batches) is marked pushed only after the platform accepted
    it, so a retry resumes with the request that failed and sends nothing twice (Ryng gives no
    counts back and no way to list a campaign, so a chunk that failed mid-request may arrive
    twice; Ryng dedupes nothing either way, which is why chunks stay small). Agents are named by
    their usernames on the platform where they have one. Raises ``ProviderError``."""
    campaign = Campaign.objects.select_related("account").get(pk=campaign_id)
    account = campaign.account
    provider = get_provider(account.config())
    urls = account.callback_urls()
    pending = Lead.objects.filter(campaign=campaign, pushed_at__isnull=True).exclude(
        source=Lead.Source.PLATFORM
    )
    total = pending.count()
    Campaign.objects.filter(pk=campaign.pk).update(
        sync_status="running", sync_total=total, sync_pushed=0, sync_message=f"Pushing {total} leads."
    )
    campaign.refresh_from_db()
    _push_sync(campaign)
    # Our usernames -> the platform's, for every agent with an identity there.
    to_platform = {user: name for name, user in importer.agent_aliases(campaign)}
    agent_names = [
        to_platform.get(user, user) for user in campaign.agents.values_list("user__username", flat=True)
    ]
    # The lead's name travels as a custom field (Ryng's lead has no name of its own).
    field_names = list(campaign.custom_field_names or [])
    name_field = next((f for f in field_names if f.casefold() == LEAD_NAME_FIELD.casefold()), None)
    if name_field is None:
        name_field = LEAD_NAME_FIELD
        field_names.append(name_field)
    pushed = 0
    while True:
        chunk = list(
            pending.order_by("id").values("id", "number", "name", "assigned_agents", "custom_fields")[
                :SYNC_CHUNK
            ]
        )
        if not chunk:
            break
        rows = []
        for lead in chunk:
            fields = dict(lead["custom_fields"] or {})
            if lead["name"] and not fields.get(name_field):
                fields[name_field] = lead["name"]
            row: dict[str, Any] = {"number": lead["number"], "custom_fields": fields}
            assigned = [to_platform.get(a, a) for a in lead["assigned_agents"].split(",") if a]
            if assigned:
                row["agents"] = assigned
            rows.append(row)
        # Marked pushed as each request of the chunk is accepted (the adapter may send the chunk
        # in smaller batches): a batch that fails leaves only itself and those after it to retry.
        ids = iter([lead["id"] for lead in chunk])
        provider.append_leads(
            campaign.platform_campaign_id,
            rows,
            accepted=functools.partial(_mark_pushed, campaign, ids),
            fmt=campaign.push_format,
            agent_mapping=campaign.agent_mapping,
            agents=agent_names,
            custom_field_names=field_names,
            name=campaign.name,
            connect_callback_url=urls.get("connect", ""),
            terminal_callback_url=urls.get("terminal", ""),
        )
        _mark_pushed(campaign, ids, len(chunk))  # what the adapter did not tell, all of it accepted
        pushed += len(chunk)
    Campaign.objects.filter(pk=campaign.pk).update(
        sync_status="done", sync_message=f"Pushed {pushed} leads.", synced_at=timezone.now()
    )
    campaign.refresh_from_db()
    _push_sync(campaign)
    return pushed


def _mark_pushed(campaign: Campaign, ids: Iterator[int], count: int) -> None:
    """The next ``count`` leads of a chunk (``ids``, in the order sent) reached the platform."""
    taken = list(itertools.islice(ids, count))
    if not taken:
        return
    Lead.objects.filter(pk__in=taken).update(pushed_at=timezone.now())
    Campaign.objects.filter(pk=campaign.pk).update(sync_pushed=F("sync_pushed") + len(taken))
    campaign.refresh_from_db()
    _push_sync(campaign)


def campaign_sync_failed(*, campaign_id: int, message: str, final: bool) -> None:
    status = "failed" if final else "retrying"
    Campaign.objects.filter(pk=campaign_id).update(sync_status=status, sync_message=message[:300])
    campaign = Campaign.objects.get(pk=campaign_id)
    _push_sync(campaign)


def _push_sync(campaign: Campaign) -> None:
    live.campaign_sync_changed(campaign.pk)


# -- campaign forms helpers --------------------------------------------------------------------------


def default_window() -> tuple[time, time]:
    return time(9, 0), time(21, 0)


# -- why nothing is dialable (campaigns.blockers) ---------------------------------------------------


KEEP_COUNT_SECONDS = 24 * 3600
"""How long a worker's count is kept: a page asks for a new one after
:data:`blockers.FRESH_SECONDS`; one nobody looked at for a day is dropped."""


@dataclass(frozen=True)
class Counted:
    """A breakdown as the page shows it: ``breakdown`` (None until a first count is done), when
    it was counted, and whether a newer count is on its way."""

    breakdown: blockers.Breakdown | None
    at: datetime | None
    counting: bool


def _breakdown_key(campaign: Campaign) -> str:
    return _made_key("breakdown", campaign)


def _remaining(campaign: Campaign) -> int:
    counts = lead_counts([campaign.pk])[campaign.pk]
    return counts[Lead.Status.PENDING] + counts[Lead.Status.CALLBACK]


def campaign_breakdown_for_page(campaign: Campaign, *, again: bool = False) -> Counted:
    """The breakdown the campaign page shows: counted now for a campaign of up to
    :data:`blockers.INLINE_MAX` remaining leads, else the worker's last count, with a new one asked for
    when it is older than :data:`blockers.FRESH_SECONDS` (or ``again``: the supervisor asked)."""
    now = timezone.now()
    if _remaining(campaign) <= blockers.INLINE_MAX:
        return Counted(blockers.campaign_breakdown(campaign, now), now, counting=False)
    cached = cache.get(_breakdown_key(campaign))
    breakdown, at = cached if cached else (None, None)
    stale = at is None or again or (now - at).total_seconds() > blockers.FRESH_SECONDS
    if stale and cache.add(f"{_breakdown_key(campaign)}:counting", 1, timeout=blockers.COUNTING_SECONDS):
        tasks.campaign_breakdown.delay(campaign.pk)  # unless a count is already on its way
    return Counted(breakdown, at, counting=stale)


def campaign_breakdown_count_run(*, campaign_id: int) -> blockers.Breakdown | None:
    """The worker's count (``campaigns.tasks.campaign_breakdown``), kept for the page."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return None
    try:
        now = timezone.now()
        breakdown = blockers.campaign_breakdown(campaign, now)
        cache.set(_breakdown_key(campaign), (breakdown, now), timeout=KEEP_COUNT_SECONDS)
        return breakdown
    finally:
        cache.delete(f"{_breakdown_key(campaign)}:counting")
