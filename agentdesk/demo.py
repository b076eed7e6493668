"""The demo: logins, one telephony account and campaign per platform, pointed at the emulators.

Idempotent: every run converges on the same rows (looked up by natural keys) and never
duplicates. Refuses to run unless ``AGENTDESK_DEMO`` is on, because it creates logins with the
password ``demo``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from agentdesk.models import AGENTS_GROUP, SUPERVISORS_GROUP, Agent
from calls.models import Platform, PlatformIdentity, TelephonyAccount
from campaigns.models import Campaign, Disposition, Lead

DEMO_PASSWORD = "demo"
AGENT_USERNAMES = [f"agent{n}" for n in range(1, 6)]
SUPERVISOR_USERNAME = "supervisor"
ADMIN_USERNAME = "admin"

DISPOSITIONS = [
    ("Interested", Disposition.Outcome.FINAL, None),
    ("Not interested", Disposition.Outcome.FINAL, None),
    ("No answer", Disposition.Outcome.RETRY, 60),
    ("Call back", Disposition.Outcome.CALLBACK, None),
    ("Wrong number", Disposition.Outcome.FINAL, None),
    ("Do not call", Disposition.Outcome.DNC, None),
]
CONVERSIONS = {"Interested"}  # what counts as a conversion (the agent's day, the wallboard)

# (name, national number, city, plan) spread over US time zones.
_FIRST = ["Ava", "Liam", "Mia", "Noah", "Zoe", "Ethan", "Isla", "Lucas", "Nora", "Owen"]
_LAST = ["Garcia", "Smith", "Nguyen", "Patel", "Kowalski", "O'Brien", "Haddad", "Rossi", "Kim", "Silva"]
_AREAS = [
    ("212", "New York"),
    ("312", "Chicago"),
    ("303", "Denver"),
    ("415", "San Francisco"),
    ("305", "Miami"),
    ("206", "Seattle"),
    ("617", "Boston"),
    ("512", "Austin"),
]
_PLANS = ["Basic", "Plus", "Premium"]


@dataclass(frozen=True)
class DemoSummary:
    users: int
    campaigns: int
    leads: int


def demo_leads(count: int = 60) -> list[dict[str, object]]:
    rows = []
    for i in range(count):
        area, city = _AREAS[i % len(_AREAS)]
        rows.append(
            {
                "name": f"{_FIRST[i % 10]} {_LAST[(i * 3) % 10]}",
                "number": f"+1{area}555{i:04d}",
                "custom_fields": {"City": city, "Plan": _PLANS[i % 3], "Account": f"AC-{1000 + i}"},
            }
        )
    return rows


def _platform_base(platform: str, emulator_url: str) -> str:
    return {
        Platform.RYNG: f"{emulator_url}/rest-api/v1",
        Platform.HUAWEI: f"{emulator_url}/agentgateway/resource",
        Platform.GENESYS: f"{emulator_url}/api/v2",
    }[platform]


@transaction.atomic
def seed_demo(*, emulator_url: str | None = None) -> DemoSummary:
    if not settings.DEMO_MODE:
        raise ImproperlyConfigured("AGENTDESK_DEMO=1 is required to seed demo logins (never in production)")
    emulator_url = (emulator_url or settings.EMULATOR_URL).rstrip("/")
    User = get_user_model()
    agents_group, _ = Group.objects.get_or_create(name=AGENTS_GROUP)
    supervisors_group, _ = Group.objects.get_or_create(name=SUPERVISORS_GROUP)

    def user(username: str, **extra) -> object:
        obj, created = User.objects.get_or_create(username=username, defaults=extra)
        if created:
            obj.set_password(DEMO_PASSWORD)
            obj.save(update_fields=["password"])
        return obj

    agents = []
    for n, username in enumerate(AGENT_USERNAMES, start=1):
        account_user = user(username, first_name=f"Agent {n}")
        account_user.groups.add(agents_group)
        agent, _ = Agent.objects.get_or_create(user=account_user)
        # Who each emulator knows the agent as (emulators/: Ryng agentIDs, Huawei workno 101-105
        # with phones 7000n, Genesys users agent1-agent5).
        for platform, identity in (
            (Platform.RYNG, {"ref": str(n), "username": f"{username}@demo.agentdesk"}),
            (Platform.HUAWEI, {"ref": str(100 + n), "phone": f"7000{n}"}),
            (Platform.GENESYS, {"ref": username}),
        ):
            PlatformIdentity.objects.update_or_create(agent=agent, platform=platform, defaults=identity)
        agents.append(agent)
    # The supervisor works the floor, with no way into the admin; the admin is its own login.
    supervisor = user(SUPERVISOR_USERNAME, first_name="Sam")
    if supervisor.is_staff or supervisor.is_superuser:  # seeded by an older version
        supervisor.is_staff = supervisor.is_superuser = False
        supervisor.save(update_fields=["is_staff", "is_superuser"])
    supervisor.groups.add(supervisors_group)
    user(ADMIN_USERNAME, first_name="Admin", is_staff=True, is_superuser=True)
    Agent.objects.get_or_create(user=supervisor)

    accounts = {}
    for platform, credentials in (
        (Platform.RYNG, {"token": "demo-ryng-token"}),
        (Platform.HUAWEI, {"agent_password": DEMO_PASSWORD}),
        (Platform.GENESYS, {"agent_password": DEMO_PASSWORD}),
    ):
        account, _ = TelephonyAccount.objects.get_or_create(
            name=f"Demo {Platform(platform).label}", defaults={"platform": platform}
        )
        account.platform = platform
        account.base_url = _platform_base(platform, emulator_url)
        account.credentials = credentials
        account.save()
        accounts[platform] = account

    campaigns = []
    for platform, name, platform_campaign_id in (
        (Platform.RYNG, "Spring renewals (Ryng)", "595"),
        (Platform.HUAWEI, "Broadband upgrade (Huawei)", "demo-preview"),
        (Platform.GENESYS, "Card activation (Genesys)", "DemoPreview"),
    ):
        campaign, _ = Campaign.objects.get_or_create(
            name=name,
            defaults={
                "account": accounts[platform],
                "platform_campaign_id": platform_campaign_id,
                "custom_field_names": ["City", "Plan", "Account"],
                # The demo can be shown at any hour; real campaigns keep the 09:00-21:00 default.
                "window_start": time(0, 0),
                "window_end": time.max,  # through 23:59:59.999999: no gap at midnight
            },
        )
        for position, (label, outcome, delay) in enumerate(DISPOSITIONS, start=1):
            Disposition.objects.get_or_create(
                campaign=campaign,
                name=label,
                defaults={
                    "outcome": outcome,
                    "retry_delay_minutes": delay,
                    "position": position,
                    "is_conversion": label in CONVERSIONS,
                },
            )
        campaigns.append(campaign)

    # Ryng leads are ours; Huawei and Genesys hand out their own (emulators/demo.py loads them).
    ryng = campaigns[0]
    existing = set(Lead.objects.filter(campaign=ryng).values_list("number", flat=True))
    Lead.objects.bulk_create(
        [
            Lead(
                campaign=ryng,
                number=row["number"],
                raw_number=row["number"],
                name=row["name"],
                custom_fields=row["custom_fields"],
                timezone="",
                source=Lead.Source.SEED,
            )
            for row in demo_leads()
            if row["number"] not in existing
        ]
    )
    _fill_timezones(ryng)
    return DemoSummary(
        users=User.objects.filter(
            username__in=[*AGENT_USERNAMES, SUPERVISOR_USERNAME, ADMIN_USERNAME]
        ).count(),
        campaigns=len(campaigns),
        leads=Lead.objects.filter(campaign__in=campaigns).count(),
    )


def _fill_timezones(campaign: Campaign) -> None:
    import phonenumbers
    from phonenumbers import timezone as pn_timezone

    for lead in Lead.objects.filter(campaign=campaign, timezone=""):
        zones = pn_timezone.time_zones_for_number(phonenumbers.parse(lead.number))
        lead.timezone = zones[0] if zones and zones[0] != "Etc/Unknown" else "UTC"
        lead.save(update_fields=["timezone"])
