"""WebSocket consumers. Server pushes only: commands are HTTP requests (DESIGN.md "Live updates").

Groups: ``agent.<id>`` for every desk of one agent, ``desk-tab.<id>.<tab>`` for one desk tab (the
answers to that tab's own commands), ``campaign.<id>`` and ``supervisors`` for supervisor pages.
Events are small dicts (``agentdesk.live``, docs/events.md); the consumer renders what an event
names *when it delivers it*, from the committed state (``agentdesk.fragments``).

The ordering rule: a consumer handles its events one at a time, so the frames of one socket
leave in the order the events arrived, and each shows the state as of its own rendering. The last
frame therefore always shows the latest state: nothing rendered earlier can land later. A desk
socket starts with the whole desk, rendered after it joined its groups, so no change can fall
between that frame and the events that follow it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from agentdesk import fragments, live
from agentdesk.models import Agent
from agentdesk.roles import is_agent, is_supervisor

# A desk tab's id, as the desk page mints it (uuid4().hex).
TAB_RE = re.compile(r"^[0-9a-f]{32}$")


def rendered(render):
    """``render`` to await from a consumer: run in a thread of the event loop's pool with a
    database connection borrowed for the render only (the web process's pool, agentdesk/settings.py),
    so the renders of different sockets run side by side instead of queueing on asgiref's one
    shared thread (bench/load_bench.py, BENCHMARKS.md). One socket still renders its events one at a
    time: the consumer awaits each before it reads the next (the ordering rule above)."""
    return database_sync_to_async(render, thread_sensitive=False)


def _query(scope, name: str) -> str:
    return parse_qs(scope.get("query_string", b"").decode()).get(name, [""])[0]


class _PushConsumer(AsyncWebsocketConsumer):
    groups_joined: list[str]

    async def join(self, groups: list[str]) -> None:
        self.groups_joined = groups
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        # Commands never travel over the socket; ignore anything a client sends.
        return

    async def send_html(self, html: str) -> None:
        if html:
            await self.send(text_data=html)


class DeskConsumer(_PushConsumer):
    """One per open desk tab. Joins only the signed-in agent's own groups."""

    async def connect(self):
        user = self.scope.get("user")
        if not user or not user.is_authenticated or not await sync_to_async(is_agent)(user):
            await self.close(code=4403)
            return
        self.agent_id = await sync_to_async(
            lambda: Agent.objects.filter(user=user).values_list("id", flat=True).first()
        )()
        if self.agent_id is None:
            await self.close(code=4403)
            return
        groups = [live.agent_group(self.agent_id)]
        tab = _query(self.scope, "tab")
        if TAB_RE.match(tab):
            groups.append(live.tab_group(self.agent_id, tab))
        await self.join(groups)
        await self.accept()
        # The whole desk first (after joining: see the module docstring). A push missed while
        # the socket was down is never replayed; this frame is what the desk missed.
        await self.send_html(
            await rendered(fragments.desk_event)(self.agent_id, live.desk_event([live.MAIN]))
        )

    async def desk_changed(self, event):
        if not fragments.reads_the_desk(event):
            # A template alone: no thread hop.
            await self.send_html(fragments.desk_event(self.agent_id, event))
            return
        # The working area's frame is sent before the lower panels' is rendered.
        frames = fragments.desk_event_frames(self.agent_id, event)
        while html := await rendered(next)(frames, ""):
            await self.send_html(html)


class SupervisorConsumer(_PushConsumer):
    """Every supervisor page. ``?view=wallboard`` (the wallboard) renders the same events as the
    wallboard's figure groups instead of the other pages' rows, and also follows every
    campaign's calls (group ``wallboard``)."""

    wallboard = False

    async def connect(self):
        user = self.scope.get("user")
        if not user or not user.is_authenticated or not await sync_to_async(is_supervisor)(user):
            await self.close(code=4403)
            return
        groups = [live.SUPERVISORS]
        if _query(self.scope, "view") == "wallboard":
            self.wallboard = True
            groups.append(live.WALLBOARD)
        # A campaign page (?campaign=<id>) also follows that campaign's calls.
        campaign = _query(self.scope, "campaign")
        if campaign.isdigit():
            groups.append(live.campaign_group(int(campaign)))
        await self.join(groups)
        await self.accept()

    async def _render(self, event):
        render = fragments.wallboard_event if self.wallboard else fragments.supervisor_event
        await self.send_html(await rendered(render)(event))

    board_agent = _render
    campaign_calls = _render
    campaign_counts = _render
    campaign_sync = _render
    upload_progress = _render
