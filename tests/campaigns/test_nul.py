"""NUL in what a person or a platform sends (campaigns.nul): form and query values arrive without
it, whatever the view; a platform's raw body keeps a visible symbol for it; nothing answers 500
(PostgreSQL refuses the character in text and JSON)."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from campaigns import nul
from campaigns.models import DoNotCall
from tests.factories import make_user_agent

pytestmark = pytest.mark.django_db


def test_shown_keeps_a_visible_symbol_for_raw_and_escaped_nul():
    assert nul.shown("a\x00b") == "a\u2400b"
    escaped = nul.shown(json.dumps({"name": "a\x00b"}))
    assert json.loads(escaped) == {"name": "a\u2400b"}


@pytest.fixture
def supervisor_client() -> Client:
    client = Client()
    client.force_login(make_user_agent("nul-supervisor", supervisor=True).user)
    return client


def test_a_form_value_arrives_without_nul(supervisor_client: Client):
    DoNotCall.objects.create(number="+12125550134")
    answer = supervisor_client.post(reverse("supervisor:dnc_remove"), {"number": "+1212555\x000134"})
    assert answer.status_code == 302
    assert not DoNotCall.objects.filter(number="+12125550134").exists()


def test_a_query_value_arrives_without_nul(supervisor_client: Client):
    answer = supervisor_client.get(reverse("audit"), {"q": "x\x00y", "\x00": "\x00"})
    assert answer.status_code == 200


def test_the_agents_typed_reason_is_stored_without_nul(client: Client):
    agent = make_user_agent("nul-agent")
    client.force_login(agent.user)
    answer = client.post(reverse("desk:presence"), {"presence": "not_ready", "reason": "Lun\x00ch"})
    assert answer.status_code < 400
    agent.refresh_from_db()
    assert "\x00" not in (agent.presence_reason or "")
