"""Server pushes to one agent's desk (the contract with the calls engine, docs/desk.md).

The engine calls these after commit (through :func:`agentdesk.live.push_on_commit`) whenever
something the desk shows changes. Each renders the same template partial the desk page renders,
with a stable element id and ``hx-swap-oob="true"``, so htmx's ws extension swaps it in place.
A lost push costs nothing: the desk re-reads its whole state over HTTP after every reconnect.
"""

from __future__ import annotations

from django.template.loader import render_to_string

from agentdesk import board, live


def _render(partial: str, context: dict) -> str:
    return render_to_string(f"desk/desk.html#{partial}", {**context, "oob": True})


def _push(agent, partials: list[str], extra: dict | None = None, *, unless_call: bool = False) -> None:
    from agentdesk.selectors import desk_state

    agent_id = agent.id

    def render() -> str:
        from agentdesk.models import Agent

        fresh = Agent.objects.select_related("user").get(pk=agent_id)
        context = {**desk_state(agent=fresh, fallback_campaign=_working_campaign), **(extra or {})}
        if unless_call and context["call"] is not None:
            # The agent is still on (or wrapping up) a call: leave the card and the disposition
            # panel alone. The new lead appears when the disposition is saved.
            return ""
        return "\n".join(_render(p, context) for p in partials)

    live.push_on_commit(live.agent_group(agent_id), render)
    # Whatever changes an agent's desk changes their row on the supervisors' board.
    board.agent_changed(agent_id)


def _working_campaign(agent):
    """The campaign the desk shows when nothing on it names one: the platform the agent is
    signed in to (the campaign picker itself lives in the browser's session)."""
    from calls.models import PlatformSession
    from campaigns.models import Campaign

    session = (
        PlatformSession.objects.filter(agent=agent, status=PlatformSession.Status.SIGNED_IN)
        .order_by("-updated_at")
        .first()
    )
    if session is None:
        return None
    return Campaign.objects.filter(account_id=session.account_id, status=Campaign.Status.ACTIVE).first()


def call_changed(call) -> None:
    """A call's state moved: re-render the call panel (its buttons included) and the presence.
    The disposition panel is left alone so notes typed during the call survive."""
    _push(call.agent, ["call", "presence"])


def offer_arrived(agent, lead) -> None:
    """A platform offer (Huawei preview event / GWS preview record) became this agent's lead."""
    _push(agent, ["preview", "call", "dispose"], unless_call=True)


def lead_reclaimed(agent) -> None:
    """A supervisor gave the agent's lead back to the queue: the card goes, and a note says why."""
    message = "A supervisor gave your lead back to the queue."
    _push(agent, ["preview", "alert"], {"alert": {"message": message, "level": "info"}}, unless_call=True)


def presence_changed(agent) -> None:
    """The agent's presence (or platform session) changed."""
    _push(agent, ["presence"])


def presence_set_by_platform(agent, message: str) -> None:
    """The platform changed the agent's state (a supervisor on the platform, the phone, the
    platform itself): the presence, the preview (Ready starts looking for a lead, Not ready
    stops) and a note in plain words saying why."""
    _push(agent, ["presence", "preview", "alert"], {"alert": {"message": message, "level": "info"}})


def platform_error(agent, message: str, code: str = "") -> None:
    """Show a platform failure in plain words with the platform's code."""
    _push(agent, ["alert"], {"alert": {"message": message, "code": code}})
