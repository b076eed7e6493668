"""Signal receivers, connected in ``AgentdeskConfig.ready()``."""

from __future__ import annotations

import logging

from agentdesk import services
from agentdesk.models import Agent
from agentdesk.roles import is_agent

log = logging.getLogger("agentdesk.desk")


def on_logout(sender, request, user, **kwargs) -> None:
    """Signing out of the product frees the lead and signs out of every platform."""
    if user is None or not is_agent(user):
        return
    agent = Agent.objects.filter(user=user).first()
    if agent is None:
        return
    try:
        services.agent_signed_out(agent=agent)
    except Exception:  # signing out must never fail on a platform hiccup
        log.warning("platform sign-out on logout failed for agent %s", agent.pk, exc_info=True)
