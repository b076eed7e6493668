"""Each role reaches its own pages only; anonymous users are sent to the login page."""

import pytest
from django.contrib.auth.models import Group, User

from agentdesk.models import AGENTS_GROUP, SUPERVISORS_GROUP, Agent


@pytest.fixture
def agent_user(db):
    user = User.objects.create_user("alice", password="pw-alice-123")
    user.groups.add(Group.objects.get_or_create(name=AGENTS_GROUP)[0])
    Agent.objects.create(user=user)
    return user


@pytest.fixture
def supervisor_user(db):
    user = User.objects.create_user("sam", password="pw-sam-123")
    user.groups.add(Group.objects.get_or_create(name=SUPERVISORS_GROUP)[0])
    return user


@pytest.fixture
def outsider(db):
    return User.objects.create_user("olga", password="pw-olga-123")


@pytest.mark.parametrize("url", ["/", "/desk/", "/supervisor/"])
def test_anonymous_users_are_sent_to_login(client, db, url):
    answer = client.get(url)
    assert answer.status_code == 302
    assert answer["Location"].startswith("/login/?next=")


def test_anonymous_admin_goes_to_admin_login(client, db):
    answer = client.get("/admin/")
    assert answer.status_code == 302
    assert "/admin/login/" in answer["Location"]


def test_agent_reaches_the_desk_but_not_supervisor_pages_or_admin(client, agent_user):
    client.force_login(agent_user)
    assert client.get("/").url == "/desk/"
    assert client.get("/desk/").status_code == 200
    assert client.get("/supervisor/").status_code == 403
    assert client.get("/admin/").status_code == 302  # staff only


def test_supervisor_reaches_supervisor_pages_but_not_the_desk(client, supervisor_user):
    client.force_login(supervisor_user)
    assert client.get("/").url == "/supervisor/"
    assert client.get("/supervisor/").status_code == 200
    assert client.get("/desk/").status_code == 403


def test_user_without_a_role_gets_403(client, outsider):
    client.force_login(outsider)
    assert client.get("/desk/").status_code == 403
    assert client.get("/supervisor/").status_code == 403


def test_staff_reaches_the_admin(client, db):
    admin = User.objects.create_user("root", password="pw-root-123", is_staff=True, is_superuser=True)
    client.force_login(admin)
    assert client.get("/admin/").status_code == 200


def test_login_page_signs_in_and_logout_signs_out(client, agent_user):
    page = client.get("/login/")
    assert page.status_code == 200
    assert b"Sign in" in page.content
    answer = client.post("/login/", {"username": "alice", "password": "pw-alice-123"})
    assert answer.status_code == 302
    assert client.get("/desk/").status_code == 200
    assert client.post("/logout/").status_code == 302
    assert client.get("/desk/").status_code == 302


def test_wrong_password_shows_an_error(client, agent_user):
    page = client.post("/login/", {"username": "alice", "password": "nope"})
    assert page.status_code == 200
    assert b'role="alert"' in page.content


def test_a_role_taken_away_is_refused_on_the_next_request(client, agent_user, supervisor_user):
    """Roles are read with the user on every request, never kept in the session: a supervisor
    taking an agent out of the agents group (or a user given two roles) counts at once."""
    client.force_login(agent_user)
    assert client.get("/desk/").status_code == 200
    agent_user.groups.clear()
    assert client.get("/desk/").status_code == 403
    agent_user.groups.add(*Group.objects.filter(name__in=[AGENTS_GROUP, SUPERVISORS_GROUP]))
    assert client.get("/desk/").status_code == 200
    assert client.get("/supervisor/").status_code == 200
    agent_user.is_active = False
    agent_user.save(update_fields=["is_active"])
    assert client.get("/desk/").status_code == 302  # signed out


def test_a_signed_in_request_reads_its_user_roles_and_agent_in_one_query(
    client, agent_user, django_assert_num_queries
):
    from django.contrib.auth import get_user
    from django.test import RequestFactory

    client.force_login(agent_user)
    request = RequestFactory().get("/desk/")
    request.session = client.session
    with django_assert_num_queries(1):
        user = get_user(request)
        assert user == agent_user
        assert user.agent.user_id == agent_user.pk
        from agentdesk.roles import is_agent, is_supervisor

        assert is_agent(user) and not is_supervisor(user)
