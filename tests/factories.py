"""Rows for the desk tests: named users (an agent, another agent, a supervisor), a campaign on a
platform account, leads and dispositions. Accounts point at a URL that is never called unless a
test says so (Ryng campaigns need no platform session)."""

from __future__ import annotations

from datetime import time

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from agentdesk.models import AGENTS_GROUP, SUPERVISORS_GROUP, Agent
from calls.models import Call, CallState, Platform, PlatformIdentity, TelephonyAccount
from campaigns.models import Campaign, Disposition, Lead

PASSWORD = "desk-test-pass"
DISPOSITIONS = [
    ("Interested", Disposition.Outcome.FINAL),
    ("No answer", Disposition.Outcome.RETRY),
    ("Call back", Disposition.Outcome.CALLBACK),
    ("Do not call", Disposition.Outcome.DNC),
]


def make_user_agent(username: str, n: int = 1, *, supervisor: bool = False) -> Agent:
    user = get_user_model().objects.create_user(username, password=PASSWORD)
    group, _ = Group.objects.get_or_create(name=SUPERVISORS_GROUP if supervisor else AGENTS_GROUP)
    user.groups.add(group)
    agent = Agent.objects.create(user=user)
    # Who the emulators know agent ``n`` as: Ryng agentID n, Huawei workno 100+n, Genesys agent<n>.
    for platform, identity in (
        (Platform.RYNG, {"ref": str(n), "username": f"{username}@example.test"}),
        (Platform.HUAWEI, {"ref": str(100 + n), "phone": f"7000{n}"}),
        (Platform.GENESYS, {"ref": f"agent{n}"}),
    ):
        PlatformIdentity.objects.create(agent=agent, platform=platform, **identity)
    return agent


def platform_username(agent: Agent, platform: str) -> str:
    """The agent's username on ``platform`` (its identity row)."""
    return PlatformIdentity.objects.get(agent=agent, platform=platform).username


def make_campaign(
    platform: str = Platform.RYNG,
    *,
    base_url: str = "http://127.0.0.1:9/rest-api/v1",
    name: str = "Desk test campaign",
    window: tuple[time, time] = (time(0, 0), time.max),
    platform_campaign_id: str = "595",
) -> Campaign:
    account = TelephonyAccount(name=f"{name} account", platform=platform, base_url=base_url)
    account.credentials = (
        {"token": "demo-ryng-token"} if platform == Platform.RYNG else {"agent_password": "demo"}
    )
    account.save()
    campaign = Campaign.objects.create(
        name=name,
        account=account,
        platform_campaign_id=platform_campaign_id,
        custom_field_names=["City", "Plan"],
        window_start=window[0],
        window_end=window[1],
    )
    for position, (label, outcome) in enumerate(DISPOSITIONS, start=1):
        Disposition.objects.create(campaign=campaign, name=label, outcome=outcome, position=position)
    return campaign


def make_leads(
    campaign: Campaign, count: int = 3, *, start: int = 0, tz: str = "America/New_York"
) -> list[Lead]:
    return [
        Lead.objects.create(
            campaign=campaign,
            number=f"+1212555{start + i:04d}",
            name=f"Lead {start + i}",
            custom_fields={"City": "New York", "Plan": "Plus"},
            timezone=tz,
            source=Lead.Source.SEED,
        )
        for i in range(count)
    ]


def make_call(agent: Agent, lead: Lead, state: str = CallState.CONNECTED) -> Call:
    return Call.objects.create(
        lead=lead,
        campaign=lead.campaign,
        agent=agent,
        account=lead.campaign.account,
        state=state,
        number=lead.number,
    )


def disposition_rows(*rows: dict, initial: int = 0, prefix: str = "disp") -> dict:
    """The campaign form's disposition rows as a browser posts them (a formset): each row a dict
    of name, outcome (default final), retry_delay_minutes, key, is_conversion, id, ORDER (default
    its place), DELETE; ``initial`` rows came from the saved campaign."""
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "40",
    }
    for index, row in enumerate(rows):
        values = {"outcome": "final", "ORDER": index + 1, **row}
        for name, value in values.items():
            if name in ("is_conversion", "DELETE"):
                if value:
                    data[f"{prefix}-{index}-{name}"] = "on"
            elif value is not None:
                data[f"{prefix}-{index}-{name}"] = str(value)
    return data
