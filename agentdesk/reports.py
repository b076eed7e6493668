"""Supervisors' reports (``/supervisor/reports/``): a date range, in the supervisor's time zone,
grouped by day, campaign or agent.

Each row: calls, connects, contact rate, conversions, talk time (total and average) as
``calls.figures`` defines them (the wallboard counts through the same module), the number of calls
per disposition, wrap-up and Not-ready time from the presence log (``PresenceSpan``), and the
callbacks booked and kept. A call belongs to the day (in the report's zone), campaign and agent of
its ``created_at``; a callback is *booked* by a disposed call with a callback time and *kept*
when its agent (the one the callback is due to) dialed the lead again afterwards.

Presence is an agent's, not a campaign's: grouped by campaign, wrap-up and Not-ready time are
not attributed (shown as "—"). Five queries whatever the range, all over ``calls_call`` and the
presence log, never grouping lead rows (campaigns_lead is partitioned on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, F, OuterRef, Q
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from agentdesk.models import Agent, Presence, PresenceSpan
from agentdesk.selectors import span_seconds
from calls import figures
from calls.figures import CallFigures
from calls.models import Call, CallState
from campaigns import csvsafe
from campaigns.models import Campaign

DAY, CAMPAIGN, AGENT = "day", "campaign", "agent"
GROUPS = [(DAY, "Day"), (CAMPAIGN, "Campaign"), (AGENT, "Agent")]
DEFAULT_DAYS = 7
MAX_DAYS = 366
PRESENCES = (Presence.WRAP_UP, Presence.NOT_READY)
CHART_WIDTH, CHART_HEIGHT, CHART_LABELS = 720, 200, 28


@dataclass
class Row:
    key: Any  # a date, a campaign's or an agent's id; None for the total
    label: str
    calls: CallFigures = field(default_factory=CallFigures)
    dispositions: dict[str, int] = field(default_factory=dict)
    # Seconds per presence; None where presence is not attributed (grouped by campaign).
    presence: dict[str, float] | None = field(default_factory=dict)
    callbacks_booked: int = 0
    callbacks_kept: int = 0
    disposition_cells: list[int] = field(default_factory=list)  # counts in the report's column order
    kind: str = ""
    campaign_url: str = ""
    export_url: str = ""  # the campaign's results export over the same days

    @property
    def slug(self) -> str:
        """The row's id on the page: ``day-2026-12-01``, ``campaign-3``, ``agent-7``, ``total``."""
        if self.key is None:
            return "total"
        return f"day-{self.key.isoformat()}" if isinstance(self.key, date) else f"{self.kind}-{self.key}"

    @property
    def wrap_up(self) -> float | None:
        return None if self.presence is None else self.presence.get(Presence.WRAP_UP, 0.0)

    @property
    def not_ready(self) -> float | None:
        return None if self.presence is None else self.presence.get(Presence.NOT_READY, 0.0)

    def add(self, other: Row) -> None:
        self.calls = self.calls + other.calls
        for name, n in other.dispositions.items():
            self.dispositions[name] = self.dispositions.get(name, 0) + n
        if self.presence is not None and other.presence is not None:
            for name, seconds in other.presence.items():
                self.presence[name] = self.presence.get(name, 0.0) + seconds
        self.callbacks_booked += other.callbacks_booked
        self.callbacks_kept += other.callbacks_kept


@dataclass
class Report:
    group: str
    date_from: date
    date_to: date
    zone: ZoneInfo
    rows: list[Row]
    total: Row
    disposition_names: list[str]
    chart: dict

    @property
    def group_label(self) -> str:
        return dict(GROUPS)[self.group]

    def header(self) -> list[str]:
        return [
            self.group_label,
            "Calls",
            "Connects",
            "Contact rate %",
            "Conversions",
            "Talk seconds",
            "Average talk seconds",
            "Wrap-up seconds",
            "Not ready seconds",
            "Callbacks booked",
            "Callbacks kept",
            *self.disposition_names,
        ]

    def csv_cells(self, row: Row) -> list[object]:
        calls = row.calls

        def whole(seconds: float | timedelta | None) -> object:
            if seconds is None:
                return ""
            return int(seconds.total_seconds() if isinstance(seconds, timedelta) else seconds)

        return [
            row.label,
            calls.calls,
            calls.connected,
            "" if calls.contact_rate is None else calls.contact_rate,
            calls.conversions,
            whole(calls.talk_seconds),
            whole(calls.avg_talk),
            whole(row.wrap_up),
            whole(row.not_ready),
            row.callbacks_booked,
            row.callbacks_kept,
            *row.disposition_cells,
        ]

    def csv_lines(self) -> Iterator[str]:
        """The table as CSV, one line at a time (every cell through ``campaigns.csvsafe``)."""
        yield from csvsafe.lines([self.header(), *(self.csv_cells(row) for row in [*self.rows, self.total])])

    @property
    def filename(self) -> str:
        return f"report-{self.group}-{self.date_from.isoformat()}-{self.date_to.isoformat()}.csv"


