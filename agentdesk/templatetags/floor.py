"""Durations for the supervisor pages: a time in state that the page keeps ticking."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()


@register.filter
def duration(value: float | int | timedelta | None) -> str:
    """Seconds (or a timedelta) as ``m:ss``, ``h:mm:ss`` from an hour; "—" when unknown."""
    if value is None or value == "":
        return "—"
    seconds = int(value.total_seconds() if isinstance(value, timedelta) else float(value))
    seconds = max(0, seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.simple_tag
def ticker(since: datetime | None) -> str:
    """How long since ``since``, as a ``<time>`` that ``static/js/supervisor.js`` ticks every
    second. The server states the seconds elapsed at rendering (``data-elapsed``), measured on its
    own clock against its own timestamp, so a browser whose clock is off still counts right."""
    if since is None:
        return "—"
    seconds = max(0, int((timezone.now() - since).total_seconds()))
    return format_html(
        '<time class="ticker" datetime="{}" data-elapsed="{}">{}</time>',
        since.isoformat(),
        seconds,
        duration(seconds),
    )
