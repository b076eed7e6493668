"""The agent desktop. Views call services; reads go through selectors; every panel is rendered by
``agentdesk.fragments`` (the same partials of ``desk/desk.html`` the page renders).

Commands are HTTP POSTs (never WebSocket messages, DESIGN.md "Live updates"). Where the answer
goes is one rule, on the server (docs/desk.md "One ordering rule"):

- a desk tab names itself (``X-Desk-Tab``, minted with the page): its answer is an event to that
  tab's socket, rendered at delivery behind every event before it, and the HTTP answer is an
  empty 204. The socket is the only thing that draws the desk, so nothing rendered earlier can
  land later and undo a newer state. Every command that changes the desk sends its events as
  one batch when it ends (``live.one_batch``), its answer to the tab folded into the event every
  desk of the agent gets: a Save is one render per desk, not three, and a Ready one, not five;
- a request that names no tab (no socket: a script, a test client) gets the panels over HTTP.

Refusals an agent should read come back as the alert panel; permission failures are 403s (a
command on a lead no longer on the desk also draws the asking tab its desk, saying so).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from agentdesk import fragments, live, selectors, services
from agentdesk.consumers import TAB_RE
from agentdesk.forms import DisposeForm
from agentdesk.models import Agent, Presence
from agentdesk.roles import agent_required
from calls import services as engine
from calls.providers.base import ProviderError
from calls.selectors import call_get_for_agent
from campaigns.models import Lead

log = logging.getLogger("agentdesk.desk")

TEMPLATE = "desk/desk.html"
TAB_HEADER = "X-Desk-Tab"
# What a command can be refused with, in words for the agent.
REFUSALS = (engine.Refusal, ProviderError)

# Seconds an empty, Ready desk waits before its next look for a lead: the n-th empty answer
# waits POLL_DELAYS[n] (the last value from then on).
POLL_DELAYS = (5, 5, 10, 10, 20, 30)


def _agent(request: HttpRequest) -> Agent:
    """The signed-in agent's row, read with the user (``roles.SignedInBackend``); made the first
    time an agent opens the desk."""
    try:
        return request.user.agent
    except Agent.DoesNotExist:
        agent, _ = Agent.objects.get_or_create(user=request.user)
        return agent


def _tab(request: HttpRequest) -> str:
    tab = request.headers.get(TAB_HEADER, "")
    return tab if TAB_RE.match(tab) else ""


def _answer(request: HttpRequest, agent: Agent, *panels: str, **extra: Any) -> HttpResponse:
    """Answer a desk command with ``panels`` (default: the whole desk): through the asking tab's
    socket when it names one, else over HTTP (see the module docstring)."""
    panels = panels or (live.MAIN,)
    tab = _tab(request)
    if tab:
        live.answer_tab(agent.pk, tab, live.desk_event(panels, **extra))
        return HttpResponse(status=204)
    agent.refresh_from_db()
    if panels == (live.MAIN,):
        response = HttpResponse(fragments.desk_main(agent, **extra))
        if request.htmx and request.htmx.target != "desk-main":
            response = reswap(retarget(response, "#desk-main"), "innerHTML")
        return response
    # Out-of-band panels only: the requesting element's own target is left alone.
    return reswap(HttpResponse(fragments.desk_panels(agent, list(panels), **extra)), "none")


def _refused(request: HttpRequest, agent: Agent, exc: Exception, **extra: Any) -> HttpResponse:
    """Refusal / ProviderError -> the whole desk with the alert, in plain words with the code."""
    message = getattr(exc, "message", str(exc))
    level = getattr(exc, "level", "error")  # a ProviderError has none: a failure
    return _answer(request, agent, alert=live.alert(message, getattr(exc, "code", "") or "", level), **extra)


@agent_required
@require_GET
def desk(request: HttpRequest) -> HttpResponse:
    agent = _agent(request)
    if "campaign" in request.GET:
        # A bookmarkable desk for one campaign (also how a keyboard user lands on it).
        with contextlib.suppress(REFUSALS):  # on a call: the desk shows the call's campaign
            _select(agent, request.GET["campaign"])
        return redirect("desk:desk")
    return render(request, TEMPLATE, {**fragments.desk_context(agent), "tab": uuid.uuid4().hex})


@agent_required
@require_GET
def state(request: HttpRequest) -> HttpResponse:
    """The whole desk over HTTP (a client without the socket; the socket starts with it)."""
    return HttpResponse(fragments.desk_main(_agent(request)))


def _select(agent: Agent, campaign_id) -> None:
    campaign = selectors.campaign_get_for_agent(agent=agent, campaign_id=campaign_id)
    services.agent_select_campaign(agent=agent, campaign=campaign)


@agent_required
@require_POST
@live.one_batch()
def select_campaign(request: HttpRequest) -> HttpResponse:
    agent = _agent(request)
    try:
        _select(agent, request.POST.get("campaign"))
    except REFUSALS as exc:
        return _refused(request, agent, exc)
    return _answer(request, agent)


@agent_required
@require_POST
@live.one_batch()
def set_presence(request: HttpRequest) -> HttpResponse:
    agent = _agent(request)
    presence = request.POST.get("presence", "")
    if presence == "toggle":
        presence = Presence.NOT_READY if agent.presence == Presence.READY else Presence.READY
    try:
        picked = request.POST.get("campaign")
        if picked and str(agent.desk_campaign_id) != picked:
            # The picker's value travels with the command, so a quick pick-then-Ready cannot race.
            _select(agent, picked)
        campaign = selectors.desk_campaign(agent=agent)
        services.agent_set_presence(
            agent=agent, presence=presence, reason=request.POST.get("reason", ""), campaign=campaign
        )
        services.desk_fill(agent=agent, campaign=campaign)
    except REFUSALS as exc:
        return _refused(request, agent, exc)
    return _answer(request, agent)


@agent_required
@require_POST
@live.one_batch()
def next_lead(request: HttpRequest) -> HttpResponse:
    """Polled while Ready with an empty desk: a lead may have become due, or an offer arrived.

    Each empty answer asks again a little later (:data:`POLL_DELAYS`), so an idle desk does not
    ask the platform for a preview every 5 s all shift; any action starts over at 5 s."""
    agent = _agent(request)
    try:
        attempt = max(0, int(request.POST.get("attempt", "0")))
    except ValueError:
        attempt = 0
    poll = {"poll_attempt": attempt + 1, "poll_delay": POLL_DELAYS[min(attempt + 1, len(POLL_DELAYS) - 1)]}
    try:
        services.desk_fill(agent=agent)
    except REFUSALS as exc:
        return _refused(request, agent, exc, **poll)
    return _answer(request, agent, live.PREVIEW, live.CALL, live.DISPOSE, **poll)


@agent_required
@require_POST
def renew(request: HttpRequest) -> HttpResponse:
    """Keep the held lead while the desk is open (every 20 s, also from a background tab)."""
    services.lease_renew(agent=_agent(request))
    return HttpResponse(status=204)


def _held_lead(request: HttpRequest, agent: Agent, lead_id: int) -> Lead:
    """The lead a command names, if the agent holds it. One no longer on their desk (skipped or
    saved in another tab, its lease expired, the frame saying so still on its way) stays a 403,
    and the asking tab is drawn the desk as it is, with a note: the click is not lost silently."""
    try:
        return selectors.lead_get_for_agent(agent=agent, lead_id=lead_id)
    except PermissionDenied:
        if tab := _tab(request):
            gone = live.alert("That lead is no longer on your desk.", "gone", level="info")
            live.answer_tab(agent.pk, tab, live.desk_event([live.MAIN], alert=gone))
        raise


@agent_required
@require_POST
@live.one_batch()
def dial(request: HttpRequest, lead_id: int) -> HttpResponse:
    agent = _agent(request)
    lead = _held_lead(request, agent, lead_id)
    try:
        engine.call_dial(agent=agent, lead=lead)
    except REFUSALS as exc:
        return _refused(request, agent, exc)
    return _answer(request, agent)


@agent_required
@require_POST
@live.one_batch()
def skip(request: HttpRequest, lead_id: int) -> HttpResponse:
    agent = _agent(request)
    lead = _held_lead(request, agent, lead_id)
    try:
        services.lead_skip_then_next(
            agent=agent, lead=lead, reason=request.POST.get("reason", ""), other=request.POST.get("other", "")
        )
    except REFUSALS as exc:
        return _refused(request, agent, exc)
    return _answer(request, agent)


@agent_required
@require_POST
@live.one_batch()
def end(request: HttpRequest, call_id: int) -> HttpResponse:
    agent = _agent(request)
    call = call_get_for_agent(agent=agent, call_id=call_id)
    try:
        engine.call_end(agent=agent, call=call)
    except REFUSALS as exc:
        return _refused(request, agent, exc)
    return _answer(request, agent)


@agent_required
@require_POST
def draft(request: HttpRequest) -> HttpResponse:
    """Keep the disposition form as the agent fills it (the desk posts it a moment after each
    change). Nothing to show: 204, or 400 with the reason."""
    agent = _agent(request)
    call = call_get_for_agent(agent=agent, call_id=DisposeForm.call_id(request.POST))
    try:
        engine.call_save_draft(
            agent=agent,
            call=call,
            notes=request.POST.get("notes", ""),
            disposition=request.POST.get("disposition", ""),
            callback_at=request.POST.get("callback_at", ""),
        )
    except engine.Refusal as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain")
    return HttpResponse(status=204)


@agent_required
@require_POST
@live.one_batch()
def dispose(request: HttpRequest) -> HttpResponse:
    agent = _agent(request)
    # The form reads the campaign (its dispositions) and the lead (a callback's zone); the
    # disposition reads the call again, locked.
    call = call_get_for_agent(
        agent=agent, call_id=DisposeForm.call_id(request.POST), related=("lead", "campaign")
    )
    form = DisposeForm(request.POST, call=call)
    if not form.is_valid():
        values = {name: request.POST.get(name, "") for name in ("disposition", "notes", "callback_at")}
        return _answer(request, agent, live.DISPOSE, form=values, form_errors=form.first_errors())
    try:
        services.call_dispose_then_next(agent=agent, call=call, **form.cleaned_data)
    except REFUSALS as exc:
        return _refused(request, agent, exc)
    return _answer(request, agent)


@agent_required
@require_POST
@live.one_batch()
def take_callback(request: HttpRequest, lead_id: int) -> HttpResponse:
    """One of the agent's callbacks from the list onto the desk, previewed for the normal Dial."""
    agent = _agent(request)
    try:
        services.callback_take(agent=agent, lead_id=lead_id)
    except REFUSALS as exc:
        return _refused(request, agent, exc)
    return _answer(request, agent)


@agent_required
@require_POST
@live.one_batch()
def correct_notes(request: HttpRequest, call_id: int) -> HttpResponse:
    """Correct a recent call's notes (a few minutes after its disposition)."""
    agent = _agent(request)
    call = call_get_for_agent(agent=agent, call_id=call_id)
    try:
        engine.call_correct_notes(agent=agent, call=call, notes=request.POST.get("notes", ""))
    except engine.Refusal as exc:
        # The recent calls and the alert only: a disposition being typed is left alone.
        return _answer(
            request, agent, live.RECENT, live.ALERT, alert=live.alert(exc.message, exc.code, exc.level)
        )
    return _answer(request, agent, live.RECENT)
