"""Named users and rows for the calls engine tests: an agent (``alice``), another agent (``bob``),
a supervisor, and one account + campaign per platform pointed at the emulators."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from agentdesk.models import Agent
from calls.models import Platform, TelephonyAccount
from campaigns.models import Campaign, Disposition, Lead
from tests.factories import make_user_agent as make_agent

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture
def alice(db) -> Agent:
    return make_agent("alice", 1)


@pytest.fixture
def bob(db) -> Agent:
    return make_agent("bob", 2)


def make_account(platform: str, emulator_url: str) -> TelephonyAccount:
    base = {
        Platform.RYNG: "/rest-api/v1",
        Platform.HUAWEI: "/agentgateway/resource",
        Platform.GENESYS: "/api/v2",
    }[platform]
    account = TelephonyAccount(name=f"Test {platform}", platform=platform, base_url=f"{emulator_url}{base}")
    account.credentials = (
        {"token": "demo-ryng-token"} if platform == Platform.RYNG else {"agent_password": "demo"}
    )
    account.save()
    return account


def make_campaign(account: TelephonyAccount, platform_campaign_id: str = "595") -> Campaign:
    campaign = Campaign.objects.create(
        name=f"Campaign {account.platform}",
        account=account,
        platform_campaign_id=platform_campaign_id,
        window_start=time(0, 0),
        window_end=time.max,
        attempt_cap=3,
    )
    for position, (name, outcome) in enumerate(
        [
            ("Interested", Disposition.Outcome.FINAL),
            ("No answer", Disposition.Outcome.RETRY),
            ("Call back", Disposition.Outcome.CALLBACK),
            ("Do not call", Disposition.Outcome.DNC),
        ]
    ):
        Disposition.objects.create(campaign=campaign, name=name, outcome=outcome, position=position)
    return campaign


def lease_lead(campaign: Campaign, agent: Agent, number: str = "+12125550100", **extra) -> Lead:
    return Lead.objects.create(
        campaign=campaign,
        number=number,
        name=extra.pop("name", "Ava Garcia"),
        timezone="America/New_York",
        lease_owner=agent,
        lease_expires_at=timezone.now() + timedelta(minutes=5),
        **extra,
    )


@pytest.fixture
def ryng_account(db, emulator) -> TelephonyAccount:
    return make_account(Platform.RYNG, emulator.url)


@pytest.fixture
def ryng_campaign(ryng_account) -> Campaign:
    return make_campaign(ryng_account, "595")


@pytest.fixture
def ryng_lead(ryng_campaign, alice) -> Lead:
    return lease_lead(ryng_campaign, alice)


def make_live_call(
    campaign: Campaign,
    agent: Agent,
    *,
    number: str = "+12125550100",
    state: str = "dialing",
    platform_call_id: str = "",
):
    """A call on ``agent``'s desk for a freshly leased lead of ``campaign``."""
    from django.utils import timezone

    from calls.models import Call

    lead = lease_lead(campaign, agent, number=number)
    return Call.objects.create(
        lead=lead,
        campaign=campaign,
        agent=agent,
        account=campaign.account,
        number=lead.number,
        state=state,
        platform_call_id=platform_call_id,
        state_changed_at=timezone.now(),
    )
