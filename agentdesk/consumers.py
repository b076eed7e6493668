"""WebSocket consumers. Server pushes only: commands are HTTP requests (DESIGN.md "Live updates").

Groups: ``agent.<id>`` for one agent's desk, ``campaign.<id>`` and ``supervisors`` for supervisor
pages. Events are small dicts (see docs/events.md); consumers render partials from them.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer

from agentdesk.live import SUPERVISORS as SUPERVISORS_GROUP
from agentdesk.live import agent_group, campaign_group
from agentdesk.roles import is_agent, is_supervisor


class DeskConsumer(AsyncWebsocketConsumer):
    """One per open desk. Joins only the signed-in agent's own group."""

    async def connect(self):
        user = self.scope.get("user")
        if not user or not user.is_authenticated or not await _check(is_agent, user):
            await self.close(code=4403)
            return
        agent_id = await _agent_id(user)
        if agent_id is None:
            await self.close(code=4403)
            return
        self.groups_joined = [agent_group(agent_id)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        # Commands never travel over the socket; ignore anything a client sends.
        return

    async def desk_html(self, event):
        """Push a pre-rendered, escaped partial (rendered from the page's own template)."""
        await self.send(text_data=event["html"])


class SupervisorConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if not user or not user.is_authenticated or not await _check(is_supervisor, user):
            await self.close(code=4403)
            return
        self.groups_joined = [SUPERVISORS_GROUP]
        # A campaign page (?campaign=<id>) also follows that campaign's calls.
        campaign = parse_qs(self.scope.get("query_string", b"").decode()).get("campaign", [""])[0]
        if campaign.isdigit():
            self.groups_joined.append(campaign_group(int(campaign)))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        return

    async def supervisor_html(self, event):
        await self.send(text_data=event["html"])


async def _check(check, user) -> bool:
    from asgiref.sync import sync_to_async

    return await sync_to_async(check)(user)


async def _agent_id(user) -> int | None:
    from asgiref.sync import sync_to_async

    from agentdesk.models import Agent

    return await sync_to_async(lambda: Agent.objects.filter(user=user).values_list("id", flat=True).first())()
