"""Rendering at delivery: live events (``agentdesk.live``) into the HTML frames browsers swap in.

The consumers call these when an event reaches a socket, and the desk's views call
:func:`desk_panels` for a command's answer over HTTP, so every panel is rendered by one function
from the state committed at that moment. Each fragment is the page's own partial with its stable
element id and ``hx-swap-oob``; customer data is escaped by the templates.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.template.loader import render_to_string

from agentdesk import board, live, wallboard
from agentdesk.models import Agent
from agentdesk.selectors import desk_state
from calls.selectors import calls_on_desks
from campaigns.models import Campaign, SheetUpload
from campaigns.selectors import campaign_list

DESK_TEMPLATE = "desk/desk.html"
# The panels below the working area (the agent's day, callbacks, recent calls): a socket sends
# them in a frame of their own, after the rest (:func:`desk_event_frames`).
LOWER = (live.DAY, live.CALLBACKS, live.RECENT)
# What a desk event may carry besides its panels (live.desk_event).
EXTRAS = ("alert", "poll_attempt", "poll_delay", "form", "form_errors")


def desk_context(agent: Agent, **extra: Any) -> dict[str, Any]:
    return {**desk_state(agent=agent), **extra}


def desk_main(agent: Agent, **extra: Any) -> str:
    """The whole desk, as the inside of ``#desk-main`` (a command's answer over HTTP)."""
    return render_to_string(f"{DESK_TEMPLATE}#main", desk_context(agent, **extra))


def desk_panels(agent: Agent, panels: list[str], **extra: Any) -> str:
    """The named panels of ``agent``'s desk as out-of-band fragments. ``main`` (the whole desk)
    replaces the inside of ``#desk-main``; ``extra`` adds what the asking tab shows (an alert,
    a poll's counter, a form's errors)."""
    return _render_panels(panels, desk_context(agent, **extra, oob=True))


def _render_panels(panels: list[str], context: dict[str, Any]) -> str:
    parts = []
    for panel in panels:
        html = render_to_string(f"{DESK_TEMPLATE}#{panel}", context)
        if panel == live.MAIN:
            html = f'<div id="desk-main" hx-swap-oob="innerHTML">{html}</div>'
        parts.append(html)
    return "\n".join(parts)


def _panels(event: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    panels = list(event.get("panels") or [])
    if live.MAIN in panels:
        panels = [live.MAIN]  # the whole desk holds every other panel
    elif live.PREVIEW in panels and live.CALL not in panels:
        # The lead's card and its Dial and Skip buttons (the call panel) are drawn together: a
        # card drawn alone, after the lease committed, showed a lead whose Dial was still off
        # until the lease's own event came, and a D pressed in between did nothing.
        panels.append(live.CALL)
    extra = {key: event[key] for key in EXTRAS if event.get(key)}
    if extra.get("alert") and live.ALERT not in panels and live.MAIN not in panels:
        panels.append(live.ALERT)
    return panels, extra


def reads_the_desk(event: dict[str, Any]) -> bool:
    """Whether rendering ``event`` reads the database (a note alone does not)."""
    return _panels(event)[0] != [live.ALERT]


def desk_event(agent_id: int, event: dict[str, Any]) -> str:
    """A ``desk.changed`` event for one of the agent's sockets, in one frame (the first frame of a
    socket: the whole desk)."""
    return "\n".join(desk_event_frames(agent_id, event, split=False))


def desk_event_frames(agent_id: int, event: dict[str, Any], *, split: bool = True) -> Iterator[str]:
    """A ``desk.changed`` event as the frames a socket sends. An event that draws a lead (the
    whole desk, the preview) comes as two: the working area first (the presence, the lead, the
    call and the disposition, or the whole desk with its lower part kept as it is on screen),
    then the day, callbacks and recent calls. After a Save the next lead is on screen while the
    lists below are still being read and drawn (issue 16). Both frames are rendered from one
    read of the desk; the lower panels' queries run when their frame is drawn (``desk_state``'s
    lazy values). Any other event (a call's state, a presence) is one frame."""
    panels, extra = _panels(event)
    if panels == [live.ALERT]:
        # A note alone (a platform failure, a dial in doubt) needs no read of the desk.
        yield render_to_string(f"{DESK_TEMPLATE}#alert", {"alert": extra.get("alert"), "oob": True})
        return
    agent = Agent.objects.select_related("user").filter(pk=agent_id).first()
    if agent is None:
        return
    context = desk_context(agent, **extra, oob=True)
    frames = [panels]
    if split and panels == [live.MAIN]:
        frames = [panels, list(LOWER)]
        context["lower_later"] = True  # #desk-lower kept (hx-preserve) until its own frame
    elif split and live.PREVIEW in panels:
        frames = [[p for p in panels if p not in LOWER], [p for p in panels if p in LOWER]]
    for frame in frames:
        if frame:
            yield _render_panels(frame, context)


# -- supervisors ------------------------------------------------------------------------------------


def board_agent(event: dict[str, Any]) -> str:
    """The agent's row, then the totals row it changes."""
    rows = board.board_rows([event["agent"]])
    return board.render_row(rows[0], oob=True) + "\n" + board.render_totals() if rows else ""


def campaign_calls(event: dict[str, Any]) -> str:
    campaign = Campaign.objects.filter(pk=event["campaign"]).first()
    if campaign is None:
        return ""
    return render_to_string(
        "calls/supervisor.html#live_calls",
        {"campaign": campaign, "calls": calls_on_desks(campaign=campaign), "oob": True},
    )


def campaign_counts(event: dict[str, Any]) -> str:
    row = campaign_list().filter(pk=event["campaign"]).first()
    if row is None:
        return ""
    return render_to_string("supervisor/dashboard.html#campaign-row", {"campaign": row, "oob": True})


def campaign_sync(event: dict[str, Any]) -> str:
    campaign = Campaign.objects.filter(pk=event["campaign"]).first()
    if campaign is None:
        return ""
    return render_to_string("supervisor/campaign_detail.html#sync", {"campaign": campaign, "oob": True})


def upload_progress(event: dict[str, Any]) -> str:
    upload = SheetUpload.objects.filter(pk=event["upload"]).first()
    if upload is None:
        return ""
    return render_to_string("supervisor/upload.html#progress", {"upload": upload, "oob": True})


SUPERVISOR_RENDERERS = {
    live.BOARD_AGENT: board_agent,
    live.CAMPAIGN_CALLS: campaign_calls,
    live.CAMPAIGN_COUNTS: campaign_counts,
    live.CAMPAIGN_SYNC: campaign_sync,
    live.UPLOAD_PROGRESS: upload_progress,
}


def supervisor_event(event: dict[str, Any]) -> str:
    return SUPERVISOR_RENDERERS[event["type"]](event)


# -- the wallboard: which figure groups an event touches (agentdesk.wallboard) -----------------------

WALLBOARD_GROUPS = {
    live.BOARD_AGENT: (wallboard.AGENTS,),
    # The calls panel and sparkline, and the campaigns table (all campaigns: a campaign's first
    # call today adds its row).
    live.CAMPAIGN_CALLS: (wallboard.CALLS, wallboard.CAMPAIGNS),
    live.CAMPAIGN_COUNTS: (wallboard.CAMPAIGNS,),
}


def wallboard_event(event: dict[str, Any]) -> str:
    """An event for a wallboard socket: the figure groups it touches, or nothing."""
    groups = WALLBOARD_GROUPS.get(event["type"])
    return wallboard.render(*groups) if groups else ""