def period(date_from: date, date_to: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """From local midnight of ``date_from`` to local midnight after ``date_to``, in ``zone``."""
    return day_start(date_from, zone), day_start(date_to + timedelta(days=1), zone)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


def _days(date_from: date, date_to: date) -> list[date]:
    return [date_from + timedelta(days=n) for n in range((date_to - date_from).days + 1)]


def _group_by(group: str, zone: ZoneInfo):
    if group == DAY:
        return TruncDate("created_at", tzinfo=zone)
    return F("campaign_id") if group == CAMPAIGN else F("agent_id")


def build(
    *, group: str, date_from: date, date_to: date, zone: ZoneInfo, now: datetime | None = None
) -> Report:
    now = now or timezone.now()
    start, end = period(date_from, date_to, zone)
    calls = Call.objects.filter(figures.PLACED, created_at__gte=start, created_at__lt=end).annotate(
        grp=_group_by(group, zone)
    )
    rows: dict[Any, Row] = {}

    def row(key: Any) -> Row:
        if key not in rows:
            rows[key] = Row(key=key, label="", kind=group, presence=None if group == CAMPAIGN else {})
        return rows[key]

    if group == DAY:
        for day in _days(date_from, date_to):
            row(day)
    for item in calls.values("grp").annotate(**figures.aggregates()).order_by():
        row(item["grp"]).calls = CallFigures.from_row(item)
    names: dict[str, int] = {}
    for item in (
        calls.filter(disposition__isnull=False)
        .values("grp", "disposition__name")
        .annotate(n=Count("id"))
        .order_by()
    ):
        row(item["grp"]).dispositions[item["disposition__name"]] = item["n"]
        names[item["disposition__name"]] = names.get(item["disposition__name"], 0) + item["n"]
    kept = Call.objects.filter(
        figures.PLACED,
        lead_id=OuterRef("lead_id"),
        agent_id=OuterRef("agent_id"),
        created_at__gt=OuterRef("disposed_at"),
    )
    for item in (
        calls.filter(state=CallState.DISPOSED, callback_at__isnull=False)
        .annotate(kept=Exists(kept))
        .values("grp")
        .annotate(booked=Count("id"), kept_n=Count("id", filter=Q(kept=True)))
        .order_by()
    ):
        found = row(item["grp"])
        found.callbacks_booked, found.callbacks_kept = item["booked"], item["kept_n"]
    if group != CAMPAIGN:
        _presence(group, row, start=start, end=min(end, now), zone=zone)
    _label(group, rows, export_query=urlencode({"date_from": date_from, "date_to": date_to}))
    ordered = sorted(rows.values(), key=lambda r: r.key if group == DAY else (r.label.lower(), r.key))
    total = Row(key=None, label="Total", presence=None if group == CAMPAIGN else {})
    for item in ordered:
        total.add(item)
    disposition_names = sorted(names, key=lambda name: (-names[name], name.lower()))
    for item in [*ordered, total]:
        item.disposition_cells = [item.dispositions.get(name, 0) for name in disposition_names]
    return Report(
        group=group,
        date_from=date_from,
        date_to=date_to,
        zone=zone,
        rows=ordered,
        total=total,
        disposition_names=disposition_names,
        chart=chart(ordered),
    )


def _presence(group: str, row, *, start: datetime, end: datetime, zone: ZoneInfo) -> None:
    """Wrap-up and Not-ready seconds from the presence log, cut at the range's ends (and now) and,
    by day, at each local midnight."""
    if end <= start:
        return
    spans = (
        PresenceSpan.objects.filter(presence__in=PRESENCES, started_at__lt=end)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start))
        .values_list("agent_id", "presence", "started_at", "ended_at")
    )
    for agent_id, presence, started_at, ended_at in spans:
        # (key, since, until) pieces of the range the span may fall in: the whole range for an
        # agent; by day, only the local days the span touches (not every day of the range).
        if group == AGENT:
            pieces = [(agent_id, start, end)]
        else:
            first = max(started_at, start).astimezone(zone).date()
            last = min(ended_at or end, end).astimezone(zone).date()
            pieces = [
                (day, max(day_start(day, zone), start), min(day_start(day + timedelta(days=1), zone), end))
                for day in _days(first, last)
            ]
        for key, since, until in pieces:
            seconds = span_seconds(started_at, ended_at, since, until)
            if seconds:
                target = row(key).presence
                target[presence] = target.get(presence, 0.0) + seconds


def _label(group: str, rows: dict[Any, Row], *, export_query: str) -> None:
    if group == DAY:
        for key, item in rows.items():
            item.label = key.isoformat()
        return
    if group == CAMPAIGN:
        names = dict(Campaign.objects.filter(pk__in=list(rows)).values_list("pk", "name"))
        for key, item in rows.items():
            item.label = names.get(key, f"Campaign {key}")
            item.campaign_url = reverse("supervisor:campaign", args=[key])
            item.export_url = reverse("supervisor:campaign_export", args=[key]) + "?" + export_query
        return
    names = dict(Agent.objects.filter(pk__in=list(rows)).values_list("pk", "user__username"))
    for key, item in rows.items():
        item.label = names.get(key, f"Agent {key}")


def chart(rows: list[Row]) -> dict:
    """Bars of calls with connects inside them, one pair per row, in the SVG's own units."""
    peak = max((r.calls.calls for r in rows), default=0)
    plot = CHART_HEIGHT - CHART_LABELS
    slot = CHART_WIDTH / max(1, len(rows))
    bars = []
    for index, item in enumerate(rows):
        heights = [
            0 if not peak else round(n / peak * (plot - 4), 1)
            for n in (item.calls.calls, item.calls.connected)
        ]
        x = round(index * slot + slot * 0.1, 1)
        bars.append(
            {
                "x": x,
                "width": round(slot * 0.8, 1),
                "calls_y": round(plot - heights[0], 1),
                "calls_height": heights[0],
                "connects_y": round(plot - heights[1], 1),
                "connects_height": heights[1],
                "label_x": round(index * slot + slot / 2, 1),
                "label": item.label if len(item.label) <= 14 else item.label[:13] + "…",
                "title": f"{item.label}: {item.calls.calls} calls, {item.calls.connected} connects",
            }
        )
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "plot": plot,
        "label_y": CHART_HEIGHT - 8,
        "bars": bars,
        "peak": peak,
    }
