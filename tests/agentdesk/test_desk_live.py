"""The desk's WebSocket: only signed-in agents connect, each joins only its own group, pushes are
rendered partials with stable ids swapped out-of-band, and nothing a client sends is a command."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from agentdesk import desk_push
from agentdesk.asgi import application
from agentdesk.consumers import DeskConsumer
from calls.models import CallState
from tests.factories import PASSWORD, make_call, make_campaign, make_leads, make_user_agent

pytestmark = pytest.mark.django_db(transaction=True)


def _session_headers(username: str) -> list[tuple[bytes, bytes]]:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return [(b"cookie", cookie.encode()), (b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]


async def _open(user=None, headers=None):
    if headers is not None:
        communicator = WebsocketCommunicator(application, "/ws/desk/", headers=headers)
    else:
        communicator = WebsocketCommunicator(DeskConsumer.as_asgi(), "/ws/desk/")
        communicator.scope["user"] = user
    connected, code = await communicator.connect(timeout=5)
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
        await _sync(desk_push.call_changed)(call)
        assert await communicator.receive_nothing(timeout=0.5)
        # This agent's presence changes: one frame, the presence partial swapped out-of-band.
        await _sync(desk_push.presence_changed)(agent)
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
        await _sync(desk_push.call_changed)(call)
        frame = await communicator.receive_from(timeout=5)
        assert 'id="desk-call"' in frame and "Connected" in frame and "data-connected-at" in frame
        assert 'id="desk-presence"' in frame and "On call" in frame
        await _sync(desk_push.platform_error)(agent, "Agent <not> signed in", "100-006")
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
