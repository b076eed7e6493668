"""The intake API (seed 002's body, verbatim), the results export, the do-not-call list and
the supervisor pages' permission matrix."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from django.urls import reverse

from calls.models import Call, CallState
from campaigns import services
from campaigns.csvsafe import neutralize
from campaigns.models import DoNotCall, Lead
from tests.campaigns.conftest import import_form, sheet_bytes
from tests.factories import disposition_rows, make_campaign

pytestmark = pytest.mark.django_db

SEED = Path("/work/shared/seeds/002_31e7d22dea9467e2.txt")
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ryng" / "append_campaign_body.txt"


def seed_body(mapping: str) -> str:
    """The seed's example body, verbatim but for its pseudo-JSON "global"/"inline"/"all-agents"."""
    text = FIXTURE.read_text() if FIXTURE.exists() else SEED.read_text()
    body = re.search(r"\{\s*\"name\": \"Example Campaign\".*?\n\}", text, re.S).group(0)
    return body.replace('"global"/"inline"/"all-agents"', json.dumps(mapping))


def post_intake(client, campaign, body, token=None):
    headers = {"Authorization": f"Bearer {token or campaign.intake_token}"} if token != "" else {}
    return client.post(
        reverse("supervisor:intake", args=[campaign.pk]),
        data=body,
        content_type="application/json",
        headers=headers,
    )


@pytest.mark.parametrize("mapping", ["inline", "global", "all-agents"])
def test_intake_appends_the_seed_body_verbatim(client, campaign, mapping):
    answer = post_intake(client, campaign, seed_body(mapping))
    assert answer.status_code == 200, answer.content
    data = answer.json()["data"]
    # The seed repeats +919876543210 three times: the first one wins.
    assert data == {"received": 4, "appended": 2, "duplicates": 2, "dnc": 0}
    first = Lead.objects.get(campaign=campaign, number="+919876543210")
    assert first.custom_fields == {"Name": "Max"}  # customFieldNames from the body
    assert first.source == Lead.Source.INTAKE
    assert first.timezone == "Asia/Calcutta" or first.timezone == "Asia/Kolkata"
    expected = {
        "inline": ",john@example.com,emma@example.com,",
        "global": ",ashwin@example.com,alice@example.com,",
        "all-agents": "",
    }[mapping]
    assert first.assigned_agents == expected
    # Sent again: nothing new.
    again = post_intake(client, campaign, seed_body(mapping)).json()["data"]
    assert again["appended"] == 0


