"""Sign-in throttling as a person meets it: wrong passwords on the login page and the admin's,
the lockout page, a supervisor's Unlock on the agents board, and the cool-off running out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import Client

from tests.agentdesk.conftest import login
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def sign_in(client: Client, username: str, password: str, path: str = "/login/", address: str = "10.0.0.7"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_the_sixth_try_is_refused_even_with_the_right_password(agent):
    client = Client()
    for _ in range(4):
        answer = sign_in(client, "agent", "wrong-password")
        assert answer.status_code == 200
        assert "Please enter a correct username and password" in answer.content.decode()
    fifth = sign_in(client, "agent", "wrong-password")
    assert fifth.status_code == 200
    assert "sign-in is now paused for 15 minutes" in fifth.content.decode()
    answer = sign_in(client, "agent", PASSWORD)
    assert answer.status_code == 429
    page = answer.content.decode()
    assert "Sign-in paused" in page and "15 minutes" in page and "<strong>agent</strong>" in page
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_by_username_from_any_address(agent):
    client = Client()
    for n in range(5):
        sign_in(client, "agent", "wrong-password", address=f"10.0.1.{n}")
    assert sign_in(client, "agent", PASSWORD, address="10.0.2.1").status_code == 429


def test_the_lockout_is_by_address_whatever_the_username(agent, other):
    client = Client()
    for n in range(5):
        sign_in(client, f"guess{n}", "wrong-password", address="10.9.9.9")
    assert sign_in(client, "other", PASSWORD, address="10.9.9.9").status_code == 429
    # Another address is not affected.
    assert sign_in(Client(), "other", PASSWORD, address="10.9.9.10").status_code == 302


def test_the_admin_login_is_throttled_too(db):
    User.objects.create_user("root", password="root-pass-123", is_staff=True, is_superuser=True)
    client = Client()
    for _ in range(5):
        assert sign_in(client, "root", "nope", path="/admin/login/").status_code == 200
    assert sign_in(client, "root", "root-pass-123", path="/admin/login/").status_code == 429


def test_a_supervisor_sees_the_locked_agent_and_unlocks_them(agent, supervisor):
    boss = Client()
    boss.force_login(supervisor.user)
    for _ in range(5):
        sign_in(Client(), "agent", "wrong-password")
    assert sign_in(Client(), "agent", PASSWORD).status_code == 429
    board = boss.get("/supervisor/agents/").content.decode()
    assert 'id="signin-lockouts"' in board and "Sign-ins paused" in board
    assert 'name="value" value="agent"' in board
    answer = boss.post("/supervisor/agents/unlock/", {"kind": "username", "value": "agent"}, follow=True)
    assert "Unlocked agent" in answer.content.decode()
    assert sign_in(Client(), "agent", PASSWORD).status_code == 302
    assert 'id="signin-lockouts"' not in boss.get("/supervisor/agents/").content.decode()


def test_a_supervisor_unlocks_an_address(agent, supervisor):
    boss = Client()
    boss.force_login(supervisor.user)
    for n in range(5):
        sign_in(Client(), f"guess{n}", "wrong-password", address="10.3.3.3")
    assert sign_in(Client(), "agent", PASSWORD, address="10.3.3.3").status_code == 429
    assert 'name="value" value="10.3.3.3"' in boss.get("/supervisor/agents/").content.decode()
    boss.post("/supervisor/agents/unlock/", {"kind": "address", "value": "10.3.3.3"})
    assert sign_in(Client(), "agent", PASSWORD, address="10.3.3.3").status_code == 302


def test_a_supervisor_cannot_unlock_a_supervisor_and_an_agent_cannot_unlock_anyone(agent, supervisor):
    boss = Client()
    boss.force_login(supervisor.user)  # before the failures: a good sign-in clears them
    agent_client = login(agent)
    for _ in range(5):
        sign_in(Client(), supervisor.user.username, "wrong-password", address="10.1.1.1")
    board = boss.get("/supervisor/agents/").content.decode()
    assert f'name="value" value="{supervisor.user.username}"' not in board
    answer = boss.post(
        "/supervisor/agents/unlock/", {"kind": "username", "value": supervisor.user.username}, follow=True
    )
    assert "not locked out" in answer.content.decode()
    assert AccessAttempt.objects.filter(username=supervisor.user.username).exists()
    answer = agent_client.post("/supervisor/agents/unlock/", {"kind": "address", "value": "10.1.1.1"})
    assert answer.status_code == 403
    assert AccessAttempt.objects.filter(ip_address="10.1.1.1").exists()


def test_the_lockout_ends_by_itself_after_the_cool_off(agent, settings):
    client = Client()
    for _ in range(5):
        sign_in(client, "agent", "wrong-password")
    assert sign_in(client, "agent", PASSWORD).status_code == 429
    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.first().attempt_time - timedelta(minutes=16)
    )
    assert sign_in(client, "agent", PASSWORD).status_code == 302


def test_a_good_sign_in_clears_the_earlier_wrong_ones(agent):
    client = Client()
    for _ in range(4):
        sign_in(client, "agent", "wrong-password")
    assert sign_in(Client(), "agent", PASSWORD).status_code == 302
    for _ in range(4):
        sign_in(client, "agent", "wrong-password")
    assert sign_in(Client(), "agent", PASSWORD).status_code == 302
