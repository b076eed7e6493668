"""Stops a file over ``UPLOAD_MAX_BYTES`` while Django parses the request, before its bytes reach a
temporary file (the first of ``FILE_UPLOAD_HANDLERS``).

The CSRF middleware parses a POST before any view runs, so a limit checked in the view would come
after a 2 GB body had been written to ``/tmp``. This handler skips such a file instead (the other
fields of the form are still read, the CSRF token among them) and leaves the reason on the
request for the view to show: :func:`refusal`.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import HttpRequest

from campaigns import sheets

log = logging.getLogger("campaigns.uploads")

# A multipart body is the file plus boundaries, part headers and the CSRF token: well under this.
ENVELOPE_BYTES = 16 * 1024


def refusal(request: HttpRequest) -> str | None:
    """Why this request's file was skipped, if it was (read after ``request.FILES``)."""
    return getattr(request, "upload_refusal", None)


class SizeLimitUploadHandler(FileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.limit = settings.UPLOAD_MAX_BYTES
        self.body_length = content_length or 0  # a chunked body has none: the count below decides

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        if self.body_length > self.limit + ENVELOPE_BYTES:
            self._refuse(sheets.size_refusal(self.body_length, self.limit))

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.limit:
            self._refuse(f"This file is over {sheets.human_size(self.limit)}, the limit.")
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler stores the file

    def _refuse(self, message: str) -> None:
        request = self.request
        log.warning(
            "upload refused: path=%s user=%s file=%r: %s",
            getattr(request, "path", ""),
            getattr(getattr(request, "user", None), "pk", None),
            (self.file_name or "")[:255],
            message,
        )
        request.upload_refusal = message  # type: ignore[union-attr]
        raise SkipFile(message)
