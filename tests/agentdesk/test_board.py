"""The supervisor's live agents board."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agentdesk.board import board_rows
from agentdesk.consumers import SupervisorConsumer
from agentdesk.models import AGENTS_GROUP, SUPERVISORS_GROUP, Agent, Presence
from calls.services import set_presence


def make_agent(name: str) -> Agent:
    user = User.objects.create_user(name, password="pw-123456789")
    user.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP)[0])
    return Agent.objects.create(user=user)


@pytest.fixture
def supervisor(db):
    user = User.objects.create_user("sam", password="pw-123456789")
    user.groups.add(Group.objects.get_or_create(name=SUPERVISORS_GROUP)[0])
    return user


def test_supervisor_sees_every_agent_and_agents_are_refused(client, supervisor):
    make_agent("alice")
    bob = make_agent("bob")
    bob.presence = Presence.READY
    bob.save()
    client.force_login(supervisor)
    page = client.get("/supervisor/agents/")
    assert page.status_code == 200
    assert b'id="agent-row-' in page.content
    assert b"alice" in page.content and b"bob" in page.content
    assert b"board-ready" in page.content
    client.force_login(User.objects.get(username="alice"))
    assert client.get("/supervisor/agents/").status_code == 403


def test_board_rows_take_the_same_queries_for_one_or_many_agents(db):
    make_agent("a1")
    with CaptureQueriesContext(connection) as one:
        board_rows()
    for n in range(2, 8):
        make_agent(f"a{n}")
    with CaptureQueriesContext(connection) as many:
        rows = board_rows()
    assert len(rows) == 7
    assert len(many) == len(one)


def test_customer_data_is_escaped_on_the_board(client, supervisor):
    agent = make_agent("eve")
    agent.presence = Presence.NOT_READY
    agent.presence_reason = "<script>alert(1)</script>"
    agent.save()
    client.force_login(supervisor)
    page = client.get("/supervisor/agents/")
    assert b"<script>alert(1)</script>" not in page.content
    assert b"&lt;script&gt;" in page.content


@pytest.mark.django_db(transaction=True)
def test_a_presence_change_reaches_a_supervisor_socket(supervisor):
    agent = make_agent("carol")

    async def scenario():
        communicator = WebsocketCommunicator(SupervisorConsumer.as_asgi(), "/ws/supervisor/")
        communicator.scope["user"] = supervisor
        connected, _ = await communicator.connect()
        assert connected

        def change():
            # The engine's presence service (outside a transaction: the events go at once).
            set_presence(agent, Presence.READY)

        await sync_to_async(change)()
        frame = await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        return frame

    frame = asyncio.run(scenario())
    assert f'id="agent-row-{agent.id}"' in frame
    assert 'hx-swap-oob="true"' in frame
    assert "board-ready" in frame


@pytest.mark.django_db(transaction=True)
def test_an_agent_cannot_join_the_supervisor_socket(db):
    agent = make_agent("mallory")

    async def scenario():
        communicator = WebsocketCommunicator(SupervisorConsumer.as_asgi(), "/ws/supervisor/")
        communicator.scope["user"] = agent.user
        connected, _ = await communicator.connect()
        return connected

    assert asyncio.run(scenario()) is False


def test_a_supervisor_reclaims_an_agents_leads_but_never_one_on_a_live_call(client, supervisor, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from agentdesk import fragments, live
    from calls.models import CallState
    from campaigns.models import Lead
    from tests.factories import make_call, make_campaign, make_leads

    agent = make_agent("away")
    idle, on_call, offered = make_leads(make_campaign(name="Reclaim"), 3)
    Lead.objects.filter(pk=offered.pk).update(source=Lead.Source.PLATFORM)
    until = timezone.now() + timedelta(minutes=2)
    Lead.objects.filter(pk__in=[idle.pk, on_call.pk, offered.pk]).update(
        lease_owner=agent, lease_expires_at=until
    )
    make_call(agent, on_call, CallState.CONNECTED)
    pushed = []
    monkeypatch.setattr(live, "emit", lambda group, event: pushed.append((group, event)))

    client.force_login(User.objects.get(username="away"))
    assert client.post(f"/supervisor/agents/{agent.pk}/reclaim/").status_code == 403
    client.force_login(supervisor)
    page = client.get("/supervisor/agents/").content.decode()
    assert f'hx-post="/supervisor/agents/{agent.pk}/reclaim/"' in page
    answer = client.post(f"/supervisor/agents/{agent.pk}/reclaim/", headers={"HX-Request": "true"})
    assert answer.status_code == 200
    assert f'id="agent-row-{agent.pk}"' in answer.content.decode()

    held = dict(
        Lead.objects.filter(pk__in=[idle.pk, on_call.pk, offered.pk]).values_list("pk", "lease_owner")
    )
    assert held == {idle.pk: None, on_call.pk: agent.pk, offered.pk: agent.pk}
    # On a call the desk is left alone (its card is the call's lead).
    assert not any(group == live.agent_group(agent.pk) for group, _ in pushed)

    # An agent away from a held lead hears of it at once: the card goes, and a note says why.
    other = make_agent("break")
    (lead,) = make_leads(make_campaign(name="Break"), 1, start=50)
    Lead.objects.filter(pk=lead.pk).update(lease_owner=other, lease_expires_at=until)
    assert client.post(f"/supervisor/agents/{other.pk}/reclaim/").status_code == 200
    assert Lead.objects.get(pk=lead.pk).lease_owner is None
    frames = [fragments.desk_event(other.pk, e) for group, e in pushed if group == live.agent_group(other.pk)]
    assert any(
        "A supervisor gave your lead back to the queue." in f and 'id="desk-preview"' in f for f in frames
    )
    assert lead.name not in "".join(frames)


def test_reclaim_is_404_for_someone_not_on_the_board(client, supervisor):
    client.force_login(supervisor)
    sam = Agent.objects.create(user=supervisor)
    assert client.post(f"/supervisor/agents/{sam.pk}/reclaim/").status_code == 404


def test_since_is_a_ticking_duration_and_the_totals_add_up(client, supervisor):
    import re
    from datetime import timedelta

    from django.utils import timezone

    from calls.models import Call, CallState
    from campaigns.models import Lead
    from tests.factories import make_call, make_campaign, make_leads

    ada, bea = make_agent("ada"), make_agent("bea")
    Agent.objects.filter(pk=ada.pk).update(
        presence=Presence.READY, presence_changed_at=timezone.now() - timedelta(minutes=3, seconds=5)
    )
    Agent.objects.filter(pk=bea.pk).update(presence=Presence.ON_CALL, presence_changed_at=timezone.now())
    leads = make_leads(make_campaign(name="Totals"), 4)
    make_call(ada, leads[0], CallState.ENDED)
    make_call(bea, leads[1], CallState.CONNECTED)
    Call.objects.filter(lead=leads[1]).update(connected_at=timezone.now())
    Lead.objects.filter(pk__in=[leads[2].pk, leads[3].pk]).update(
        lease_owner=ada, lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    client.force_login(supervisor)
    page = client.get("/supervisor/agents/").content.decode()
    row = re.search(rf'<tr id="agent-row-{ada.pk}".*?</tr>', page, re.S).group(0)
    assert re.search(r'<time class="ticker" datetime="[^"]+" data-elapsed="18[56]">3:0[56]</time>', row)
    footer = re.search(r'<tr id="board-totals">.*?</tr>', page, re.S).group(0)
    rows = board_rows()
    assert re.search(r'data-total="calls">(\d+)<', footer).group(1) == str(sum(r.calls_today for r in rows))
    assert re.search(r'data-total="connected">(\d+)<', footer).group(1) == "1"
    assert (
        re.search(r'data-total="leased">(\d+)<', footer).group(1) == str(sum(r.leased for r in rows)) == "2"
    )
    assert "2 agents" in footer and "1 Ready" in footer and "1 On call" in footer
    # Release still asks first.
    assert 'hx-confirm="Give the leads ada holds back to the queue?' in page


def test_a_pushed_row_brings_the_totals_with_it(supervisor):
    from agentdesk import fragments, live

    agent = make_agent("dee")
    frame = fragments.supervisor_event({"type": live.BOARD_AGENT, "agent": agent.pk})
    assert frame.index(f'id="agent-row-{agent.pk}"') < frame.index('id="board-totals" hx-swap-oob="true"')


def test_pause_is_a_button_not_a_link(client, supervisor):
    from tests.factories import make_campaign

    campaign = make_campaign(name="Buttons")
    client.force_login(supervisor)
    for url in ("/supervisor/", f"/supervisor/campaigns/{campaign.pk}/"):
        page = client.get(url).content.decode()
        assert '<button name="status" value="paused" class="small">Pause</button>' in page, url
