"""Reads for calls. :func:`call_get_for_agent` is the one permission gate for a call."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from calls.models import LIVE_STATES, Call, CallState, PlatformSession
from calls.providers import platforms_with

# States in which the call is still on the agent's desk (live, or waiting for a disposition).
DESK_STATES = [*LIVE_STATES, CallState.ENDED, CallState.FAILED]


CALL_RELATED = ("lead", "campaign", "account", "agent", "disposition")


def call_get_for_agent(*, agent, call_id: int, related: tuple[str, ...] = CALL_RELATED) -> Call:
    """The call, if it is ``agent``'s. 404 when there is none, 403 when it is another agent's.
    ``related``: the relations read with it (a caller that locks the call again reads less)."""
    call = Call.objects.select_related(*related).filter(pk=call_id).first()
    if call is None:
        raise Http404("No such call.")
    if call.agent_id != agent.id:
        raise PermissionDenied("This call is not yours.")
    return call


def live_call_for_agent(*, agent) -> Call | None:
    """The agent's call on the desk: live, or ended and not yet disposed (newest first). Its lead
    shares its campaign (read once, with the account); a call on the desk has no disposition."""
    call = (
        Call.objects.select_related("lead", "campaign__account")
        .filter(agent=agent, state__in=DESK_STATES)
        .order_by("-created_at", "-id")
        .first()
    )
    if call is not None and call.lead.campaign_id == call.campaign_id:
        call.lead.campaign = call.campaign
    return call


def calls_on_desks(*, campaign) -> list[Call]:
    """The campaign's calls on agents' desks now (live, or ended and awaiting a disposition)."""
    return list(
        Call.objects.select_related("agent__user", "lead")
        .filter(campaign=campaign, state__in=DESK_STATES)
        .order_by("agent__user__username", "-id")
    )


def last_call_for_lead(lead) -> Call | None:
    return Call.objects.filter(lead=lead).order_by("-created_at", "-id").first()


def calls_for_lead(lead, limit: int = 20) -> list[Call]:
    """Past attempts shown on the lead card."""
    return list(
        Call.objects.filter(lead=lead).select_related("agent__user", "disposition").order_by("-id")[:limit]
    )


def signed_in_sessions(platforms: tuple[str, ...] | None = None) -> list[PlatformSession]:
    """Signed-in sessions on active accounts of ``platforms`` (default: every platform with agent
    sessions): those ``run_streams`` keeps a loop for."""
    if platforms is None:
        platforms = platforms_with("agent_sessions")
    return list(
        PlatformSession.objects.select_related("agent__user", "account")
        .filter(
            status=PlatformSession.Status.SIGNED_IN, account__platform__in=platforms, account__is_active=True
        )
        .order_by("id")
    )
