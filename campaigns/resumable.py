"""Resumable uploads: a big sheet sent by the browser in pieces, with progress, that survives a
dropped connection (docs/import.md, "Resumable upload").

The protocol (``campaigns.views``, JSON both ways):

* ``start``: the file's name and size; refused in words when the size is 0 or over
  ``UPLOAD_MAX_BYTES``. Answers an id (a :class:`~campaigns.models.ResumableUpload` owned by the
  supervisor) and the piece size.
* ``append``: the bytes from ``offset``, which must be exactly what the server holds
  (``received``), else refused with the offset to send from; the first piece's head is checked
  as a form upload's is (a PNG is refused before 90 MB of it arrive). A piece is at most
  ``UPLOAD_CHUNK_BYTES`` and never runs past the declared size.
* ``status``: what the server holds, for a client resuming after a drop.
* ``finish``: once every byte is here, the assembled file goes through
  :func:`campaigns.services.upload_create`, the form upload's own service, so every limit and
  refusal (size, type by content, workbooks, empty, header only, cell, width) holds for it
  unchanged. Refused or not, the partial file is deleted; a finish asked again answers the same.

Only the supervisor who started an upload may add to it or finish it (another one's bytes must
not interleave); supervisors share campaigns, so the sheet it becomes is everyone's. The piece is
read into memory before the upload's row is locked, so no transaction waits on the network.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from campaigns import services, sheets
from campaigns.models import Campaign, ResumableUpload, SheetUpload

log = logging.getLogger("campaigns.uploads")


class Refused(services.ServiceError):
    """A refusal in words, with the HTTP status the view answers and what the client needs."""

    def __init__(self, message: str, status: int = 400, **extra: Any):
        super().__init__(message)
        self.status = status
        self.extra = extra


def partial_path(row: ResumableUpload) -> Path:
    folder = Path(settings.MEDIA_ROOT) / "sheets" / "partial"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{row.pk}.part"


def sweep() -> int:
    """Delete resumable uploads nobody added to for ``UPLOAD_RESUME_HOURS``, and their files."""
    old = ResumableUpload.objects.filter(
        updated_at__lt=timezone.now() - timedelta(hours=settings.UPLOAD_RESUME_HOURS)
    )
    gone = 0
    for row in old:
        partial_path(row).unlink(missing_ok=True)
        row.delete()
        gone += 1
    return gone


def start(*, campaign: Campaign, user: Any, name: str, size: Any) -> ResumableUpload:
    services.check_takes_sheets(campaign)
    name = Path(str(name or "sheet.csv").replace("\x00", "")).name[:255] or "sheet.csv"
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise Refused("Say the file's size in bytes (a whole number).")
    if size == 0:
        raise Refused("This file is empty.")
    if size > settings.UPLOAD_MAX_BYTES:
        raise Refused(sheets.size_refusal(size, settings.UPLOAD_MAX_BYTES), status=413)
    sweep()
    row = ResumableUpload.objects.create(campaign=campaign, user=user, name=name, size=size)
    partial_path(row).touch()
    return row


def get(*, campaign: Campaign, user: Any, upload_id: Any) -> ResumableUpload:
    """The caller's own resumable upload of ``campaign``: 404 for none, 403 for another's."""
    row = ResumableUpload.objects.filter(pk=upload_id, campaign=campaign).first()
    if row is None:
        raise Refused("No such upload (it may have expired): upload the file again.", status=404)
    if row.user_id != user.pk:
        raise Refused(
            "This upload was started by another supervisor: only they can continue it. Upload the file "
            "yourself to import it.",
            status=403,
        )
    return row


def status(row: ResumableUpload) -> dict[str, Any]:
    return {
        "id": str(row.pk),
        "name": row.name,
        "size": row.size,
        "offset": row.received,
        "chunk": settings.UPLOAD_CHUNK_BYTES,
        "done": _done_url(row),
    }


def _done_url(row: ResumableUpload) -> str | None:
    if row.upload_id is None:
        return None
    return reverse("supervisor:upload", args=[row.campaign_id, row.upload_id])


def _offset_refusal(offset: int, received: int) -> Refused:
    return Refused(
        f"This piece starts at byte {offset:,}, but the server holds {received:,} bytes of the file: "
        f"send it from byte {received:,}.",
        status=409,
        offset=received,
    )


def check_offset(row: ResumableUpload, offset: Any, length: int) -> int:
    """Refuse, before the piece is read, an offset that is not what the server holds and a piece
    too big or past the file's end."""
    if not isinstance(offset, str) or not offset.isdigit():
        raise Refused("Say where this piece starts (offset, a whole number of bytes).")
    start_at = int(offset)
    if row.upload_id is not None:
        raise Refused("This upload is complete already.", status=409, offset=row.received)
    if start_at != row.received:
        raise _offset_refusal(start_at, row.received)
    if length > settings.UPLOAD_CHUNK_BYTES:
        limit = sheets.human_size(settings.UPLOAD_CHUNK_BYTES)
        raise Refused(f"A piece may be {limit} at most; this one is {sheets.human_size(length)}.", status=413)
    if start_at + length > row.size:
        raise Refused(
            f"This piece runs past the file's end: the file was announced as {row.size:,} bytes.",
            offset=row.received,
        )
    return start_at


def append(row: ResumableUpload, offset: int, data: bytes) -> ResumableUpload:
    """Add ``data`` at ``offset`` (checked again under the row's lock: two requests with one
    offset cannot both land). Bytes past ``received`` left by a write that died are cut."""
    if not data:
        raise Refused("This piece is empty.")
    if offset == 0:
        try:
            sheets.check_head(
                data[: sheets.HEAD_BYTES], size=row.size, max_bytes=settings.UPLOAD_MAX_BYTES, workbooks=True
            )
        except sheets.SheetError as exc:
            _drop(row, f"refused at its first piece: {exc}")
            raise Refused(str(exc), status=415) from exc
    with transaction.atomic():
        row = ResumableUpload.objects.select_for_update().get(pk=row.pk)
        if row.received != offset:
            raise _offset_refusal(offset, row.received)
        with open(partial_path(row), "r+b") as handle:
            handle.truncate(offset)
            handle.seek(offset)
            handle.write(data)
        row.received = offset + len(data)
        row.save(update_fields=["received", "updated_at"])
    return row


def finish(row: ResumableUpload, *, user: Any) -> SheetUpload:
    """The whole file, through the form upload's service (every check of a form upload holds).
    A refusal deletes the partial upload: the file must be sent again, as a form upload's."""
    refusal = ""
    with transaction.atomic():
        row = ResumableUpload.objects.select_for_update().get(pk=row.pk)
        if row.upload_id is not None:
            return row.upload
        if row.received != row.size:
            raise Refused(
                f"The file is not all here yet: {row.received:,} of {row.size:,} bytes. Send the rest first.",
                status=409,
                offset=row.received,
            )
        try:
            with open(partial_path(row), "rb") as handle:
                upload = services.upload_create(
                    campaign=row.campaign, file=File(handle, name=row.name), user=user
                )
        except services.ServiceError as exc:
            refusal = str(exc)
        else:
            row.upload = upload
            row.save(update_fields=["upload", "updated_at"])
    if refusal:
        _drop(row, refusal)
        raise Refused(refusal)
    partial_path(row).unlink(missing_ok=True)
    return upload


def _drop(row: ResumableUpload, why: str) -> None:
    log.info("resumable upload %s (%r) dropped: %s", row.pk, row.name, why)
    partial_path(row).unlink(missing_ok=True)
    ResumableUpload.objects.filter(pk=row.pk).delete()
