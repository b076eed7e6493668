"""The agent desktop. Views call services; reads go through selectors; every response is a
partial of ``desk/desk.html`` (the same partials the WebSocket pushes).

Commands are HTTP POSTs (never WebSocket messages, DESIGN.md "Live updates"). Refusals an agent
should read come back as the alert partial, retargeted to ``#desk-alert`` with status 200 so htmx
swaps it; permission failures are plain 403s.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from agentdesk import selectors, services
from agentdesk.models import Agent, Presence
from agentdesk.roles import agent_required
from campaigns.selectors import calling_window_status

log = logging.getLogger("agentdesk.desk")

SESSION_CAMPAIGN = "desk_campaign_id"
TEMPLATE = "desk/desk.html"


def _agent(request: HttpRequest) -> Agent:
    agent, _ = Agent.objects.select_related("user").get_or_create(user=request.user)
    return agent


def _campaign(request: HttpRequest, agent: Agent):
    return selectors.campaign_get_for_agent(agent=agent, campaign_id=request.session.get(SESSION_CAMPAIGN))


# Seconds an empty, Ready desk waits before its next look for a lead: the n-th empty answer
# waits POLL_DELAYS[n] (the last value from then on).
POLL_DELAYS = (5, 5, 10, 10, 20, 30)


def _state(request: HttpRequest, agent: Agent, **extra) -> dict:
    state = selectors.desk_state(agent=agent, campaign=_campaign(request, agent))
    state["campaigns"] = selectors.campaigns_for_agent(agent=agent)
    state.update(extra)
    return state


def _fragment(request: HttpRequest, partial: str, context: dict, *, status: int = 200) -> HttpResponse:
    return HttpResponse(render_to_string(f"{TEMPLATE}#{partial}", context, request=request), status=status)


def _main(request: HttpRequest, agent: Agent, **extra) -> HttpResponse:
    """The whole desk (every panel), swapped into ``#desk-main``."""
    response = _fragment(request, "main", _state(request, agent, **extra))
    return _retarget(request, response, "desk-main", "innerHTML")


def _retarget(request: HttpRequest, response: HttpResponse, target_id: str, swap: str) -> HttpResponse:
    """Point the swap at ``#target_id`` unless the request already targets it. htmx resolves a
    retarget relative to the requesting element, which a push may have replaced meanwhile (the
    push is sent on commit, before this response): a detached element finds nothing."""
    if getattr(request, "htmx", None) and request.htmx.target == target_id:
        return response
    return reswap(retarget(response, f"#{target_id}"), swap)


def _alert(request: HttpRequest, message: str, code: str = "", *, level: str = "error") -> HttpResponse:
    response = _fragment(request, "alert", {"alert": {"message": message, "code": code, "level": level}})
    return _retarget(request, response, "desk-alert", "outerHTML")


def _refusal(request: HttpRequest, exc: Exception) -> HttpResponse:
    """DeskError / DeskRefusal / ProviderError -> the alert, in plain words with the code."""
    return _alert(request, getattr(exc, "message", str(exc)), getattr(exc, "code", "") or "")


def _refusals():
    from calls.providers.base import ProviderError

    errors: list[type[Exception]] = [services.DeskRefusal, ProviderError]
    try:
        from calls.services import DeskError

        errors.append(DeskError)
    except ImportError:
        pass
    return tuple(errors)


def _fill_preview(agent: Agent, campaign) -> None:
    """When the agent is Ready with nothing on the desk, lease our next lead, or ask the platform
    (Huawei/Genesys hand out their own previews)."""
    if campaign is None or agent.presence != Presence.READY:
        return
    state_call = selectors.desk_state(agent=agent, campaign=campaign)
    if state_call["call"] is not None or state_call["lead"] is not None:
        return
    if campaign.platform in services.PLATFORM_SESSION_PLATFORMS:
        services.request_platform_offer(agent=agent, campaign=campaign)
    else:
        services.lead_next_for_agent(agent=agent, campaign=campaign)


