"""The results export, filtered by date range, disposition, status and agent: the rows are the
leads the same filter keeps when counted from the database here, and the CSV stays formula-safe."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, CallState
from campaigns.models import Lead
from tests.factories import make_call, make_leads, make_user_agent


def exported(client, campaign, **params) -> list[dict[str, str]]:
    answer = client.get(reverse("supervisor:campaign_export", args=[campaign.pk]), params)
    assert answer.status_code == 200, answer.content
    text = b"".join(answer.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def at(day: int, hour: int = 12) -> datetime:
    """Noon (local) ``day`` days ago."""
    moment = timezone.localtime() - timedelta(days=day)
    return moment.replace(hour=hour, minute=0, second=0, microsecond=0)


@pytest.fixture
def worked(campaign, agent):
    """Eight leads: called on different days, by two agents, with dispositions and statuses."""
    other = make_user_agent("other", 2)
    leads = make_leads(campaign, 8)
    plan = [
        # (days ago, agent, disposition, status)
        (0, agent, "Interested", Lead.Status.DONE),
        (0, other, "No answer", Lead.Status.PENDING),
        (1, agent, "No answer", Lead.Status.PENDING),
        (2, other, "Interested", Lead.Status.DONE),
        (3, agent, "Call back", Lead.Status.CALLBACK),
        (5, other, "Do not call", Lead.Status.DNC),
    ]
    for lead, (days, who, disposition, status) in zip(leads, plan, strict=False):
        call = make_call(who, lead, CallState.DISPOSED)
        Call.objects.filter(pk=call.pk).update(created_at=at(days))
        Lead.objects.filter(pk=lead.pk).update(
            last_called_at=at(days), last_disposition=disposition, status=status
        )
    # An earlier call by the other agent on the first lead: the latest call's agent is who counts.
    older = make_call(other, leads[0], CallState.DISPOSED)
    Call.objects.filter(pk=older.pk).update(created_at=at(9))
    Lead.objects.filter(pk=leads[6].pk).update(name='=HYPERLINK("http://x")')  # never called
    return agent, other


def ids(rows) -> set[int]:
    return {int(row["lead_id"]) for row in rows}


def latest_agent(lead: Lead):
    call = Call.objects.filter(lead=lead).order_by("-created_at", "-id").first()
    return call.agent_id if call else None


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"date_from": "D2"},
        {"date_from": "D3", "date_to": "D1"},
        {"disposition": "Interested"},
        {"status": "pending"},
        {"agent": "AGENT"},
        {"agent": "OTHER", "date_from": "D2"},
        {"status": "done", "disposition": "Interested", "agent": "AGENT"},
    ],
)
def test_the_filters_keep_what_the_database_says(supervisor_client, campaign, worked, params):
    agent, other = worked
    given = {}
    for key, value in params.items():
        if value.startswith("D"):
            value = at(int(value[1:])).date().isoformat()
        given[key] = {"AGENT": str(agent.pk), "OTHER": str(other.pk)}.get(value, value)
    expected = set()
    for lead in Lead.objects.filter(campaign=campaign):
        day = timezone.localtime(lead.last_called_at).date().isoformat() if lead.last_called_at else None
        if "date_from" in given and (day is None or day < given["date_from"]):
            continue
        if "date_to" in given and (day is None or day > given["date_to"]):
            continue
        if "disposition" in given and lead.last_disposition != given["disposition"]:
            continue
        if "status" in given and lead.status != given["status"]:
            continue
        if "agent" in given and str(latest_agent(lead)) != given["agent"]:
            continue
        expected.add(lead.pk)
    rows = exported(supervisor_client, campaign, **given)
    assert ids(rows) == expected
    if not params:
        assert len(rows) == 8
    # Filtered or not, every row is formula-safe.
    for row in rows:
        assert not any(cell.startswith(("=", "@")) for cell in row.values())


def test_the_formula_in_a_name_is_neutralized(supervisor_client, campaign, worked):
    rows = exported(supervisor_client, campaign, status="pending")
    names = {row["name"] for row in rows}
    assert '\'=HYPERLINK("http://x")' in names


@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "yesterday"},
        {"date_from": "2026-05-02", "date_to": "2026-05-01"},
        {"status": "sold"},
        {"disposition": "Not one of ours"},
        {"agent": "999999"},
    ],
)
def test_a_filter_that_is_not_valid_is_refused_in_words(supervisor_client, campaign, params):
    answer = supervisor_client.get(reverse("supervisor:campaign_export", args=[campaign.pk]), params)
    assert answer.status_code == 400
    assert b"The export filter is not valid" in answer.content


def test_the_campaign_page_has_the_filter_form_and_outsiders_get_no_export(
    supervisor_client, agent_client, client, campaign
):
    page = supervisor_client.get(reverse("supervisor:campaign", args=[campaign.pk])).content.decode()
    assert 'id="export-filter"' in page and 'method="get"' in page
    for name in ("date_from", "date_to", "disposition", "status", "agent"):
        assert f'name="{name}"' in page
    url = reverse("supervisor:campaign_export", args=[campaign.pk])
    assert agent_client.get(url, {"status": "done"}).status_code == 403
    assert client.get(url, {"status": "done"})["Location"].startswith("/login/")
