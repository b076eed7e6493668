"""The wallboard, as a supervisor sees it: figures equal to counts taken from the database here,
supervisors only, customer data escaped, a fixed number of queries, pushed live."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.http import HttpRequest
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agentdesk import live, wallboard
from agentdesk.asgi import application
from agentdesk.consumers import SupervisorConsumer
from agentdesk.models import Presence
from calls.models import Call, CallState
from calls.services import set_presence
from campaigns import services
from campaigns.models import Campaign, Disposition, Lead
from tests.agentdesk.conftest import login
from tests.factories import PASSWORD, make_call, make_campaign, make_leads, make_user_agent

# The floor's calls sit minutes and an hour and a half before now, today.
pytestmark = pytest.mark.usefixtures("local_midday")

URL = "/supervisor/wallboard/"


def figure(page: str, campaign: Campaign, name: str) -> str:
    """A figure of one campaign's row (``data-figure`` cells), as shown."""
    row = re.search(rf'<tr id="wb-campaign-{campaign.pk}">(.*?)</tr>', page, re.S)
    assert row, f"no row for {campaign}"
    cell = re.search(rf'data-figure="{name}">\s*([^<]*?)\s*<', row.group(1), re.S)
    assert cell, f"no {name} in {row.group(1)}"
    return cell.group(1).strip()


def minutes_ago(n: float):
    """A moment today, ``n`` minutes back (never before midnight, so the test holds at 00:01)."""
    return max(wallboard.start_of_day(), timezone.now() - timedelta(minutes=n))


def placed(agent, lead, *, connected: bool, wait: int = 0, talk: int = 0, minutes: float = 5, **extra):
    """A finished call: dialed ``minutes`` ago, connected after ``wait`` s, ended after ``talk`` s."""
    call = make_call(agent, lead, CallState.ENDED)
    dialed = minutes_ago(minutes)
    connected_at = dialed + timedelta(seconds=wait) if connected else None
    ended = (connected_at or dialed) + timedelta(seconds=talk)
    Call.objects.filter(pk=call.pk).update(
        created_at=dialed, dialed_at=dialed, connected_at=connected_at, ended_at=ended, **extra
    )
    return call


@pytest.fixture
def floor(db, agent, other):
    """Two campaigns with leads in every state and calls today (and one yesterday)."""
    sales = make_campaign(name="Sales")
    sales.target_contact_rate = 50
    sales.service_level_seconds, sales.target_service_level = 20, 80
    sales.save()
    survey = make_campaign(name="Survey", platform_campaign_id="596")
    survey.target_contact_rate = 90
    survey.service_level_seconds, survey.target_service_level = 5, 50
    survey.save()
    leads = make_leads(sales, 8)
    Lead.objects.filter(pk__in=[lead.pk for lead in leads[:2]]).update(status=Lead.Status.DONE)
    Lead.objects.filter(pk=leads[2].pk).update(status=Lead.Status.EXHAUSTED)
    Lead.objects.filter(pk=leads[3].pk).update(status=Lead.Status.DNC)
    Lead.objects.filter(pk=leads[4].pk).update(status=Lead.Status.CALLBACK)
    Lead.objects.filter(pk=leads[5].pk).update(status=Lead.Status.IN_PROGRESS)
    survey_leads = make_leads(survey, 3, start=100)
    win = Disposition.objects.get(campaign=sales, name="Interested")
    win.is_conversion = True
    win.save()
    placed(agent, leads[0], connected=True, wait=10, talk=120, disposition=win)
    placed(agent, leads[1], connected=True, wait=20, talk=60, disposition=win, minutes=90)
    placed(other, leads[2], connected=False, wait=0, talk=0)
    placed(other, leads[3], connected=True, wait=30, talk=30)
    placed(agent, survey_leads[0], connected=False)
    old = placed(agent, survey_leads[1], connected=True, wait=5, talk=500)
    Call.objects.filter(pk=old.pk).update(created_at=wallboard.start_of_day() - timedelta(hours=2))
    make_call(other, leads[5], CallState.CONNECTED)  # live, still on the phone
    Call.objects.filter(lead=leads[5]).update(
        created_at=minutes_ago(1), dialed_at=minutes_ago(1), connected_at=minutes_ago(0.5)
    )
    return sales, survey


