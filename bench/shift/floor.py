"""The floor of a shift: the demo's campaigns (``agentdesk.demo.seed_demo``), as many agents as
asked (``agent1`` … ``agentN``, password ``demo``, with the platform identities the demo gives
its five, mirrored here), the emulators told about them, and leads enough for the shift on every
platform: ours on Ryng, the platforms' own preview records on Huawei and Genesys.

Runs in the simulator's process with Django pointed at the stack's database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from agentdesk.demo import DEMO_PASSWORD, seed_demo
from agentdesk.models import AGENTS_GROUP, Agent
from calls.models import Platform, PlatformIdentity
from campaigns.models import Campaign, Lead
from campaigns.phone import strictest_zone, zones_for

# Area codes of leads (every US zone); the exchange 556-559 is the shift's, the demo uses 555.
AREAS = ["212", "312", "303", "415", "305", "206", "617", "512", "718", "773", "720", "510"]
PLATFORMS = (Platform.RYNG, Platform.HUAWEI, Platform.GENESYS)


@dataclass(frozen=True)
class Seat:
    username: str
    campaign_id: int
    platform: str
    platform_ref: str


def huawei_ref(n: int) -> str:
    return str(100 + n)


def shift_numbers(exchange: int, count: int) -> list[str]:
    return [f"+1{AREAS[i % len(AREAS)]}{exchange}{i:04d}" for i in range(count)]


@transaction.atomic
def agents_create(count: int) -> list[Agent]:
    """``agent1`` … ``agent<count>`` with the demo's identity scheme (agent n is Ryng agentID n,
    Huawei workno 100+n with phone 7000n, Genesys user agentn)."""
    User = get_user_model()
    group, _ = Group.objects.get_or_create(name=AGENTS_GROUP)
    agents = []
    for n in range(1, count + 1):
        username = f"agent{n}"
        user, created = User.objects.get_or_create(username=username, defaults={"first_name": f"Agent {n}"})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        user.groups.add(group)
        agent, _ = Agent.objects.get_or_create(user=user)
        for platform, identity in (
            (Platform.RYNG, {"ref": str(n), "username": f"{username}@demo.agentdesk"}),
            (Platform.HUAWEI, {"ref": huawei_ref(n), "phone": f"7000{n}"}),
            (Platform.GENESYS, {"ref": username}),
        ):
            PlatformIdentity.objects.update_or_create(agent=agent, platform=platform, defaults=identity)
        agents.append(agent)
    return agents


def ryng_leads(campaign: Campaign, count: int) -> int:
    """The shift's own leads on the Ryng campaign, fresh (pending, never called) every run."""
    numbers = shift_numbers(556, count)
    existing = set(
        Lead.objects.filter(campaign=campaign, number__in=numbers).values_list("number", flat=True)
    )
    Lead.objects.bulk_create(
        [
            Lead(
                campaign=campaign,
                number=number,
                raw_number=number,
                name=f"Shift lead {i}",
                custom_fields={"City": "—", "Plan": "Basic", "Account": f"SH-{i}"},
                timezone=strictest_zone(zones_for(number)),
                source=Lead.Source.SEED,
            )
            for i, number in enumerate(numbers)
            if number not in existing
        ]
    )
    # A lead another run left behind starts over (never one with a live call: none is left).
    Lead.objects.filter(campaign=campaign, number__in=numbers).exclude(status=Lead.Status.PENDING).update(
        status=Lead.Status.PENDING, attempts=0, next_attempt_at=None, lease_owner=None, lease_expires_at=None
    )
    return len(numbers)


def platform_records(emulator_url: str, count: int) -> None:
    """Preview records for the platforms that hand out their own leads (emulators/demo.py)."""
    huawei = [
        {"number": number, "callData": json.dumps({"name": f"Shift record {i}", "City": "—"})}
        for i, number in enumerate(shift_numbers(557, count))
    ]
    genesys = [
        {"phoneNumber": number, "userData": {"name": f"Shift record {i}", "City": "—"}}
        for i, number in enumerate(shift_numbers(558, count))
    ]
    for path, body in (
        ("/_emulator/huawei/campaigns", {"records": huawei, "replace": True}),
        ("/_emulator/genesys/campaigns", {"name": "DemoPreview", "records": genesys}),
    ):
        requests.post(f"{emulator_url}{path}", json=body, timeout=30).raise_for_status()


def floor_prepare(*, agents: int, leads_per_platform: int, emulator_url: str) -> list[Seat]:
    """Everything the shift needs; returns each agent's seat (a campaign, one platform each,
    dealt in turn so the three platforms get a third of the floor each)."""
    seed_demo(emulator_url=emulator_url)
    made = agents_create(agents)
    campaigns = {
        c.account.platform: c
        for c in Campaign.objects.select_related("account").filter(
            name__in=["Spring renewals (Ryng)", "Broadband upgrade (Huawei)", "Card activation (Genesys)"]
        )
    }
    requests.post(
        f"{emulator_url}/_emulator/config",
        json={
            "huawei_agents": [huawei_ref(n) for n in range(1, agents + 1)],
            "genesys_users": [f"agent{n}" for n in range(1, agents + 1)],
        },
        timeout=10,
    ).raise_for_status()
    ryng_leads(campaigns[Platform.RYNG], leads_per_platform)
    platform_records(emulator_url, leads_per_platform)
    seats = []
    for n, agent in enumerate(made, start=1):
        platform = PLATFORMS[(n - 1) % len(PLATFORMS)]
        ref = huawei_ref(n) if platform == Platform.HUAWEI else agent.user.get_username()
        seats.append(Seat(agent.user.get_username(), campaigns[platform].pk, platform, ref))
    return seats
