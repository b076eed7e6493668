"""Reads for the agent desk. Permission gates live here (an agent only sees their own work).

:func:`desk_state` is the one read behind the desk page, its fragments and every live event's
rendering, so a pushed panel and a command's answer can never disagree.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Q, Subquery
from django.http import Http404
from django.utils import timezone

from agentdesk.models import (
    SKIP_OTHER_MAX,
    SKIP_REASONS,
    Agent,
    AuditEntry,
    Presence,
    PresenceSpan,
    not_ready_reasons,
)
from calls import figures
from calls.compliance import dial_checks, on_dnc_list
from calls.models import LIVE_STATES, NOTES_EDIT_WINDOW, Call, CallState, PlatformSession
from calls.providers import provider_class
from calls.selectors import calls_for_lead, live_call_for_agent
from campaigns.models import AgentMapping, Campaign, Lead, desk_keys
from campaigns.selectors import calling_window_status, lead_local_time, next_window_opening


def lead_get_for_agent(*, agent: Agent, lead_id: int) -> Lead:
    """The lead, if it is leased to ``agent``. 404 when there is none; 403 when it is leased to
    someone else or to nobody (an agent only acts on the lead the desk handed them)."""
    lead = Lead.objects.select_related("campaign", "campaign__account").filter(pk=lead_id).first()
    if lead is None:
        raise Http404("No such lead.")
    if lead.lease_owner_id != agent.id:
        raise PermissionDenied("This lead is not yours.")
    return lead


def campaigns_for_agent(*, agent: Agent) -> list[Campaign]:
    """Active campaigns this agent may work (all-agents and per-lead mappings, or listed)."""
    return list(
        Campaign.objects.select_related("account")
        .filter(status=Campaign.Status.ACTIVE, account__is_active=True)
        .filter(Q(agent_mapping__in=[AgentMapping.ALL_AGENTS, AgentMapping.INLINE]) | Q(agents=agent))
        .distinct()
        .order_by("name")
    )


def campaign_get_for_agent(*, agent: Agent, campaign_id: int | str | None) -> Campaign | None:
    try:
        wanted = int(campaign_id or 0)
    except (TypeError, ValueError):
        return None
    return next((c for c in campaigns_for_agent(agent=agent) if c.pk == wanted), None)


@dataclass(frozen=True)
class LeadClock:
    """The lead's local time and whether its calling window allows a call now."""

    local: datetime
    zone: str
    allowed: bool
    reason: str


def lead_clock(lead: Lead, at: datetime | None = None) -> LeadClock:
    at = at or timezone.now()
    local = lead_local_time(lead, at)
    allowed, reason = calling_window_status(lead, at)
    return LeadClock(local=local, zone=str(local.tzinfo), allowed=allowed, reason=reason)


def _once(compute):
    """A value computed at its first use and kept (a template may read it more than once)."""
    return functools.cache(compute)


def lead_current_for_agent(*, agent: Agent) -> Lead | None:
    """The lead this agent holds (an unexpired lease), if any, with whether its number is on
    the do-not-call list now (the desk's dial checks)."""
    return (
        Lead.objects.select_related("campaign", "campaign__account")
        .annotate(on_dnc_list=on_dnc_list())
        .filter(lease_owner=agent, lease_expires_at__gt=timezone.now())
        .order_by("-lease_expires_at")
        .first()
    )


def desk_campaign(*, agent: Agent) -> Campaign | None:
    """The campaign the agent works (``Agent.desk_campaign``), while they may still work it."""
    if agent.desk_campaign_id is None:
        return None
    return campaign_get_for_agent(agent=agent, campaign_id=agent.desk_campaign_id)


# -- the agent's day, callbacks and recent calls ---------------------------------------------------

# The presences whose time the day panel adds up, in the order it shows them.
DAY_PRESENCES = (Presence.READY, Presence.NOT_READY, Presence.WRAP_UP, Presence.ON_CALL)