def _then_next_lead(agent: Agent, action, campaign_of) -> None:
    """Run a command that takes the lead off the desk (dispose, skip), then fill the preview.

    Our own next lead is leased in the command's transaction: the pushes the command renders
    when it commits then show the new lead. Leased afterwards, a push rendered in between (an
    empty desk: no call, no lead) could reach the browser after this response and blank the
    call panel under the lead, Dial disabled. A platform's offer is asked for after the commit:
    that is an HTTP request, and the offer arrives as its own push."""
    with transaction.atomic():
        action()
        agent.refresh_from_db()  # the engine moved Wrap-up back to Ready
        campaign = campaign_of()
        ours = campaign is not None and campaign.platform not in services.PLATFORM_SESSION_PLATFORMS
        if ours:
            _fill_preview(agent, campaign)
    if not ours:
        _fill_preview(agent, campaign)


@agent_required
@require_GET
def desk(request: HttpRequest) -> HttpResponse:
    agent = _agent(request)
    if "campaign" in request.GET:
        # A bookmarkable desk for one campaign (also how a keyboard user lands on it).
        _select(request, agent, request.GET["campaign"])
        return redirect("desk:desk")
    return render(request, TEMPLATE, _state(request, agent))


@agent_required
@require_GET
def state(request: HttpRequest) -> HttpResponse:
    """The whole desk, re-read after every WebSocket (re)connect."""
    return _fragment(request, "main", _state(request, _agent(request)))


def _select(request: HttpRequest, agent: Agent, campaign_id) -> None:
    previous = _campaign(request, agent)
    campaign = selectors.campaign_get_for_agent(agent=agent, campaign_id=campaign_id)
    services.agent_select_campaign(agent=agent, campaign=campaign, previous=previous)
    if campaign is None:
        request.session.pop(SESSION_CAMPAIGN, None)
    else:
        request.session[SESSION_CAMPAIGN] = campaign.pk


@agent_required
@require_POST
def select_campaign(request: HttpRequest) -> HttpResponse:
    agent = _agent(request)
    try:
        _select(request, agent, request.POST.get("campaign"))
    except _refusals() as exc:
        return _refusal(request, exc)
    return _main(request, agent)


@agent_required
@require_POST
def set_presence(request: HttpRequest) -> HttpResponse:
    agent = _agent(request)
    presence = request.POST.get("presence", "")
    if presence == "toggle":
        presence = Presence.NOT_READY if agent.presence == Presence.READY else Presence.READY
    reason = request.POST.get("reason", "")
    if (
        request.POST.get("campaign")
        and str(request.session.get(SESSION_CAMPAIGN)) != request.POST["campaign"]
    ):
        # The picker's value travels with the command, so a quick pick-then-Ready cannot race.
        _select(request, agent, request.POST["campaign"])
    campaign = _campaign(request, agent)
    if presence == Presence.READY and campaign is None:
        return _alert(request, "Pick a campaign first.", level="info")
    try:
        services.agent_set_presence(agent=agent, presence=presence, reason=reason, campaign=campaign)
        _fill_preview(agent, campaign)
    except _refusals() as exc:
        response = _main(request, agent, alert=_alert_dict(exc))
        return response
    return _main(request, agent)


def _alert_dict(exc: Exception) -> dict:
    return {
        "message": getattr(exc, "message", str(exc)),
        "code": getattr(exc, "code", "") or "",
        "level": "error",
    }


@agent_required
@require_POST
def next_lead(request: HttpRequest) -> HttpResponse:
    """Polled while Ready with an empty desk: a lead may have become due, or an offer arrived.

    Each empty answer asks again a little later (:data:`POLL_DELAYS`), so an idle desk does not
    ask the platform for a preview every 5 s all shift; any action starts over at 5 s."""
    agent = _agent(request)
    campaign = _campaign(request, agent)
    try:
        attempt = max(0, int(request.POST.get("attempt", "0")))
    except ValueError:
        attempt = 0
    poll = {"poll_attempt": attempt + 1, "poll_delay": POLL_DELAYS[min(attempt + 1, len(POLL_DELAYS) - 1)]}
    try:
        _fill_preview(agent, campaign)
    except _refusals() as exc:
        return _main(request, agent, alert=_alert_dict(exc), **poll)
    return _main(request, agent, **poll)


