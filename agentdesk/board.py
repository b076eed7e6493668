"""The supervisor's live agents board: who is ready, who is on which call, how the shift goes.

One selector builds every row (three queries whatever the number of agents). Whatever changes an
agent's desk also sends a ``board.agent`` event to the ``supervisors`` group (``agentdesk.live``),
and ``SupervisorConsumer`` re-renders that one row at delivery; htmx swaps it in by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q
from django.template.loader import render_to_string
from django.utils import timezone

from agentdesk.models import AGENTS_GROUP, Agent, Presence, not_ready_reasons
from calls.models import LIVE_STATES, Call, CallState
from campaigns.models import Lead

BOARD_TEMPLATE = "board/agents.html"


@dataclass(frozen=True)
class BoardRow:
    agent: Agent
    call: Call | None
    calls_today: int
    connected_today: int
    leased: int

    @property
    def not_ready_reasons(self) -> list[str]:
        """What a supervisor picks from when setting the agent Not ready: the desk's own list,
        that of the campaign the agent works."""
        return not_ready_reasons(self.agent.desk_campaign)

    @property
    def since(self) -> datetime | None:
        return self.agent.presence_changed_at

    @property
    def signed_in(self) -> bool:
        """Not ready and Sign out are offered: the agent is on the desk and not on a call (the
        call's life owns the presence then; the services refuse it too)."""
        return self.agent.presence in (Presence.READY, Presence.NOT_READY, Presence.WRAP_UP)


def _start_of_day() -> datetime:
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def board_rows(agent_ids: list[int] | None = None) -> list[BoardRow]:
    agents = (
        Agent.objects.select_related("user", "desk_campaign")
        .filter(user__groups__name=AGENTS_GROUP)
        .annotate(
            calls_today=Count("calls", filter=Q(calls__created_at__gte=_start_of_day()), distinct=True),
            connected_today=Count(
                "calls",
                filter=Q(calls__created_at__gte=_start_of_day(), calls__connected_at__isnull=False),
                distinct=True,
            ),
            leased=Count(
                "leased_leads", filter=Q(leased_leads__lease_expires_at__gt=timezone.now()), distinct=True
            ),
        )
        .order_by("user__username")
    )
    if agent_ids is not None:
        agents = agents.filter(pk__in=agent_ids)
    agents = list(agents)
    live_calls: dict[int, Call] = {}
    for call in (
        Call.objects.select_related("lead", "campaign")
        .filter(agent__in=agents, state__in=[*LIVE_STATES, CallState.ENDED, CallState.FAILED])
        .order_by("created_at", "id")
    ):
        live_calls[call.agent_id] = call  # the newest wins
    return [BoardRow(a, live_calls.get(a.id), a.calls_today, a.connected_today, a.leased) for a in agents]


@dataclass(frozen=True)
class BoardTotals:
    agents: int
    by_presence: dict[str, int]
    calls_today: int
    connected_today: int
    leased: int

    @property
    def presence_summary(self) -> list[tuple[str, int]]:
        """(label, count) for each presence someone is in, in the presences' order."""
        return [
            (label, self.by_presence[value])
            for value, label in Presence.choices
            if self.by_presence.get(value)
        ]


def board_totals() -> BoardTotals:
    """The board's totals row, counted like the rows (three queries, not one per agent)."""
    agents = Agent.objects.filter(user__groups__name=AGENTS_GROUP)
    by_presence = dict(agents.values_list("presence").annotate(n=Count("id")).order_by())
    calls = Call.objects.filter(agent__in=agents, created_at__gte=_start_of_day()).aggregate(
        calls=Count("id"), connected=Count("id", filter=Q(connected_at__isnull=False))
    )
    leased = Lead.objects.filter(lease_owner__in=agents, lease_expires_at__gt=timezone.now()).count()
    return BoardTotals(
        agents=sum(by_presence.values()),
        by_presence=by_presence,
        calls_today=calls["calls"],
        connected_today=calls["connected"],
        leased=leased,
    )


def render_row(row: BoardRow, *, oob: bool) -> str:
    return render_to_string(f"{BOARD_TEMPLATE}#agent-row", {"row": row, "oob": oob})


def render_totals() -> str:
    return render_to_string(f"{BOARD_TEMPLATE}#totals", {"totals": board_totals(), "oob": True})
