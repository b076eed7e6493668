"""What the floor's figures mean: the one definition of a call placed, a connect, the contact rate,
a conversion, talk and wait time and calls in the last hour.

The wallboard (``agentdesk.wallboard``), the agent's day on the desk (``agentdesk.selectors``)
and the supervisors' reports (``campaigns.reports``) all count through here, so a figure cannot
mean one thing on the TV and another in a report:

- a **call** is a call that reached the platform: neither a preview nor a skip (``PLACED``);
- a **connect** is a call whose customer answered (``connected_at`` set), live or ended;
- the **contact rate** is connects out of calls, in percent, to one decimal (None before a call);
- a **conversion** is a call disposed with a disposition marked ``is_conversion``;
- **talk time** is the platform's figure (``talk_seconds``) when it sent one, else from connected
  to ended; a call still on the phone has none yet;
- **wait** is from dialed to connected, for connected calls;
- the **service level** is, of connected calls (with both times), the percent answered within
  the campaign's ``service_level_seconds`` of the dial (wait at most that), to one decimal (None
  without a target or before a connect); it meets its target at ``target_service_level`` or more;
- **calls in the last hour** are calls created in the hour before now.

Every figure is an aggregate over ``calls_call`` (``aggregates``), never a grouping of lead rows
(campaigns_lead is partitioned on PostgreSQL), and works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, IntegerField, Q, Sum, Value
from django.db.models.lookups import LessThanOrEqual

from calls.models import CallState

PLACED = ~Q(state__in=[CallState.PREVIEWING, CallState.SKIPPED])
CONNECTED = Q(connected_at__isnull=False)
CONVERSION = Q(disposition__is_conversion=True)
# Talk time from the platform's figure, else from the call's own times (never both).
_TALK_REPORTED = Q(talk_seconds__isnull=False)
_TALK_TIMED = Q(talk_seconds__isnull=True, connected_at__isnull=False, ended_at__isnull=False)
_WAITED = Q(connected_at__isnull=False, dialed_at__isnull=False)
# Answered within the call's campaign's service-level time (no time set: never counted).
_IN_TIME = _WAITED & Q(
    LessThanOrEqual(
        ExpressionWrapper(F("connected_at") - F("dialed_at"), output_field=DurationField()),
        ExpressionWrapper(
            ExpressionWrapper(F("campaign__service_level_seconds"), output_field=IntegerField())
            * Value(timedelta(seconds=1)),
            output_field=DurationField(),
        ),
    )
)


def last_hour(now: datetime) -> Q:
    return Q(created_at__gte=now - timedelta(hours=1))


def aggregates(*, now: datetime | None = None, service_level: bool = False) -> dict[str, Any]:
    """The aggregates behind :class:`CallFigures`, for ``.aggregate()`` or ``.annotate()`` over
    placed calls (filter with ``PLACED`` first). With ``now``, calls in the last hour too; with
    ``service_level``, connects answered in their campaign's time (a join to the campaign)."""
    out: dict[str, Any] = {
        "calls": Count("id"),
        "connected": Count("id", filter=CONNECTED),
        "conversions": Count("id", filter=CONVERSION),
        "talk_reported": Sum("talk_seconds", filter=_TALK_REPORTED),
        "talk_timed": Sum(F("ended_at") - F("connected_at"), filter=_TALK_TIMED),
        "talked": Count("id", filter=_TALK_REPORTED | _TALK_TIMED),
        "wait": Sum(F("connected_at") - F("dialed_at"), filter=_WAITED),
        "waited": Count("id", filter=_WAITED),
    }
    if service_level:
        out["in_time"] = Count("id", filter=_IN_TIME)
    if now is not None:
        out["last_hour"] = Count("id", filter=last_hour(now))
    return out


def _seconds(value: timedelta | int | float | None) -> float:
    if value is None:
        return 0.0
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


def contact_rate(calls: int, connected: int) -> float | None:
    """Connects out of calls, in percent to one decimal; None before the first call."""
    return round(100 * connected / calls, 1) if calls else None


def service_level(waited: int, in_time: int, seconds: int | None) -> float | None:
    """Connects answered within ``seconds`` of the dial out of connects, in percent to one
    decimal; None without a time set or before the first connect."""
    return round(100 * in_time / waited, 1) if seconds is not None and waited else None


@dataclass
class CallFigures:
    """One group's call figures (a campaign today, an agent's day, a report's row)."""

    calls: int = 0
    connected: int = 0
    conversions: int = 0
    talk_seconds: float = 0.0  # total talk time
    talked: int = 0  # calls with a talk time
    wait_seconds: float = 0.0  # total wait
    waited: int = 0
    in_time: int = 0  # connects answered within the campaign's service-level time
    last_hour: int = 0

    @classmethod
    def from_row(cls, row: dict[str, Any] | None) -> CallFigures:
        """From a row of :func:`aggregates` (None or an empty group: all zero)."""
        if not row:
            return cls()
        return cls(
            calls=row.get("calls") or 0,
            connected=row.get("connected") or 0,
            conversions=row.get("conversions") or 0,
            talk_seconds=_seconds(row.get("talk_reported")) + _seconds(row.get("talk_timed")),
            talked=row.get("talked") or 0,
            wait_seconds=_seconds(row.get("wait")),
            waited=row.get("waited") or 0,
            in_time=row.get("in_time") or 0,
            last_hour=row.get("last_hour") or 0,
        )

    def __add__(self, other: CallFigures) -> CallFigures:
        return CallFigures(
            *(getattr(self, name) + getattr(other, name) for name in self.__dataclass_fields__)
        )

    @property
    def contact_rate(self) -> float | None:
        return contact_rate(self.calls, self.connected)

    @property
    def avg_talk(self) -> timedelta | None:
        return timedelta(seconds=self.talk_seconds / self.talked) if self.talked else None

    @property
    def avg_wait(self) -> timedelta | None:
        return timedelta(seconds=self.wait_seconds / self.waited) if self.waited else None
