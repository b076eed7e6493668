"""The supervisors' wallboard: the floor at a glance, on a TV, today.

Three figure groups, each read with a fixed number of queries whatever the number of agents,
calls or campaigns (``tests/agentdesk/test_wallboard.py`` counts them):

- ``agents``: every agent by presence, with the time in that presence (one query);
- ``calls``: the calls in progress, and a sparkline of calls placed per 15 minutes today (two);
- ``campaigns``: per campaign, leads done / remaining / in progress, and today's calls: contact
  rate, conversions, calls in the last hour, average talk and wait, the answer-time service
  level, each against the campaign's targets (three).

Live: ``SupervisorConsumer`` on a wallboard socket re-renders the group an event touches
(``fragments.wallboard_event``); no polling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, F, Q
from django.db.models.functions import ExtractHour, ExtractMinute
from django.template.loader import render_to_string
from django.utils import timezone

from agentdesk.models import AGENTS_GROUP, Agent, Presence
from calls import figures as call_figures
from calls.figures import PLACED
from calls.models import LIVE_STATES, Call
from campaigns.models import Campaign, Lead
from campaigns.selectors import lead_counts

TEMPLATE = "supervisor/wallboard.html"
AGENTS, CALLS, CAMPAIGNS = "agents", "calls", "campaigns"
# Which presences the board shows, in the order a floor manager reads them.
STATE_ORDER = [Presence.ON_CALL, Presence.WRAP_UP, Presence.READY, Presence.NOT_READY, Presence.OFFLINE]
LEADS_DONE = [Lead.Status.DONE, Lead.Status.EXHAUSTED, Lead.Status.DNC]
LEADS_REMAINING = [Lead.Status.PENDING, Lead.Status.CALLBACK]
BUCKET_MINUTES = 15
SPARK_WIDTH, SPARK_HEIGHT = 960, 120
BAR_WIDTH = 600


def start_of_day(now: datetime | None = None) -> datetime:
    return timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)


# -- agents ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateColumn:
    state: str
    label: str
    agents: list[Agent]


def agents_by_state() -> list[StateColumn]:
    """Every agent (not supervisors) by presence, longest in it first (one query)."""
    agents = list(
        Agent.objects.select_related("user")
        .filter(user__groups__name=AGENTS_GROUP)
        .order_by(F("presence_changed_at").asc(nulls_last=True), "user__username")
    )
    labels = dict(Presence.choices)
    return [
        StateColumn(state, labels[state], [a for a in agents if a.presence == state]) for state in STATE_ORDER
    ]


# -- calls ----------------------------------------------------------------------------------------


def calls_in_progress() -> list[Call]:
    """Live calls, longest in their state first (one query). No customer data is shown on a TV:
    agent, campaign, state and time only."""
    return list(
        Call.objects.select_related("agent__user", "campaign")
        .filter(state__in=LIVE_STATES)
        .order_by(F("state_changed_at").asc(nulls_last=True), "id")
    )


@dataclass(frozen=True)
class Spark:
    buckets: list[int]  # calls placed per 15 minutes, midnight to now
    bars: list[dict]  # x, y, width, height of each bar, in the SVG's own units
    peak: int
    width: int = SPARK_WIDTH
    height: int = SPARK_HEIGHT


def calls_per_quarter_hour(now: datetime | None = None) -> Spark:
    """Calls placed today per 15 minutes (one query, grouped by the local hour and minute)."""
    now = timezone.localtime(now)
    start = start_of_day(now)
    rows = (
        Call.objects.filter(PLACED, created_at__gte=start, created_at__lte=now)
        .annotate(h=ExtractHour("created_at"), m=ExtractMinute("created_at"))
        .values("h", "m")
        .annotate(n=Count("id"))
    )
    count = (now.hour * 60 + now.minute) // BUCKET_MINUTES + 1
    buckets = [0] * count
    for row in rows:
        index = (row["h"] * 60 + row["m"]) // BUCKET_MINUTES
        if 0 <= index < count:
            buckets[index] += row["n"]
    peak = max(buckets, default=0)
    slots = 24 * 60 // BUCKET_MINUTES  # the whole day's width, so the chart fills as it goes
    step = SPARK_WIDTH / slots
    bars = []
    for index, n in enumerate(buckets):
        height = 0 if not peak else round(n / peak * (SPARK_HEIGHT - 4), 1)
        bars.append(
            {
                "x": round(index * step, 1),
                "y": round(SPARK_HEIGHT - height, 1),
                "width": round(step * 0.8, 1),
                "height": height,
                "n": n,
                "at": (start + timedelta(minutes=index * BUCKET_MINUTES)).strftime("%H:%M"),
            }
        )
    return Spark(buckets=buckets, bars=bars, peak=peak)


# -- campaigns ------------------------------------------------------------------------------------


@dataclass
class CampaignFigures:
    campaign: Campaign
    done: int = 0
    remaining: int = 0
    in_progress: int = 0
    calls: int = 0
    connected: int = 0
    conversions: int = 0
    calls_last_hour: int = 0
    avg_talk: timedelta | None = None
    avg_wait: timedelta | None = None
    waited: int = 0
    in_time: int = 0
    bar: dict = field(default_factory=dict)

    @property
    def leads(self) -> int:
        return self.done + self.remaining + self.in_progress

    @property
    def contact_rate(self) -> float | None:
        """Connected calls out of calls placed today, in percent; None before the first call."""
        return call_figures.contact_rate(self.calls, self.connected)

    @property
    def target(self) -> int | None:
        return self.campaign.target_contact_rate

    @property
    def target_met(self) -> bool | None:
        """None with no target or no call yet (nothing to judge)."""
        if self.target is None or self.contact_rate is None:
            return None
        return self.contact_rate >= self.target

    @property
    def service_level(self) -> float | None:
        """Connects answered within the campaign's time, in percent (``calls.figures``)."""
        return call_figures.service_level(self.waited, self.in_time, self.campaign.service_level_seconds)

    @property
    def service_level_met(self) -> bool | None:
        """None with no target or no connect yet (nothing to judge)."""
        target = self.campaign.target_service_level
        if target is None or self.service_level is None:
            return None
        return self.service_level >= target


