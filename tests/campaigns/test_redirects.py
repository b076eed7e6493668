"""No open redirect: a ``next`` that points off the site sends a person back to our own page."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

OFF_SITE = [
    "https://evil.example/",
    "//evil.example/x",
    "https:evil.example",
    "/\\evil.example",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_pausing_a_campaign_never_redirects_off_site(supervisor_client, campaign, target):
    answer = supervisor_client.post(
        reverse("supervisor:campaign_status", args=[campaign.pk]), {"status": "paused", "next": target}
    )
    assert answer.status_code == 302
    assert answer["Location"] == reverse("supervisor:campaign", args=[campaign.pk])


def test_pausing_from_the_dashboard_goes_back_there(supervisor_client, campaign):
    answer = supervisor_client.post(
        reverse("supervisor:campaign_status", args=[campaign.pk]),
        {"status": "paused", "next": "/supervisor/"},
    )
    assert answer["Location"] == "/supervisor/"


@pytest.mark.parametrize("target", OFF_SITE)
def test_signing_in_never_redirects_off_site(agent, target):
    answer = Client().post(
        "/login/",
        {"username": agent.user.username, "password": PASSWORD, "next": target},
        REMOTE_ADDR="10.5.5.5",
    )
    assert answer.status_code == 302
    assert not answer["Location"].startswith(("http", "//", "javascript")), answer["Location"]
