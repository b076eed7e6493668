"""Reads for the agent desk. Permission gates live here (an agent only sees their own work).

:func:`desk_state` is the one read behind the desk page, its fragments and every live event's
rendering, so a pushed panel and a command's answer can never disagree.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from agentdesk.models import NOT_READY_REASONS, SKIP_REASONS, Agent, Presence
from calls.compliance import dial_checks
from calls.models import LIVE_STATES, CallState, PlatformSession
from calls.providers import provider_class
from calls.selectors import calls_for_lead, live_call_for_agent
from campaigns.models import AgentMapping, Campaign, Lead
from campaigns.selectors import calling_window_status, lead_local_time


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
    """The lead this agent holds (an unexpired lease), if any."""
    return (
        Lead.objects.select_related("campaign", "campaign__account")
        .filter(lease_owner=agent, lease_expires_at__gt=timezone.now())
        .order_by("-lease_expires_at")
        .first()
    )


def desk_campaign(*, agent: Agent) -> Campaign | None:
    """The campaign the agent works (``Agent.desk_campaign``), while they may still work it."""
    if agent.desk_campaign_id is None:
        return None
    return campaign_get_for_agent(agent=agent, campaign_id=agent.desk_campaign_id)


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
    custom = []
    if lead is not None:
        names = list(lead.campaign.custom_field_names or [])
        extra = [k for k in (lead.custom_fields or {}) if k not in names]
        custom = [(name, (lead.custom_fields or {}).get(name, "")) for name in [*names, *extra]]
    return {
        "agent": agent,
        "presence": shown_presence,
        "presence_label": shown_label,
        "presence_reasons": NOT_READY_REASONS,
        "skip_reasons": SKIP_REASONS,
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
        "dispositions": _once(lambda: list(campaign.dispositions.all())) if campaign is not None else [],
        "waiting_for_platform": campaign is not None and provider_class(campaign.platform).offers_leads,
        "campaigns": campaigns,
        "is_ready": agent.presence == Presence.READY,
        # The disposition form starts from the call's saved draft (a reload, a second tab).
        "form": dict(call.draft or {}) if call is not None else {},
        "alert": None,
        "now": timezone.now(),
    }
