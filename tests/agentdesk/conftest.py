"""Named users for the desk's permission matrix: ``agent``, ``other`` (another agent) and
``supervisor``, plus a Ryng campaign with leads."""

from __future__ import annotations

import pytest
from django.http import HttpRequest
from django.test import Client

from tests.factories import PASSWORD, make_campaign, make_leads, make_user_agent


@pytest.fixture
def agent(db):
    return make_user_agent("agent", 1)


@pytest.fixture
def other(db):
    return make_user_agent("other", 2)


@pytest.fixture
def supervisor(db):
    return make_user_agent("boss", 9, supervisor=True)


@pytest.fixture
def campaign(db):
    return make_campaign()


@pytest.fixture
def leads(campaign):
    return make_leads(campaign, 5)


def login(agent) -> Client:
    """A test client signed in as ``agent``, sending htmx's header (fragments, not pages)."""
    client = Client(headers={"HX-Request": "true"})
    assert client.login(request=HttpRequest(), username=agent.user.username, password=PASSWORD)
    return client


@pytest.fixture
def agent_client(agent):
    return login(agent)


@pytest.fixture
def other_client(other):
    return login(other)