def expected(campaign: Campaign) -> dict[str, str]:
    """The row's figures, counted here from the database with plain queries."""
    today = Call.objects.filter(campaign=campaign, created_at__gte=wallboard.start_of_day())
    statuses = list(Lead.objects.filter(campaign=campaign).values_list("status", flat=True))
    connected = [c for c in today if c.connected_at]
    # The platform's talk time when it sent one, else the call's own (calls.figures).
    talks = [
        c.talk_seconds if c.talk_seconds is not None else (c.ended_at - c.connected_at).total_seconds()
        for c in today
        if c.talk_seconds is not None or (c.connected_at and c.ended_at)
    ]
    waits = [(c.connected_at - c.dialed_at).total_seconds() for c in connected]
    hour_ago = timezone.now() - timedelta(hours=1)

    def avg(values):
        return "—" if not values else wallboard_duration(sum(values) / len(values))

    rate = f"{round(100 * len(connected) / len(today), 1)}%" if today else "—"
    figures = {
        "done": str(sum(s in ("done", "exhausted", "dnc") for s in statuses)),
        "remaining": str(sum(s in ("pending", "callback") for s in statuses)),
        "in_progress": str(statuses.count("in_progress")),
        "contact_rate": rate,
        "calls": f"{len(connected)}/{len(today)}",
        "conversions": str(sum(bool(c.disposition and c.disposition.is_conversion) for c in today)),
        "calls_last_hour": str(sum(c.created_at >= hour_ago for c in today)),
        "avg_talk": avg(talks),
        "avg_wait": avg(waits),
    }
    within = campaign.service_level_seconds
    if within is not None:  # the answer-time service level, where the campaign sets one
        in_time = sum(wait <= within for wait in waits)
        figures["service_level"] = f"{round(100 * in_time / len(waits), 1)}%" if waits else "—"
        figures["service_level_calls"] = f"{in_time}/{len(waits)} in {within} s"
    return figures


def wallboard_duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


def test_anonymous_users_sign_in_and_agents_are_refused(client, agent):
    answer = client.get(URL)
    assert answer.status_code == 302 and answer["Location"].startswith("/login/")
    assert login(agent).get(URL).status_code == 403


def test_the_figures_are_the_databases(floor, supervisor):
    sales, survey = floor
    page = login(supervisor).get(URL).content.decode()
    for campaign in (sales, survey):
        for name, value in expected(campaign).items():
            assert figure(page, campaign, name) == value, (campaign.name, name)
    # Sales: 4 of 5 placed calls connected (the live one too: 80%) against a 50% target;
    # Survey: 0 of 1 today (yesterday's connected call does not count) against 90%.
    assert figure(page, sales, "contact_rate") == "80.0%"
    assert figure(page, survey, "contact_rate") == "0.0%"
    assert figure(page, sales, "target") == "met 50%"
    assert figure(page, survey, "target") == "missed 90%"
    assert figure(page, sales, "conversions") == "2"
    assert figure(page, sales, "calls_last_hour") == "4"  # the live call included, not the 90-minute one
    # Service level: Sales' connects were answered after 10, 20, 30 s and 30 s (the live one):
    # 2 of 4 within 20 s, 50% against 80%. Survey has no connect today: nothing to judge.
    assert figure(page, sales, "service_level") == "50.0%"
    assert figure(page, sales, "service_level_calls") == "2/4 in 20 s"
    assert figure(page, sales, "service_level_target") == "missed 80%"
    assert figure(page, survey, "service_level") == "—"
    assert figure(page, survey, "service_level_target") == "target 50%"
    Campaign.objects.filter(pk=sales.pk).update(target_service_level=50)
    assert figure(login(supervisor).get(URL).content.decode(), sales, "service_level_target") == "met 50%"
    # Calls in progress: the one live call, by agent, with no customer data on a TV.
    assert re.search(r'id="wb-live-count">1<', page)
    assert "Lead 5" not in page and "+12125550005" not in page


def test_agents_are_shown_by_state_with_a_ticking_time(agent, other, supervisor):
    set_presence(agent, Presence.READY)
    other.presence, other.presence_reason = Presence.NOT_READY, "Lunch"
    changed = other.presence_changed_at = timezone.now() - timedelta(minutes=7, seconds=3)
    other.save()
    page = login(supervisor).get(URL).content.decode()
    waited = (timezone.now() - changed).total_seconds()  # 423 s and however long the page took
    ready = re.search(r'data-state="ready">(\d+)<', page).group(1)
    not_ready = re.search(r'data-state="not_ready">(\d+)<', page).group(1)
    assert (ready, not_ready) == ("1", "1")
    item = re.search(rf'<li id="wb-agent-{other.pk}">(.*?)</li>', page, re.S).group(1)
    elapsed, shown = re.search(
        r'<time class="ticker" datetime="[^"]+" data-elapsed="(\d+)">([\d:]+)</time>', item
    ).groups()
    assert 423 <= int(elapsed) <= waited
    assert shown == f"{int(elapsed) // 60}:{int(elapsed) % 60:02d}"
    assert "Lunch" in item
    # Supervisors are not agents on the board.
    assert f'id="wb-agent-{supervisor.pk}"' not in page


