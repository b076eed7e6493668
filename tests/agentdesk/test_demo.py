import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured

from agentdesk.demo import seed_demo
from agentdesk.models import Agent
from calls.models import TelephonyAccount
from campaigns.models import Campaign, Disposition, Lead


def counts():
    return (
        User.objects.count(),
        Agent.objects.count(),
        TelephonyAccount.objects.count(),
        Campaign.objects.count(),
        Disposition.objects.count(),
        Lead.objects.count(),
    )


def test_seed_is_idempotent(db, settings):
    settings.DEMO_MODE = True
    seed_demo(emulator_url="http://127.0.0.1:8100")
    first = counts()
    seed_demo(emulator_url="http://127.0.0.1:8100")
    assert counts() == first
    assert first[0] == 7  # agent1..agent5, supervisor, admin
    assert set(TelephonyAccount.objects.values_list("platform", flat=True)) == {"ryng", "huawei", "genesys"}
    assert User.objects.get(username="agent1").check_password("demo")
    assert User.objects.get(username="supervisor").groups.filter(name="supervisors").exists()


def test_the_demo_supervisor_is_no_superuser_and_the_admin_is_its_own_login(db, settings):
    settings.DEMO_MODE = True
    User.objects.create_user("supervisor", password="demo", is_staff=True, is_superuser=True)  # older seed
    seed_demo(emulator_url="http://127.0.0.1:8100")
    supervisor = User.objects.get(username="supervisor")
    assert not supervisor.is_staff and not supervisor.is_superuser
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("demo")
    assert not admin.groups.exists()


def test_seed_follows_a_moved_emulator(db, settings):
    settings.DEMO_MODE = True
    seed_demo(emulator_url="http://127.0.0.1:8100")
    seed_demo(emulator_url="http://127.0.0.1:9999")
    assert all(a.base_url.startswith("http://127.0.0.1:9999/") for a in TelephonyAccount.objects.all())


def test_seed_refuses_outside_demo_mode(db, settings):
    settings.DEMO_MODE = False
    with pytest.raises(ImproperlyConfigured, match="AGENTDESK_DEMO"):
        seed_demo()


def test_credentials_are_encrypted_at_rest(db, settings):
    settings.DEMO_MODE = True
    seed_demo(emulator_url="http://127.0.0.1:8100")
    account = TelephonyAccount.objects.get(platform="ryng")
    assert "demo-ryng-token" not in account.credentials_encrypted
    assert account.credentials == {"token": "demo-ryng-token"}
    assert "demo-ryng-token" not in repr(account.config())


def test_the_demo_campaigns_can_be_called_at_any_minute(db, settings):
    """The demo is shown at any hour: its window has no gap, not even the last minute of a day."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from campaigns.selectors import calling_window_status

    settings.DEMO_MODE = True
    seed_demo(emulator_url="http://127.0.0.1:8100")
    lead = Lead.objects.filter(campaign__account__platform="ryng").first()
    zone = ZoneInfo(lead.timezone)
    for local in ((23, 59, 59, 500000), (0, 0, 0, 0), (12, 0, 0, 0)):
        at = datetime(2026, 11, 23, *local, tzinfo=zone)
        assert calling_window_status(lead, at)[0], at
