"""The desk's WebSocket: only signed-in agents connect, each joins only its own groups, the first
frame is the whole desk, events are rendered at delivery into partials with stable ids swapped
out-of-band, and nothing a client sends is a command."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.test import Client

from agentdesk.asgi import application
from agentdesk.consumers import DeskConsumer
from agentdesk.models import Agent
from calls.models import CallState
from calls.services import events
from tests.factories import PASSWORD, make_call, make_campaign, make_leads, make_user_agent

pytestmark = pytest.mark.django_db(transaction=True)


def _session_headers(username: str) -> list[tuple[bytes, bytes]]:
    client = Client()
    assert client.login(request=HttpRequest(), username=username, password=PASSWORD)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return [(b"cookie", cookie.encode()), (b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]


async def _open(user=None, headers=None):
    if headers is not None:
        communicator = WebsocketCommunicator(application, "/ws/desk/", headers=headers)
    else:
        communicator = WebsocketCommunicator(DeskConsumer.as_asgi(), "/ws/desk/")
        communicator.scope["user"] = user
    connected, code = await communicator.connect(timeout=5)
    if connected:
        first = await communicator.receive_from(timeout=5)
        # The whole desk first: what a desk missed while its socket was down.
        assert 'id="desk-main" hx-swap-oob="innerHTML"' in first and 'id="desk-presence"' in first
    return communicator, connected, code


def test_agent_connects_with_the_session_and_receives_own_pushes_only():
    agent = make_user_agent("agent", 1)
    other = make_user_agent("other", 2)
    campaign = make_campaign()
    lead = make_leads(campaign, 1)[0]
    call = make_call(other, lead, CallState.CONNECTED)
    headers = _session_headers("agent")

    async def scenario():
        communicator, connected, _ = await _open(headers=headers)
        assert connected
        # Another agent's call changes: nothing reaches this desk.
        await _sync(events.call_changed)(call)
        assert await communicator.receive_nothing(timeout=0.5)
        # This agent's presence changes: one frame, the presence partial swapped out-of-band.
        await _sync(events.presence_changed)(agent.pk)
        frame = await communicator.receive_from(timeout=5)
        assert 'id="desk-presence"' in frame and 'hx-swap-oob="true"' in frame
        # A client message is ignored (commands are HTTP only).
        await communicator.send_to(text_data='{"dial": 1}')
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_call_push_carries_the_state_and_the_timer_start():
    agent = make_user_agent("agent", 1)
    campaign = make_campaign()
    lead = make_leads(campaign, 1)[0]
    call = make_call(agent, lead, CallState.CONNECTED)
    from django.utils import timezone

    call.connected_at = timezone.now()
    call.save(update_fields=["connected_at"])

    async def scenario():
        communicator, connected, _ = await _open(user=agent.user)
        assert connected
        await _sync(events.call_changed)(call)
        frame = await communicator.receive_from(timeout=5)
        assert 'id="desk-call"' in frame and "Connected" in frame and "data-connected-at" in frame
        assert 'id="desk-presence"' in frame and "On call" in frame
        await _sync(events.platform_error)(agent.pk, "Agent <not> signed in", "100-006")
        frame = await communicator.receive_from(timeout=5)
        assert 'id="desk-alert"' in frame and "Agent &lt;not&gt; signed in" in frame and "100-006" in frame
        await communicator.disconnect()

    async_to_sync(scenario)()


def test_anonymous_and_non_agents_are_refused():
    supervisor = make_user_agent("boss", 9, supervisor=True)

    async def scenario():
        for user in (AnonymousUser(), supervisor.user):
            communicator, connected, code = await _open(user=user)
            assert not connected and code == 4403
            await communicator.disconnect()

    async_to_sync(scenario)()


def _sync(fn):
    from asgiref.sync import sync_to_async

    return sync_to_async(fn)


async def _frames_until(communicator, needle: str, timeout: float = 5) -> list[str]:
    """Frames received until one contains ``needle`` (all of them, in order)."""
    frames: list[str] = []
    while not any(needle in f for f in frames):
        frames.append(await communicator.receive_from(timeout=timeout))
    return frames


def test_a_tabs_commands_are_answered_through_its_own_socket():
    """A command naming its tab answers 204 over HTTP; the desk it shows arrives on that tab's
    socket, rendered at delivery. A refusal reaches only the asking tab; another agent naming
    this tab's id reaches nothing of this agent's."""
    agent = make_user_agent("agent", 1)
    make_user_agent("other", 2)
    campaign = make_campaign()
    lead = make_leads(campaign, 2)[0]
    headers = _session_headers("agent")
    mine, second = "a" * 32, "b" * 32
    client, intruder = Client(), Client()
    client.login(request=HttpRequest(), username="agent", password=PASSWORD)
    intruder.login(request=HttpRequest(), username="other", password=PASSWORD)

    def post(who, path, data, tab):
        return who.post(path, data, headers={"HX-Request": "true", "X-Desk-Tab": tab})

    async def scenario():
        tab = WebsocketCommunicator(application, f"/ws/desk/?tab={mine}", headers=headers)
        other_tab = WebsocketCommunicator(application, f"/ws/desk/?tab={second}", headers=headers)
        for communicator in (tab, other_tab):
            connected, _ = await communicator.connect(timeout=5)
            assert connected
            assert 'id="desk-main"' in await communicator.receive_from(timeout=5)

        # Ready without a campaign: refused, in words, on the asking tab only.
        answer = await _sync(post)(client, "/desk/presence/", {"presence": "ready"}, mine)
        assert answer.status_code == 204 and answer.content == b""
        frame = await tab.receive_from(timeout=5)
        assert "Pick a campaign first." in frame
        assert await other_tab.receive_nothing(timeout=0.5)

        # Pick the campaign and go Ready: the answer (the whole desk, with the lead) on this tab.
        answer = await _sync(post)(
            client, "/desk/presence/", {"presence": "ready", "campaign": campaign.pk}, mine
        )
        assert answer.status_code == 204
        frames = await _frames_until(tab, lead.number)
        assert any('id="desk-main" hx-swap-oob="innerHTML"' in f and lead.number in f for f in frames)
        # The other tab follows the agent's events (the campaign, the lease, the presence).
        await _frames_until(other_tab, lead.number)

        # Another agent naming this tab's id answers their own (empty) desk into nothing here.
        while not await tab.receive_nothing(timeout=0.5):
            await tab.receive_from()  # what the Ready still sends (the presence, the board)
        answer = await _sync(post)(intruder, "/desk/presence/", {"presence": "not_ready"}, mine)
        assert answer.status_code == 204
        assert await tab.receive_nothing(timeout=0.5)
        for communicator in (tab, other_tab):
            await communicator.disconnect()

    async_to_sync(scenario)()
    assert Agent.objects.get(pk=agent.pk).presence == "ready"