def _bar(figures: CampaignFigures) -> dict:
    """Widths of the done / in progress / remaining segments of the campaign's bar."""
    total = figures.leads
    widths = [round(BAR_WIDTH * n / total, 1) if total else 0 for n in (figures.done, figures.in_progress)]
    return {
        "width": BAR_WIDTH,
        "done": widths[0],
        "progress_x": widths[0],
        "progress": widths[1],
        "remaining_x": round(widths[0] + widths[1], 1),
        "remaining": round(BAR_WIDTH - widths[0] - widths[1], 1) if total else BAR_WIDTH,
    }


def campaign_figures(now: datetime | None = None) -> list[CampaignFigures]:
    """Active campaigns, and any other with calls today, with today's figures (three queries)."""
    now = now or timezone.now()
    calls = {
        row["campaign"]: call_figures.CallFigures.from_row(row)
        for row in Call.objects.filter(PLACED, created_at__gte=start_of_day(now))
        .values("campaign")
        .annotate(**call_figures.aggregates(now=now, service_level=True))
    }
    campaigns = list(
        Campaign.objects.filter(Q(status=Campaign.Status.ACTIVE) | Q(pk__in=list(calls))).order_by("name")
    )
    figures = {c.pk: CampaignFigures(campaign=c) for c in campaigns}
    for pk, counts in lead_counts(list(figures)).items():
        item = figures[pk]
        item.done = sum(counts[status] for status in LEADS_DONE)
        item.remaining = sum(counts[status] for status in LEADS_REMAINING)
        item.in_progress = counts[Lead.Status.IN_PROGRESS]
    for pk, item in figures.items():
        row = calls.get(pk)
        if row:
            item.calls, item.connected = row.calls, row.connected
            item.conversions, item.calls_last_hour = row.conversions, row.last_hour
            item.avg_talk, item.avg_wait = row.avg_talk, row.avg_wait
            item.waited, item.in_time = row.waited, row.in_time
        item.bar = _bar(item)
    return list(figures.values())


# -- rendering ------------------------------------------------------------------------------------


def context(*groups: str) -> dict:
    """What the named figure groups need (all of them by default)."""
    groups = groups or (AGENTS, CALLS, CAMPAIGNS)
    data: dict = {}
    if AGENTS in groups:
        data["columns"] = agents_by_state()
    if CALLS in groups:
        data["live_calls"] = calls_in_progress()
        data["spark"] = calls_per_quarter_hour()
    if CAMPAIGNS in groups:
        data["figures"] = campaign_figures()
    return data


def render(*groups: str) -> str:
    """The named groups as out-of-band fragments of the wallboard page."""
    data = {**context(*groups), "oob": True}
    return "\n".join(render_to_string(f"{TEMPLATE}#{group}", data) for group in groups)