def test_the_sparkline_counts_calls_per_quarter_hour(floor):
    spark = wallboard.calls_per_quarter_hour()
    today = Call.objects.filter(created_at__gte=wallboard.start_of_day())
    assert sum(spark.buckets) == today.count()
    for call in today:
        local = timezone.localtime(call.created_at)
        assert spark.buckets[(local.hour * 60 + local.minute) // 15] >= 1


def test_customer_data_is_escaped(supervisor, agent):
    campaign = make_campaign(name="<script>alert('c')</script>")
    agent.presence, agent.presence_reason = Presence.NOT_READY, "<img src=x onerror=alert(1)>"
    agent.save()
    make_call(agent, make_leads(campaign, 1)[0], CallState.CONNECTED)
    page = login(supervisor).get(URL).content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert" in page and "&lt;img src=x" in page


def test_the_queries_do_not_grow_with_agents_calls_or_campaigns(db, supervisor):
    first = make_user_agent("a0", 10)
    make_call(first, make_leads(make_campaign(name="C0"), 1)[0], CallState.CONNECTED)
    with CaptureQueriesContext(connection) as few:
        wallboard.context()
    for n in range(1, 6):
        someone = make_user_agent(f"a{n}", 10 + n)
        campaign = make_campaign(name=f"C{n}", platform_campaign_id=str(600 + n))
        for lead in make_leads(campaign, 3, start=10 * n):
            make_call(someone, lead, CallState.CONNECTED)
    with CaptureQueriesContext(connection) as many:
        data = wallboard.context()
    assert len(data["figures"]) == 6 and len(data["live_calls"]) == 16
    assert len(many) == len(few) == 6  # agents, live calls, sparkline, calls, campaigns, leads


def test_the_target_and_conversions_are_set_on_the_campaign_form(supervisor):
    campaign = make_campaign(name="Targets")
    client = login(supervisor)
    form = client.get(f"/supervisor/campaigns/{campaign.pk}/edit/").content.decode()
    assert 'name="target_contact_rate"' in form
    assert 'name="service_level_seconds"' in form and 'name="target_service_level"' in form
    assert 'name="disp-0-is_conversion"' in form and 'aria-label="Conversion"' in form
    specs = [
        services.DispositionSpec("Sale", is_conversion=True),
        services.DispositionSpec("No answer", "retry", 30),
    ]
    services.campaign_save(campaign=campaign, dispositions=specs)
    assert [(d.name, d.is_conversion) for d in campaign.dispositions.all()] == [
        ("Sale", True),
        ("No answer", False),
    ]


def _socket(user, path="/ws/supervisor/?view=wallboard"):
    communicator = WebsocketCommunicator(SupervisorConsumer.as_asgi(), path)
    communicator.scope["user"] = user
    return communicator


@pytest.mark.django_db(transaction=True)
def test_an_agent_cannot_open_a_wallboard_socket():
    agent = make_user_agent("mallory", 3)

    async def scenario():
        connected, _ = await _socket(agent.user).connect()
        return connected

    assert asyncio.run(scenario()) is False


@pytest.mark.django_db(transaction=True)
def test_anonymous_users_cannot_open_the_supervisor_or_the_wallboard_socket():
    """Through the whole ASGI application, as a browser arrives: without a session both sockets
    are closed at once (4403); the same sockets open for a signed-in supervisor."""
    make_user_agent("boss", 9, supervisor=True)
    browser = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    signed_in = Client()
    assert signed_in.login(request=HttpRequest(), username="boss", password=PASSWORD)
    session = [(b"cookie", f"sessionid={signed_in.cookies['sessionid'].value}".encode())]

    async def opens(path: str, headers) -> tuple[bool, int | None]:
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, code = await communicator.connect(timeout=5)
        if connected:
            await communicator.disconnect()
        return connected, code

    for path in ("/ws/supervisor/", "/ws/supervisor/?view=wallboard"):
        assert asyncio.run(opens(path, browser)) == (False, 4403), path
        assert asyncio.run(opens(path, browser + session))[0] is True, path


@pytest.mark.django_db(transaction=True)
def test_the_wallboard_socket_gets_the_groups_an_event_touches():
    supervisor = make_user_agent("boss", 9, supervisor=True)
    agent = make_user_agent("carol", 4)
    campaign = make_campaign(name="Live")
    (lead,) = make_leads(campaign, 1)

    async def scenario():
        board = _socket(supervisor.user)
        assert (await board.connect())[0]
        await sync_to_async(set_presence)(agent, Presence.READY)
        agents_frame = await board.receive_from(timeout=5)

        def call_starts():
            call = make_call(agent, lead, CallState.DIALING)
            # What every call_advance sends (calls.services.events.call_changed).
            live.campaign_calls_changed(call.campaign_id)

        await sync_to_async(call_starts)()
        frames = [await board.receive_from(timeout=5)]
        await board.disconnect()
        return agents_frame, frames

    agents_frame, frames = asyncio.run(scenario())
    assert 'id="wallboard-agents" class="wb-panel wb-agents" hx-swap-oob="true"' in agents_frame
    assert f'id="wb-agent-{agent.pk}"' in agents_frame
    calls_frame = frames[0]
    assert 'id="wallboard-calls"' in calls_frame and 'id="wallboard-campaigns"' in calls_frame
    assert re.search(r'id="wb-live-count">1<', calls_frame)
    # Not the agents board's row: the wallboard renders its own fragments.
    assert "agent-row-" not in agents_frame + calls_frame
