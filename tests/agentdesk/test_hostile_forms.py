"""Every command a person posts, with generated values in every field (hypothesis): the desk's
commands as an agent in the middle of their work, and the supervisor's forms. Each answers in
words (a 2xx, a 4xx, a form error); none is a 500."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentdesk.models import Agent
from calls.models import CallState
from campaigns.models import SheetUpload
from tests.agentdesk.conftest import login
from tests.campaigns.conftest import sheet_bytes, upload_sheet
from tests.factories import make_call, make_campaign, make_leads, make_user_agent

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "0", "-1", "99999999999999999999", "1e9", "NaN", "ready", "on_call", "toggle",
                     "<script>alert(1)</script>", "'; DROP TABLE leads;--", "\x00", "2026-13-45T25:61",
                     "9999-12-31T23:59", "../../etc/passwd", "💥" * 50, "a" * 5000]),
)  # fmt: skip


def form(keys: list[str]):
    known = st.dictionaries(st.sampled_from(keys), values, max_size=len(keys))
    return st.one_of(known, st.dictionaries(st.text(max_size=12), values, max_size=4))


DESK_KEYS = [
    "campaign",
    "presence",
    "reason",
    "attempt",
    "disposition",
    "notes",
    "callback_at",
    "call",
    "lead",
]


@pytest.fixture
def working_agent(agent):
    """An agent holding a lead, with an ended call waiting for its disposition."""
    campaign = make_campaign()
    held, called = make_leads(campaign, 2)
    held.lease_owner, held.lease_expires_at = agent, timezone.now() + timedelta(minutes=5)
    held.save()
    call = make_call(agent, called, state=CallState.ENDED)
    agent.desk_campaign = campaign
    agent.save()
    return agent, held, call


@FUZZ
@given(data=st.data())
def test_every_desk_command_answers_anything_without_a_500(working_agent, data):
    agent, lead, call = working_agent
    client = login(agent)
    for path in (
        "/desk/campaign/",
        "/desk/presence/",
        "/desk/next/",
        "/desk/renew/",
        f"/desk/leads/{lead.pk}/skip/",
        f"/desk/leads/{lead.pk}/dial/",
        f"/desk/calls/{call.pk}/end/",
        "/desk/dispose/",
        "/desk/draft/",
    ):
        fields = data.draw(form(DESK_KEYS), label=path)
        tab = data.draw(st.one_of(st.none(), st.text(max_size=20)), label="tab")
        headers = {"X-Desk-Tab": tab} if tab else {}
        answer = client.post(path, fields, headers=headers)
        assert answer.status_code < 500, (path, fields, answer.status_code)


CAMPAIGN_KEYS = ["name", "account", "platform_campaign_id", "agent_mapping", "push_format", "default_region",
                 "window_start", "window_end", "attempt_cap", "retry_delay_minutes", "custom_fields_text",
                 "disp-TOTAL_FORMS", "disp-INITIAL_FORMS", "disp-0-id", "disp-0-name", "disp-0-outcome",
                 "disp-0-retry_delay_minutes", "disp-0-key", "disp-0-ORDER", "disp-0-DELETE", "disp-1-name",
                 "disp-1-key", "disp-1-ORDER", "agents", "status", "next"]  # fmt: skip


@FUZZ
@given(data=st.data())
def test_every_supervisor_form_answers_anything_without_a_500(supervisor, data):
    campaign = make_campaign(name="Fuzzed")
    upload = SheetUpload.objects.filter(campaign=campaign).first() or upload_sheet(
        campaign, sheet_bytes([["phone", "name"], ["+12125550100", "Ann"]])
    )
    worker = Agent.objects.filter(user__username="fuzzed").first() or make_user_agent("fuzzed", 3)
    client = Client()
    client.force_login(supervisor.user)
    base = f"/supervisor/campaigns/{campaign.pk}"
    for path, keys in (
        ("/supervisor/campaigns/new/", CAMPAIGN_KEYS),
        (f"{base}/edit/", CAMPAIGN_KEYS),
        (f"{base}/status/", ["status", "next"]),
        (f"{base}/uploads/{upload.pk}/mapping/", ["width", "col_0", "col_1", "col_999", "has_header"]),
        (f"{base}/uploads/{upload.pk}/cancel/", []),
        (f"{base}/uploads/{upload.pk}/sheet/", ["sheet"]),
        ("/supervisor/dnc/", ["number", "reason"]),
        ("/supervisor/dnc/remove/", ["number"]),
        ("/supervisor/agents/unlock/", ["kind", "value"]),
        (f"/supervisor/agents/{worker.pk}/not-ready/", ["reason"]),
        (f"/supervisor/agents/{worker.pk}/sign-out/", []),
        (f"{base}/export.csv", []),
    ):
        fields = data.draw(form(keys or ["x"]), label=path)
        answer = client.post(path, fields)
        assert answer.status_code < 500, (path, fields, answer.status_code)
    query = data.draw(st.text(max_size=30), label="q")
    assert client.get("/supervisor/dnc/", {"q": query}).status_code == 200
    for path, keys in (
        ("/supervisor/audit/", ["agent", "campaign", "action", "page"]),
        (f"{base}/export.csv", ["date_from", "date_to", "disposition", "status", "agent"]),
        ("/supervisor/reports/", ["date_from", "date_to", "group", "tz"]),
        ("/supervisor/reports/report.csv", ["date_from", "date_to", "group", "tz"]),
    ):
        params = data.draw(form(keys), label=path)
        answer = client.get(path, params)
        if getattr(answer, "streaming", False):
            b"".join(answer.streaming_content)  # a streamed answer fails while it is read
        assert answer.status_code < 500, (path, params)
