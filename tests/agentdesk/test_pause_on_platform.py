"""Pausing a campaign whose platform hands out the leads (Huawei, Genesys), end to end: the
supervisor's Pause over HTTP, the platform driven by the emulators over real HTTP, offers
delivered by ``run_streams`` (``live_stack``). No vendor page documents pausing a campaign on the
platform, so the product stops it: the agents working it go Not ready there and here, the offer
on a desk goes back to the platform, and an offer that arrives while paused never reaches the
desk and goes back too. Resumed, the next Ready gets offers again."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from agentdesk import services as desk
from agentdesk.models import Agent, Presence
from calls.models import Platform
from calls.services import CAMPAIGN_PAUSED
from campaigns.models import Campaign, Lead
from tests.calls.conftest import make_account, make_campaign
from tests.calls.test_live import wait_until
from tests.calls.test_streams import offered_lead
from tests.factories import make_user_agent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def boss() -> Client:
    client = Client()
    client.force_login(make_user_agent("boss", 9, supervisor=True).user)
    return client


def set_status(client: Client, campaign: Campaign, status: str) -> None:
    answer = client.post(reverse("supervisor:campaign_status", args=[campaign.pk]), {"status": status})
    assert answer.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).status == status


def go_ready(agent: Agent, campaign: Campaign) -> None:
    """What the desk's Ready does (agentdesk.desk_views.set_presence)."""
    desk.agent_set_presence(agent=agent, presence=Presence.READY, campaign=campaign)
    desk.desk_fill(agent=agent, campaign=campaign)


def paused_here(agent: Agent) -> bool:
    agent.refresh_from_db()
    return (agent.presence, agent.presence_reason) == (Presence.NOT_READY, CAMPAIGN_PAUSED)


def held(agent: Agent) -> list[Lead]:
    return list(Lead.objects.filter(lease_owner=agent))


def test_huawei_a_paused_campaigns_offers_go_back_and_stop(live_stack, emulator):
    alice = make_user_agent("alice", 1)  # workno 101 on the emulator
    campaign = make_campaign(make_account(Platform.HUAWEI, emulator.url), "demo-preview")
    desk.agent_select_campaign(agent=alice, campaign=campaign)
    go_ready(alice, campaign)
    emulator.control("POST", "huawei/campaigns", {"records": [{"numbers": ["2125550100"]}]})
    offer = offered_lead(alice)
    assert emulator.control("GET", "huawei/campaigns") == []  # the record is with alice

    supervisor = boss()
    set_status(supervisor, campaign, Campaign.Status.PAUSED)

    # Not ready on the platform (saybusy: Huawei withdraws the offer) and here; the record is
    # waiting on the platform again and the lead left alice's desk.
    assert not emulator.control("GET", "huawei/agents")["101"]["ready"]
    assert [r["numbers"] for r in emulator.control("GET", "huawei/campaigns")] == [["2125550100"]]
    assert paused_here(alice) and held(alice) == []
    assert not Lead.objects.get(pk=offer.pk).lease_owner_id

    # Someone on the platform makes alice idle: the gateway offers the record again. It never
    # reaches her desk: she is Not ready again on both sides and the record is back.
    emulator.control("POST", "huawei/agents/101/state", {"state": "idle"})
    wait_until(
        lambda: Lead.objects.filter(campaign=campaign, source=Lead.Source.PLATFORM).count() == 2,
        timeout=30,
        what="the offer made while paused to arrive",
    )
    wait_until(
        lambda: emulator.control("GET", "huawei/campaigns") and paused_here(alice),
        timeout=30,
        what="the offer made while paused to go back",
    )
    assert not emulator.control("GET", "huawei/agents")["101"]["ready"]
    assert held(alice) == []

    # Resumed: alice's Ready brings the record to her desk.
    set_status(supervisor, campaign, Campaign.Status.ACTIVE)
    go_ready(alice, campaign)
    again = offered_lead(alice)
    assert again.raw_number == "2125550100" and again.pk != offer.pk


def test_genesys_a_paused_campaigns_record_goes_back_to_the_pool(live_stack, emulator):
    alice = make_user_agent("alice", 1)  # agent1 on the emulator
    campaign = make_campaign(make_account(Platform.GENESYS, emulator.url), "DemoPreview")
    records = [{"phoneNumber": "2125550100"}, {"phoneNumber": "2125550101"}]
    emulator.control("POST", "genesys/campaigns", {"name": "DemoPreview", "records": records})
    desk.agent_select_campaign(agent=alice, campaign=campaign)
    go_ready(alice, campaign)
    offer = offered_lead(alice)
    handle = str((offer.offer.get("record") or offer.offer)["recordHandle"])

    supervisor = boss()
    set_status(supervisor, campaign, Campaign.Status.PAUSED)

    state = emulator.control("GET", "genesys/state")
    # NotReady on the platform; the record rescheduled as due now, no longer alice's.
    assert state["users"]["agent1"]["agentState"] == "NotReady"
    record = state["records"][handle]
    assert record["owner"] == "" and record["history"][-1].startswith("rescheduled:Campaign:")
    assert paused_here(alice) and held(alice) == []
    # Nothing more was asked for while paused.
    asks = [r for r in emulator.requests(platform="genesys") if "GetPreviewRecord" in (r.get("body") or "")]
    assert len(asks) == 1

    set_status(supervisor, campaign, Campaign.Status.ACTIVE)
    go_ready(alice, campaign)
    assert offered_lead(alice, exclude=(offer.pk,)).campaign_id == campaign.pk
