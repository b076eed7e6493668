"""Events out: what the calls engine tells the desks and the supervisors, after each commit.

Small dicts through :mod:`agentdesk.live` (catalogued in docs/events.md); the receivers render
what they show from the committed state when the event arrives. Nothing here renders, and
nothing here knows the desk's views or selectors.
"""

from __future__ import annotations

from agentdesk import live
from calls.models import Call


def call_changed(call: Call, *, presence_moved: bool = False) -> None:
    """A call's state moved: the agent's call panel (its buttons) and the presence it shows, and
    the live-calls table of the campaign's page. Nothing else on the desk: the disposition panel
    keeps the notes typed during the call, and the day, callbacks and recent calls change only
    on a presence change, a disposition or a correction. ``presence_moved``: the move changed the
    agent's presence too (dialing puts them on call, the end in wrap-up), so the day's times
    move, in this one frame."""
    panels = [live.CALL, live.PRESENCE]
    if presence_moved:
        panels.append(live.DAY)
    live.desk_changed(call.agent_id, *panels)
    live.campaign_calls_changed(call.campaign_id)


def call_details_arrived(call: Call) -> None:
    """Details a platform sent after the call's last move (a terminal callback's talk time after
    the disposition): the agent's day and recent calls, and the campaign's figures, count them."""
    if call.agent_id:
        live.desk_changed(call.agent_id, live.DAY, live.RECENT)
    live.campaign_calls_changed(call.campaign_id)


def call_left_desk(call: Call) -> None:
    """A call was disposed: the whole desk moves on (the next lead, an empty disposition), and
    the agent's day, callbacks and recent calls count it."""
    live.desk_changed(
        call.agent_id,
        live.PREVIEW,
        live.CALL,
        live.DISPOSE,
        live.PRESENCE,
        live.DAY,
        live.CALLBACKS,
        live.RECENT,
    )
    live.campaign_calls_changed(call.campaign_id)


def presence_changed(agent_id: int) -> None:
    live.desk_changed(agent_id, live.PRESENCE, live.DAY)


def presence_set_by_platform(agent_id: int, message: str) -> None:
    """The platform changed the agent's state (a supervisor on the platform, the phone): the
    presence, the preview (Ready starts looking for a lead, Not ready stops) and why."""
    live.desk_changed(
        agent_id,
        live.PRESENCE,
        live.PREVIEW,
        live.ALERT,
        live.DAY,
        alert=live.alert(message, level="info"),
    )


def platform_error(agent_id: int, message: str, code: str = "") -> None:
    """A platform failure, in plain words with the platform's code."""
    live.desk_changed(agent_id, live.ALERT, alert=live.alert(message, code))


def dial_note(agent_id: int, message: str, code: str = "") -> None:
    """How a dial is going when the platform has not settled it: a retry, an answer in doubt
    (an info note, not a failure: the call may still come)."""
    live.desk_changed(agent_id, live.ALERT, alert=live.alert(message, code, level="info"))


def offer_arrived(agent_id: int) -> None:
    """A platform's preview offer became the agent's lead."""
    live.desk_changed(agent_id, live.PREVIEW, live.CALL, live.DISPOSE)


def notes_corrected(call: Call) -> None:
    """The agent corrected a disposed call's notes: their recent calls."""
    live.desk_changed(call.agent_id, live.RECENT)
