"""A campaign's page lists the calls on desks and follows them live; other campaigns' pages do not."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, User

from agentdesk.consumers import SupervisorConsumer
from agentdesk.models import SUPERVISORS_GROUP
from calls.models import CallState, Platform
from calls.services import call_advance
from tests.calls.conftest import make_account, make_campaign, make_live_call


@pytest.fixture
def supervisor(db):
    user = User.objects.create_user("sam", password="pw-123456789")
    user.groups.add(Group.objects.get_or_create(name=SUPERVISORS_GROUP)[0])
    return user


def test_the_campaign_page_lists_calls_on_desks(client, supervisor, alice):
    campaign = make_campaign(make_account(Platform.RYNG, "http://127.0.0.1:9"))
    make_live_call(campaign, alice)
    client.force_login(supervisor)
    page = client.get(f"/supervisor/campaigns/{campaign.pk}/")
    assert page.status_code == 200
    assert f'id="live-calls-{campaign.pk}"'.encode() in page.content
    assert b"Dialing" in page.content and b"alice" in page.content


@pytest.mark.django_db(transaction=True)
def test_a_call_change_reaches_its_campaign_page_only(supervisor, alice):
    watched = make_campaign(make_account(Platform.RYNG, "http://127.0.0.1:9"), "595")
    other = make_campaign(make_account(Platform.RYNG, "http://127.0.0.1:9"), "596")
    call = make_live_call(watched, alice)

    async def connect(campaign_id):
        communicator = WebsocketCommunicator(
            SupervisorConsumer.as_asgi(), f"/ws/supervisor/?campaign={campaign_id}"
        )
        communicator.scope["user"] = supervisor
        communicator.scope["query_string"] = f"campaign={campaign_id}".encode()
        connected, _ = await communicator.connect()
        assert connected
        return communicator

    async def scenario():
        mine, theirs = await connect(watched.pk), await connect(other.pk)
        await sync_to_async(lambda: call_advance(call=call, state=CallState.CONNECTED))()
        mine_frames, their_frames = await frames(mine), await frames(theirs)
        await mine.disconnect()
        await theirs.disconnect()
        return mine_frames, their_frames

    async def frames(communicator) -> list[str]:
        # Every supervisor page also gets the agents board's rows; collect what arrives.
        received = []
        while not await communicator.receive_nothing(timeout=1):
            received.append(await communicator.receive_from())
        return received

    mine, theirs = asyncio.run(scenario())
    assert not any("live-calls-" in frame for frame in theirs), theirs
    (frame,) = [f for f in mine if f'id="live-calls-{watched.pk}"' in f]
    assert 'hx-swap-oob="true"' in frame
    assert "Connected" in frame