@agent_required
@require_POST
def renew(request: HttpRequest) -> HttpResponse:
    """Keep the held lead while the desk is open (every 20 s, also from a background tab)."""
    services.lease_renew(agent=_agent(request))
    return HttpResponse(status=204)


@agent_required
@require_POST
def dial(request: HttpRequest, lead_id: int) -> HttpResponse:
    from calls.services import call_dial

    agent = _agent(request)
    lead = selectors.lead_get_for_agent(agent=agent, lead_id=lead_id)
    try:
        call_dial(agent=agent, lead=lead)
    except _refusals() as exc:
        return _main(request, agent, alert=_alert_dict(exc))
    return _main(request, agent)


@agent_required
@require_POST
def skip(request: HttpRequest, lead_id: int) -> HttpResponse:
    agent = _agent(request)
    lead = selectors.lead_get_for_agent(agent=agent, lead_id=lead_id)
    try:
        _then_next_lead(
            agent,
            lambda: services.lead_skip(agent=agent, lead=lead, reason=request.POST.get("reason", "")),
            lambda: _campaign(request, agent),
        )
    except _refusals() as exc:
        return _main(request, agent, alert=_alert_dict(exc))
    return _main(request, agent)


@agent_required
@require_POST
def end(request: HttpRequest, call_id: int) -> HttpResponse:
    from calls.selectors import call_get_for_agent
    from calls.services import call_end

    agent = _agent(request)
    call = call_get_for_agent(agent=agent, call_id=call_id)
    try:
        call_end(agent=agent, call=call)
    except _refusals() as exc:
        return _main(request, agent, alert=_alert_dict(exc))
    return _main(request, agent)


def parse_callback(value: str, lead) -> tuple[datetime | None, str]:
    """A ``datetime-local`` value read in the lead's local time. Refuses the past and times the
    lead's calling window does not allow (the browser's min/max are only a hint)."""
    value = (value or "").strip()
    if not value:
        return None, "Pick a callback time."
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        return None, "That callback time is not a date and time."
    clock = selectors.lead_clock(lead)
    at = naive.replace(tzinfo=ZoneInfo(clock.zone)) if naive.tzinfo is None else naive
    if at <= timezone.now():
        return None, "The callback time is in the past."
    allowed, reason = calling_window_status(lead, at)
    if not allowed:
        return (
            None,
            f"Outside the lead's calling window: {reason}" if reason else "Outside the calling window.",
        )
    return at, ""


@agent_required
@require_POST
def dispose(request: HttpRequest) -> HttpResponse:
    from calls.selectors import call_get_for_agent
    from calls.services import call_dispose

    agent = _agent(request)
    call = call_get_for_agent(agent=agent, call_id=_int(request.POST.get("call")))
    notes = request.POST.get("notes", "").strip()
    disposition = call.campaign.dispositions.filter(pk=_int(request.POST.get("disposition"))).first()
    errors: dict[str, str] = {}
    callback_at = None
    if disposition is None:
        errors["disposition"] = "Pick a disposition."
    elif disposition.outcome == disposition.Outcome.CALLBACK:
        callback_at, problem = parse_callback(request.POST.get("callback_at", ""), call.lead)
        if problem:
            errors["callback_at"] = problem
    if errors:
        state = _state(request, agent)
        state.update(
            form_errors=errors,
            form={
                "disposition": request.POST.get("disposition", ""),
                "notes": notes,
                "callback_at": request.POST.get("callback_at", ""),
            },
        )
        response = _fragment(request, "dispose", state)
        return _retarget(request, response, "desk-dispose", "outerHTML")
    try:
        _then_next_lead(
            agent,
            lambda: call_dispose(
                agent=agent, call=call, disposition=disposition, notes=notes, callback_at=callback_at
            ),
            lambda: _campaign(request, agent) or call.campaign,
        )
    except _refusals() as exc:
        return _main(request, agent, alert=_alert_dict(exc))
    return _main(request, agent)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