def clock_text(seconds: int | float | None) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour (desk.js ticks the same format)."""
    seconds = max(0, int(seconds or 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class AgentDay:
    """What the agent did today (from midnight in the server's TIME_ZONE)."""

    since: datetime
    calls: int = 0
    connects: int = 0
    talk_seconds: int = 0
    conversions: int = 0
    # Seconds in each presence today, up to ``now`` (the current state's included).
    seconds: dict[str, int] = field(default_factory=dict)

    def times(self) -> list[tuple[str, str, int, str]]:
        """(presence, label, seconds, as text) for each presence the panel shows."""
        return [
            (p.value, p.label, self.seconds.get(p.value, 0), clock_text(self.seconds.get(p.value, 0)))
            for p in DAY_PRESENCES
        ]

    @property
    def talk_text(self) -> str:
        return clock_text(self.talk_seconds)


def span_seconds(started_at: datetime, ended_at: datetime | None, since: datetime, until: datetime) -> float:
    """How much of a presence span (open: ``ended_at`` empty, still going at ``until``) falls
    between ``since`` and ``until``, in seconds."""
    start, end = max(started_at, since), min(ended_at or until, until)
    return max(0.0, (end - start).total_seconds())


def agent_day(*, agent: Agent, now: datetime | None = None) -> AgentDay:
    """The agent's day so far: calls, connects, talk time and conversions as ``calls.figures``
    defines them, and the time spent in each presence, from the presence log (``PresenceSpan``).
    Two queries."""
    now = now or timezone.now()
    since = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    day = AgentDay(since=since)
    calls = figures.CallFigures.from_row(
        Call.objects.filter(figures.PLACED, agent=agent, created_at__gte=since).aggregate(
            **figures.aggregates()
        )
    )
    day.calls, day.connects, day.conversions = calls.calls, calls.connected, calls.conversions
    day.talk_seconds = int(calls.talk_seconds)
    seconds: dict[str, float] = defaultdict(float)
    spans = PresenceSpan.objects.filter(agent=agent, started_at__lt=now).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=since)
    )
    for presence, started_at, ended_at in spans.values_list("presence", "started_at", "ended_at"):
        seconds[presence] += span_seconds(started_at, ended_at, since, now)
    day.seconds = {presence: int(value) for presence, value in seconds.items()}
    return day


def callbacks_booked_by(agent: Agent):
    """Leads waiting for a callback this agent booked: the lead's latest booking is the agent's
    own disposition (a later booking by someone else makes it theirs). Not read from the lead's
    ``next_attempt_at``: the queue clears it once the callback is due (docs/desk.md, "The queue")."""
    latest = (
        Call.objects.filter(lead=OuterRef("lead"), state=CallState.DISPOSED, callback_at__isnull=False)
        .order_by("-disposed_at", "-id")
        .values("id")[:1]
    )
    return Call.objects.filter(
        agent=agent,
        state=CallState.DISPOSED,
        callback_at__isnull=False,
        lead__status=Lead.Status.CALLBACK,
        id=Subquery(latest),
    )


@dataclass(frozen=True)
class Callback:
    lead: Lead
    due_at: datetime
    zone: str
    due: bool
    mine_now: bool  # on this agent's desk at the moment

    @property
    def place(self) -> str:
        """The zone's city, as a narrow column shows it ("Los Angeles" for America/Los_Angeles)."""
        return self.zone.rsplit("/", 1)[-1].replace("_", " ")


def callbacks_for_agent(*, agent: Agent, limit: int = 12, now: datetime | None = None) -> list[Callback]:
    """The callbacks this agent booked, soonest first, with the lead's zone for showing the due
    time in it."""
    now = now or timezone.now()
    calls = (
        callbacks_booked_by(agent)
        .select_related("lead", "lead__campaign")
        .order_by("callback_at", "id")[:limit]
    )
    out = []
    for call in calls:
        lead = call.lead
        zone = lead_local_time(lead, call.callback_at).tzinfo
        out.append(
            Callback(
                lead=lead,
                due_at=call.callback_at,
                zone=str(zone),
                due=call.callback_at <= now,
                mine_now=lead.lease_owner_id == agent.id
                and lead.lease_expires_at is not None
                and lead.lease_expires_at > now,
            )
        )
    return out


def callback_get_for_agent(*, agent: Agent, lead_id: int) -> Lead:
    """The lead, if it waits for a callback ``agent`` booked. 404 otherwise: another agent's
    callback, a lead called since, or no such lead, are all "not one of your callbacks"."""
    lead_ids = callbacks_booked_by(agent).filter(lead_id=lead_id).values("lead_id")
    lead = Lead.objects.select_related("campaign", "campaign__account").filter(pk__in=lead_ids).first()
    if lead is None:
        raise Http404("Not one of your callbacks.")
    return lead


@dataclass(frozen=True)
class RecentCall:
    call: Call
    editable: bool  # the notes may still be corrected
    edit_until: datetime | None


def recent_calls_for_agent(*, agent: Agent, limit: int = 10, now: datetime | None = None) -> list[RecentCall]:
    """The agent's last calls (skips are not calls), newest first, and whether each one's notes
    may still be corrected (:data:`NOTES_EDIT_WINDOW` after its disposition)."""
    now = now or timezone.now()
    calls = (
        Call.objects.filter(agent=agent)
        .exclude(state=CallState.SKIPPED)
        .select_related("lead", "disposition")
        .order_by("-created_at", "-id")[:limit]
    )
    out = []
    for call in calls:
        until = call.disposed_at + NOTES_EDIT_WINDOW if call.disposed_at else None
        out.append(RecentCall(call=call, editable=until is not None and now < until, edit_until=until))
    return out


def keyed_dispositions(campaign: Campaign) -> list:
    """The campaign's dispositions in their order, each with ``desk_key``: the digit that picks it."""
    rows = list(campaign.dispositions.all())
    for row, key in zip(rows, desk_keys(row.key for row in rows), strict=True):
        row.desk_key = key
    return rows