def test_intake_errors(client, campaign):
    body = json.loads(seed_body("inline"))
    assert post_intake(client, campaign, json.dumps(body), token="wrong").status_code == 401
    assert post_intake(client, campaign, json.dumps(body), token="").status_code == 401
    # A token with characters outside ASCII is a wrong token, not a crash.
    assert post_intake(client, campaign, json.dumps(body), token="jet\u00e9").status_code == 401
    other = make_campaign(name="Other")
    assert post_intake(client, campaign, json.dumps(body), token=other.intake_token).status_code == 401
    missing = client.post(
        "/supervisor/api/campaigns/999999/leads", data="{}", content_type="application/json"
    )
    assert missing.status_code == 404 and missing.json()["error"] is True
    assert post_intake(client, campaign, "{not json").status_code == 400
    body["customerData"]["jsonData"][1]["number"] = "12"
    body["customerData"]["jsonData"].append({"customField1": "no number"})
    answer = post_intake(client, campaign, json.dumps(body))
    assert answer.status_code == 400
    errors = answer.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, "number"), (4, "number")]
    assert Lead.objects.filter(campaign=campaign).count() == 0  # all or nothing
    refused = client.get(reverse("supervisor:intake", args=[campaign.pk]))
    assert refused.status_code == 405 and refused["Allow"] == "POST"
    assert "POST" in refused.json()["message"]
    url = reverse("supervisor:intake", args=[campaign.pk])
    headers = {"Authorization": f"Bearer {campaign.intake_token}"}
    for wrong in ("text/csv", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded"):
        answer = client.post(url, data=b"number=2125550134", content_type=wrong, headers=headers)
        assert answer.status_code == 415, wrong
        assert answer.json()["error"] is True and "application/json" in answer.json()["message"]
    assert Lead.objects.filter(campaign=campaign).count() == 0
    plain = client.post(url, data=seed_body("inline"), content_type="text/plain", headers=headers)
    assert plain.status_code == 200, plain.content


def test_intake_takes_ryngs_own_token_header(client, campaign):
    """A CRM already talking to Ryng sends ``x-access-token``: the same token works here."""
    body = seed_body("inline")
    url = reverse("supervisor:intake", args=[campaign.pk])
    answer = client.post(
        url, data=body, content_type="application/json", headers={"x-access-token": campaign.intake_token}
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["data"]["appended"] > 0
    wrong = client.post(url, data=body, content_type="application/json", headers={"x-access-token": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] is True


def test_intake_skips_do_not_call_numbers(client, campaign):
    services.dnc_add(number="+917994771185", reason="asked", added_by=None)
    data = post_intake(client, campaign, seed_body("inline")).json()["data"]
    assert data["dnc"] == 1 and data["appended"] == 1


# -- export -------------------------------------------------------------------------------------------


def test_neutralize():
    assert neutralize('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    for bad in ["+SUM(A1)", "-1+2", "@cmd", "\tx", "\rx"]:
        assert neutralize(bad) == "'" + bad
    assert neutralize("+14155550100") == "+14155550100"
    assert neutralize("plain, text") == "plain, text"
    assert neutralize(None) == ""


def test_export_neutralizes_formulas_and_round_trips_the_rest(supervisor_client, campaign, supervisor):
    tricky = {
        "City": '=cmd|" /C calc"!A0',
        "Plan": 'Quote " and, comma\nnew line — ünïcode',
    }
    lead = Lead.objects.create(
        campaign=campaign,
        number="+14155550100",
        raw_number="(415) 555-0100",
        name="@SUM(1+1)",
        custom_fields=tricky,
        timezone="America/Los_Angeles",
        last_disposition="Interested",
        last_notes="-2+3 notes",
        attempts=2,
    )
    Call.objects.create(
        lead=lead,
        campaign=campaign,
        agent=supervisor,
        account=campaign.account,
        state=CallState.DISPOSED,
        number=lead.number,
        talk_seconds=42,
        recording_url="https://rec.example/1.mp3",
    )
    plain = Lead.objects.create(campaign=campaign, number="+14155550101", name="Plain Name")
    answer = supervisor_client.get(reverse("supervisor:campaign_export", args=[campaign.pk]))
    assert answer.status_code == 200
    assert answer.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))
    first, second = rows
    assert first["number"] == "+14155550100"
    assert first["name"] == "'@SUM(1+1)"
    assert first["notes"] == "'-2+3 notes"
    assert first["City"] == "'" + tricky["City"]
    assert first["Plan"] == tricky["Plan"]
    assert first["attempts"] == "2" and first["talk_seconds"] == "42"
    assert first["recording_url"] == "https://rec.example/1.mp3"
    assert first["agent"] == supervisor.user.username
    assert first["last_disposition"] == "Interested"
    assert second["name"] == plain.name and second["talk_seconds"] == "" and second["agent"] == ""


# -- do-not-call --------------------------------------------------------------------------------------


def test_dnc_add_is_idempotent_and_marks_pending_leads(campaign, supervisor):
    lead = Lead.objects.create(campaign=campaign, number="+14155550100")
    row = services.dnc_add(number="(415) 555-0100", reason="asked", added_by=supervisor.user)
    assert row.number == "+14155550100" and row.added_by == supervisor.user
    assert services.dnc_add(number="+14155550100", reason="again", added_by=None).pk == row.pk
    lead.refresh_from_db()
    assert lead.status == Lead.Status.DNC
    with pytest.raises(services.ServiceError):
        services.dnc_add(number="hello", reason="", added_by=None)


def test_dnc_pages(supervisor_client):
    page = supervisor_client.post(reverse("supervisor:dnc"), {"number": "212 555 0134", "reason": "asked"})
    assert page.status_code == 302
    upload = io.BytesIO(sheet_bytes([["number"], ["+14155552671"], ["+12125550134"], ["nope"]]))
    upload.name = "dnc.csv"
    page = supervisor_client.post(reverse("supervisor:dnc_upload"), {"sheet": upload, "reason": "list"})
    assert page.status_code == 302
    assert set(DoNotCall.objects.values_list("number", flat=True)) == {"+12125550134", "+14155552671"}
    supervisor_client.get(reverse("supervisor:dnc"))  # shows (and so clears) the flash messages
    page = supervisor_client.get(reverse("supervisor:dnc"), {"q": "415"})
    assert b"+14155552671" in page.content and b"+12125550134" not in page.content
    supervisor_client.post(reverse("supervisor:dnc_remove"), {"number": "+14155552671"})
    assert not DoNotCall.objects.filter(number="+14155552671").exists()


# -- pages and permissions ------------------------------------------------------------------------------


def _pages(campaign, upload_id: int) -> list[str]:
    c = campaign.pk
    return [
        reverse("supervisor:dashboard"),
        reverse("supervisor:campaign_new"),
        reverse("supervisor:campaign", args=[c]),
        reverse("supervisor:campaign_edit", args=[c]),
        reverse("supervisor:campaign_export", args=[c]),
        reverse("supervisor:upload", args=[c, upload_id]),
        reverse("supervisor:upload_progress", args=[c, upload_id]),
        reverse("supervisor:dnc"),
    ]


def test_permissions(client, agent_client, supervisor_client, campaign):
    from tests.campaigns.conftest import upload_sheet

    upload = upload_sheet(campaign, sheet_bytes([["Phone"], ["2125550134"]]))
    for url in _pages(campaign, upload.pk):
        assert client.get(url).status_code == 302, url  # anonymous: the login page
        assert "/login/" in client.get(url)["Location"]
        assert agent_client.get(url).status_code == 403, url
        assert supervisor_client.get(url).status_code == 200, url
    for url in [
        reverse("supervisor:upload_create", args=[campaign.pk]),
        reverse("supervisor:campaign_status", args=[campaign.pk]),
        reverse("supervisor:upload_import", args=[campaign.pk, upload.pk]),
    ]:
        assert agent_client.post(url).status_code == 403


def test_campaign_create_edit_pause(supervisor_client, campaign, agent):
    form = {
        "name": "Spring promo",
        "account": campaign.account.pk,
        "platform_campaign_id": "777",
        "agent_mapping": "global",
        "agents": [agent.pk],
        "push_format": "csv",
        "default_region": "gb",
        "window_start": "08:00",
        "window_end": "20:00",
        "days": ["0", "1", "2", "3", "4"],
        "attempt_cap": 4,
        "retry_delay_minutes": 30,
        "custom_fields_text": "City\nPlan",
        **disposition_rows(
            {"name": "Sale"},
            {"name": "No answer", "outcome": "retry", "retry_delay_minutes": 15},
            {"name": "Call back", "outcome": "callback"},
            {"name": "Remove me", "outcome": "dnc"},
        ),
    }
    answer = supervisor_client.post(reverse("supervisor:campaign_new"), form)
    assert answer.status_code == 302, answer.content.decode()[:3000]
    from campaigns.models import Campaign

    created = Campaign.objects.get(name="Spring promo")
    assert created.default_region == "GB" and created.window_days == "01234"
    assert list(created.agents.all()) == [agent]
    assert [(d.name, d.outcome, d.retry_delay_minutes) for d in created.dispositions.all()] == [
        ("Sale", "final", None),
        ("No answer", "retry", 15),
        ("Call back", "callback", None),
        ("Remove me", "dnc", None),
    ]
    form.update(disposition_rows({"name": "Sale"}, {"name": "bad line", "outcome": "maybe"}))
    answer = supervisor_client.post(reverse("supervisor:campaign_edit", args=[created.pk]), form)
    assert (
        answer.status_code == 200
        and "Pick an outcome from the list (maybe is not one)" in answer.content.decode()
    )
    supervisor_client.post(reverse("supervisor:campaign_status", args=[created.pk]), {"status": "paused"})
    created.refresh_from_db()
    assert created.status == "paused"
    dashboard = supervisor_client.get(reverse("supervisor:dashboard"))
    assert f'id="campaign-row-{created.pk}"'.encode() in dashboard.content


def test_upload_page_flow(supervisor_client, campaign, django_capture_on_commit_callbacks):
    sheet = io.BytesIO(
        sheet_bytes([["Who", "Digits", "City"], ["Ann", "2125550134", "NYC"], ["Bad", "12", ""]])
    )
    sheet.name = "crm.csv"
    answer = supervisor_client.post(reverse("supervisor:upload_create", args=[campaign.pk]), {"sheet": sheet})
    assert answer.status_code == 302
    page = supervisor_client.get(answer["Location"])
    assert b"Ann" in page.content and b'id="map-0"' in page.content
    upload = campaign.uploads.get()
    # "Who" and "Digits" are not recognised headers: the supervisor maps them.
    assert upload.mapping["columns"] == ["", "", "field:City"]
    from campaigns import tasks

    # A tampered form (a width that is not a number) is refused in words, nothing started.
    refused = supervisor_client.post(
        reverse("supervisor:upload_mapping", args=[campaign.pk, upload.pk]), {"width": "abc"}, follow=True
    )
    assert refused.status_code == 200 and b"The mapping form was incomplete" in refused.content
    upload.refresh_from_db()
    assert upload.status == upload.Status.UPLOADED
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        supervisor_client.post(
            reverse("supervisor:upload_mapping", args=[campaign.pk, upload.pk]),
            {"width": "3", "has_header": "on", "col_0": "name", "col_1": "number", "col_2": "field:City"},
        )
    assert callbacks  # the dry run is enqueued on commit
    tasks.upload_dry_run.apply(args=[upload.pk])
    page = supervisor_client.get(reverse("supervisor:upload", args=[campaign.pk, upload.pk]))
    assert b'id="dry-run-report"' in page.content and b"too many or too few digits" in page.content
    issues = supervisor_client.get(reverse("supervisor:upload_issues", args=[campaign.pk, upload.pk]))
    assert b"line,column,value,reason,kind" in b"".join(issues.streaming_content)
    with django_capture_on_commit_callbacks(execute=False):
        supervisor_client.post(
            reverse("supervisor:upload_import", args=[campaign.pk, upload.pk]),
            import_form(supervisor_client, upload),
        )
    tasks.upload_import.apply(args=[upload.pk])
    lead = Lead.objects.get(campaign=campaign)
    assert (lead.name, lead.number, lead.custom_fields) == ("Ann", "+12125550134", {"City": "NYC"})
