"""Who each platform knows an agent as: ``PlatformIdentity`` rows, turned into logins by the
adapters, edited in the admin with each platform's own words, and carried over from the old
per-platform columns on ``Agent`` by the migration."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from calls.admin import PlatformIdentityForm
from calls.models import Platform, PlatformIdentity
from calls.providers.base import AgentLogin
from calls.services import agent_login
from tests.calls.conftest import make_account

NOWHERE = "http://127.0.0.1:9"


@pytest.mark.django_db
def test_each_adapter_builds_the_login_from_the_identity_and_the_account(alice):
    logins = {
        platform: agent_login(agent=alice, account=make_account(platform, NOWHERE))
        for platform in (Platform.RYNG, Platform.HUAWEI, Platform.GENESYS)
    }
    assert logins[Platform.RYNG] == AgentLogin(ref="1", username="alice@example.test")
    assert logins[Platform.HUAWEI] == AgentLogin(ref="101", password="demo", phone="70001")
    assert logins[Platform.GENESYS] == AgentLogin(ref="agent1", password="demo", username="agent1")


@pytest.mark.django_db
def test_an_agent_without_an_identity_on_the_platform_logs_in_as_nobody(alice):
    PlatformIdentity.objects.filter(agent=alice, platform=Platform.HUAWEI).delete()
    login = agent_login(agent=alice, account=make_account(Platform.HUAWEI, NOWHERE))
    assert (login.ref, login.phone) == ("", "")


@pytest.mark.django_db
def test_the_admin_form_speaks_each_platforms_words_and_refuses_unused_fields(alice):
    form = PlatformIdentityForm()
    assert "Huawei CC-Gateway: Huawei agent id (workno)" in form.fields["ref"].help_text
    assert "Ryng: Ryng agent username" in form.fields["username"].help_text
    PlatformIdentity.objects.filter(agent=alice).delete()
    data = {"agent": alice.pk, "platform": Platform.GENESYS, "ref": "agent7", "username": "", "phone": "555"}
    form = PlatformIdentityForm(data)
    assert not form.is_valid()
    assert "Genesys username" in form.errors["phone"][0]
    form = PlatformIdentityForm({**data, "phone": ""})
    assert form.is_valid(), form.errors
    form.save()
    assert PlatformIdentity.objects.get(agent=alice).ref == "agent7"


@pytest.mark.django_db
def test_the_identity_admin_pages_load(admin_client, alice):
    assert admin_client.get("/admin/calls/platformidentity/").status_code == 200
    identity = PlatformIdentity.objects.get(agent=alice, platform=Platform.RYNG)
    page = admin_client.get(f"/admin/calls/platformidentity/{identity.pk}/change/")
    assert page.status_code == 200 and b"Ryng agentID" in page.content


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", password="root-pass-word")
    client.force_login(user)
    return client


BEFORE = [("agentdesk", "0002_agent_desk_campaign"), ("calls", "0004_call_lead_reference_triggers")]
AFTER = [("agentdesk", "0003_agent_identities_moved"), ("calls", "0005_platform_identity")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_carries_the_old_columns_over_and_back():
    apps = _migrate(BEFORE)
    try:
        User = apps.get_model("auth", "User")
        Agent = apps.get_model("agentdesk", "Agent")
        full = Agent.objects.create(
            user=User.objects.create(username="full"),
            ryng_agent_id="3",
            ryng_username="full@ryng.test",
            huawei_agent_id="103",
            huawei_phone="70003",
            genesys_username="agent3",
        )
        partial = Agent.objects.create(user=User.objects.create(username="partial"), huawei_phone="70004")
        Agent.objects.create(user=User.objects.create(username="none"))

        apps = _migrate(AFTER)
        Identity = apps.get_model("calls", "PlatformIdentity")
        rows = {
            (row.agent_id, row.platform): (row.ref, row.username, row.phone) for row in Identity.objects.all()
        }
        assert rows == {
            (full.pk, "ryng"): ("3", "full@ryng.test", ""),
            (full.pk, "huawei"): ("103", "", "70003"),
            (full.pk, "genesys"): ("agent3", "", ""),
            (partial.pk, "huawei"): ("", "", "70004"),
        }

        apps = _migrate(BEFORE)  # and back: the columns get their values again
        Agent = apps.get_model("agentdesk", "Agent")
        back = Agent.objects.get(pk=full.pk)
        assert (back.ryng_agent_id, back.ryng_username, back.huawei_agent_id, back.huawei_phone) == (
            "3",
            "full@ryng.test",
            "103",
            "70003",
        )
        assert back.genesys_username == "agent3"
        assert Agent.objects.get(pk=partial.pk).huawei_phone == "70004"
    finally:
        _migrate(_leaves())


def _leaves():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()