def desk_state(*, agent: Agent) -> dict[str, Any]:
    """Everything the desk shows: presence, the campaign, the held lead, the call on the desk (live
    or waiting for a disposition), the dial-time checks and the campaign's dispositions."""
    call = live_call_for_agent(agent=agent)
    lead = call.lead if call is not None else lead_current_for_agent(agent=agent)
    campaigns = campaigns_for_agent(agent=agent)
    campaign = next((c for c in campaigns if c.pk == agent.desk_campaign_id), None)
    if campaign is None and lead is not None:
        campaign = lead.campaign
    if lead is not None and campaign is not None and lead.campaign_id != campaign.pk and call is None:
        lead = None
    checks = dial_checks(lead) if lead is not None and call is None else None
    clock = lead_clock(lead) if lead is not None else None
    sessions = campaign is not None and provider_class(campaign.platform).agent_sessions
    session = None
    if sessions:
        session = PlatformSession.objects.filter(agent=agent, account_id=campaign.account_id).first()
    live = call is not None and call.state in LIVE_STATES
    if live:
        shown_presence, shown_label = "on_call", "On call"
    elif call is not None and call.state in (CallState.ENDED, CallState.FAILED):
        shown_presence, shown_label = "wrap_up", "Wrap-up"
    else:
        shown_presence, shown_label = agent.presence, agent.get_presence_display()
    # Wrap-up runs from the end of the call on the desk until its disposition.
    wrap_up_since = (call.ended_at or call.state_changed_at or call.created_at) if call and not live else None
    custom = []
    if lead is not None:
        names = list(lead.campaign.custom_field_names or [])
        extra = [k for k in (lead.custom_fields or {}) if k not in names]
        custom = [(name, (lead.custom_fields or {}).get(name, "")) for name in [*names, *extra]]
    return {
        "agent": agent,
        "presence": shown_presence,
        "presence_label": shown_label,
        "presence_reasons": not_ready_reasons(campaign),
        "skip_reasons": SKIP_REASONS,
        "skip_other_max": SKIP_OTHER_MAX,
        "campaign": campaign,
        "platform_session": session,
        "lead": lead,
        "lead_clock": clock,
        "custom_fields": custom,
        # Read only when a rendered panel shows them (templates call a callable): a call-state
        # frame (the call and presence panels) skips the history and the dispositions.
        "history": _once(
            lambda: [c for c in calls_for_lead(lead, limit=8) if call is None or c.pk != call.pk]
        )
        if lead
        else [],
        "call": call,
        "call_live": live,
        "checks": checks,
        "dial_blocked": checks.first_refusal if checks is not None and not checks.ok else None,
        "dispositions": _once(lambda: keyed_dispositions(campaign)) if campaign is not None else [],
        "waiting_for_platform": campaign is not None and provider_class(campaign.platform).offers_leads,
        # With no lead to offer: when the window opens for ready leads outside it (a lead in
        # Sydney sleeps while New York works), read only when the empty preview is rendered.
        "window_opens": _once(lambda: next_window_opening(campaign, timezone.now()))
        if campaign is not None and lead is None
        else None,
        "campaigns": campaigns,
        "is_ready": agent.presence == Presence.READY,
        # The disposition form starts from the call's saved draft (a reload, a second tab).
        "form": dict(call.draft or {}) if call is not None else {},
        "alert": None,
        "now": timezone.now(),
        # The lower panels, read only when rendered (a call-state frame skips them).
        "day": _once(lambda: agent_day(agent=agent)),
        "callbacks": _once(lambda: callbacks_for_agent(agent=agent)),
        "recent": _once(lambda: recent_calls_for_agent(agent=agent)),
        "wrap_up_limit": call.campaign.wrap_up_limit_seconds if call is not None else None,
        "wrap_up_limit_text": clock_text(call.campaign.wrap_up_limit_seconds) if call is not None else "",
        "wrap_up_since": wrap_up_since,
        "wrap_up_over": bool(
            wrap_up_since
            and call.campaign.wrap_up_limit_seconds
            and (timezone.now() - wrap_up_since).total_seconds() > call.campaign.wrap_up_limit_seconds
        ),
        "in_state_text": clock_text(
            (timezone.now() - agent.presence_changed_at).total_seconds() if agent.presence_changed_at else 0
        ),
    }


def audit_entries(*, agent: Agent | None = None, campaign: Campaign | None = None, action: str = ""):
    """The audit trail, newest first, narrowed to one agent, campaign or action when given (each
    walks one of ``AuditEntry``'s indexes)."""
    entries = AuditEntry.objects.select_related("agent__user", "campaign")
    if agent is not None:
        entries = entries.filter(agent=agent)
    if campaign is not None:
        entries = entries.filter(campaign=campaign)
    if action:
        entries = entries.filter(action=action)
    return entries.order_by("-at", "-id")
