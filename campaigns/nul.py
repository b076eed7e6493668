"""NUL, the one character no text column takes (here, beside the sheets that bring most of it;
the calls engine's callbacks and the project's middleware use it too): PostgreSQL refuses it in ``text`` and ``jsonb``
(raw or as the JSON escape ``\\u0000``), so it is dealt with once, where input enters.

- Form and query input (a person typing, or an attacker): :class:`StripNulMiddleware` drops it
  from every value before a view or form reads it.
- Text kept to be shown again (a platform's raw callback, a sheet's issue report): :func:`shown`
  turns it into the symbol for NUL, so a reader sees that one was there.
- Sheet cells headed for the lead table are stripped by the importer's COPY path
  (``campaigns.rowcheck``), which renders them anyway.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, QueryDict

NUL = "\x00"
SYMBOL = "\u2400"  # ␀
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def shown(text: str) -> str:
    """``text`` with each NUL (raw, or as a JSON escape) as the symbol for one."""
    return text.replace(NUL, SYMBOL).replace("\\u0000", "\\u" + f"{ord(SYMBOL):04x}")


def _stripped(query: QueryDict) -> QueryDict:
    if not any(NUL in value for _, values in query.lists() for value in values):
        return query
    clean = QueryDict(mutable=True, encoding=query.encoding)
    for key, values in query.lists():
        clean.setlist(key.replace(NUL, ""), [value.replace(NUL, "") for value in values])
    clean._mutable = False
    return clean


class StripNulMiddleware:
    """Drops NUL from every query and form value (never from uploaded files' content)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.GET = _stripped(request.GET)
        if request.method == "POST" and request.content_type in _FORM_TYPES:
            # Form bodies only: reading request.POST of any other body would consume nothing,
            # but a JSON or raw body is the view's to read as it arrived.
            request.POST = _stripped(request.POST)
        return self.get_response(request)
