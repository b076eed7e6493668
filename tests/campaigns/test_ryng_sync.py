"""The Ryng push (Append Campaign) read back from the emulator over real HTTP, in both formats."""

from __future__ import annotations

import pytest
import requests
from django.conf import settings

from calls.models import Platform
from campaigns import services, tasks
from campaigns.models import Campaign, Lead
from tests.factories import make_campaign, platform_username

pytestmark = pytest.mark.django_db


def ryng_campaign(emulator, *, fmt: str, mapping: str = "inline", token: str = "demo-ryng-token") -> Campaign:
    campaign = make_campaign(
        base_url=f"{emulator.url}/rest-api/v1", name=f"Ryng {fmt}", platform_campaign_id="595"
    )
    campaign.account.credentials = {"token": token}
    campaign.account.save()
    campaign.push_format = fmt
    campaign.agent_mapping = mapping
    campaign.save()
    return campaign


def add_leads(campaign: Campaign, count: int, agent) -> None:
    for i in range(count):
        Lead.objects.create(
            campaign=campaign,
            number=f"+1212555{i:04d}",
            name=f"Lead {i}",
            custom_fields={"City": f"City {i}", "Plan": "Plus" if i % 2 else ""},
            assigned_agents=f",{agent.user.username}," if i % 3 == 0 else "",
        )


def read_back(emulator, campaign_id: str) -> dict:
    answer = requests.get(f"{emulator.url}/_emulator/ryng/campaigns/{campaign_id}/leads", timeout=5)
    answer.raise_for_status()
    return answer.json()


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_sync_pushes_every_lead_once(emulator, agent, fmt, monkeypatch):
    monkeypatch.setattr(services, "SYNC_CHUNK", 4)  # several Append Campaign requests
    campaign = ryng_campaign(emulator, fmt=fmt)
    add_leads(campaign, 10, agent)
    assert services.campaign_sync_run(campaign_id=campaign.pk) == 10
    pushed = read_back(emulator, "595")
    assert pushed["appends"] == 3
    leads = {lead["number"]: lead for lead in pushed["leads"]}
    assert set(leads) == {f"+1212555{i:04d}" for i in range(10)}
    assert set(pushed["customFieldNames"].values()) >= {"City"}
    names = {v: k.removesuffix("Name") for k, v in pushed["customFieldNames"].items()}
    first = leads["+12125550000"]
    assert first["customFields"][names["City"]] == "City 0"
    # Ryng knows agents by its own usernames: ours were translated.
    assert first["agents"] == [platform_username(agent, campaign.platform)]
    assert leads["+12125550001"]["agents"] == []
    assert leads["+12125550001"]["customFields"][names["Plan"]] == "Plus"
    assert first["customFields"][names["Name"]] == "Lead 0"  # the lead's name goes too
    if fmt == "json":
        secret = campaign.account.webhook_secret
        assert (
            pushed["terminalCallbackUrl"] == f"{settings.PUBLIC_BASE_URL}/calls/hooks/ryng/{secret}/terminal"
        )
        assert pushed["connectCallbackUrl"].endswith(f"/calls/hooks/ryng/{secret}/connect")
    campaign.refresh_from_db()
    assert (campaign.sync_status, campaign.sync_pushed, campaign.sync_total) == ("done", 10, 10)
    assert not Lead.objects.filter(campaign=campaign, pushed_at__isnull=True).exists()
    # Nothing new: nothing sent.
    assert services.campaign_sync_run(campaign_id=campaign.pk) == 0
    assert read_back(emulator, "595")["appends"] == 3


def test_sync_failure_is_recorded_and_shown(emulator, agent, supervisor_client):
    campaign = ryng_campaign(emulator, fmt="json", token="wrong-token")
    add_leads(campaign, 2, agent)
    tasks.campaign_sync.apply(args=[campaign.pk])
    campaign.refresh_from_db()
    assert campaign.sync_status == "failed"
    assert "403" in campaign.sync_message or "nauthori" in campaign.sync_message
    assert Lead.objects.filter(campaign=campaign, pushed_at__isnull=True).count() == 2
    page = supervisor_client.get(f"/supervisor/campaigns/{campaign.pk}/")
    assert f'id="campaign-sync-{campaign.pk}"'.encode() in page.content
    assert b"failed" in page.content


def test_import_of_a_ryng_campaign_queues_the_push(emulator, agent, django_capture_on_commit_callbacks):
    from tests.campaigns.conftest import run_import, sheet_bytes, upload_sheet

    campaign = ryng_campaign(emulator, fmt="csv", mapping="all-agents")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        upload = run_import(
            upload_sheet(
                campaign, sheet_bytes([["Phone", "City"], ["2125550134", "NYC"], ["4155552671", ""]])
            )
        )
    assert upload.imported_rows == 2
    assert Campaign.objects.get(pk=campaign.pk).sync_status == "queued"
    assert callbacks
    tasks.campaign_sync.apply(args=[campaign.pk])
    assert {lead["number"] for lead in read_back(emulator, "595")["leads"]} == {
        "+12125550134",
        "+14155552671",
    }


def test_only_a_platform_that_takes_pushed_leads_offers_the_push(emulator, agent, supervisor_client):
    pushing = ryng_campaign(emulator, fmt="json")
    page = supervisor_client.get(f"/supervisor/campaigns/{pushing.pk}/")
    assert b"Push new leads to Ryng" in page.content  # the platform's label, from its adapter
    offered = make_campaign(Platform.HUAWEI, name="Offered", platform_campaign_id="demo-preview")
    page = supervisor_client.get(f"/supervisor/campaigns/{offered.pk}/")
    assert page.status_code == 200
    assert f'id="campaign-sync-{offered.pk}"'.encode() not in page.content
    with pytest.raises(services.ServiceError, match="Huawei CC-Gateway campaigns do not take pushed leads"):
        services.campaign_sync_start(campaign=offered)


@pytest.mark.parametrize("total", [1, 5])
def test_a_lone_lead_reaches_ryng_in_the_csv_format_too(emulator, agent, monkeypatch, total):
    """Ryng needs agents named for a one-lead sheet: a CRM's single lead, or the last of a
    chunked push (5 leads in sheets of 4), goes as JSON; nothing fails, every lead arrives."""
    monkeypatch.setattr(services, "SYNC_CHUNK", 4)
    campaign = ryng_campaign(emulator, fmt="csv", mapping="all-agents")
    add_leads(campaign, total, agent)
    Lead.objects.filter(campaign=campaign).update(assigned_agents="")
    assert services.campaign_sync_run(campaign_id=campaign.pk) == total
    campaign.refresh_from_db()
    assert (campaign.sync_status, campaign.sync_pushed) == ("done", total)
    pushed = read_back(emulator, "595")
    assert {lead["number"] for lead in pushed["leads"]} == {f"+1212555{i:04d}" for i in range(total)}
    # The lead's name travelled too, in the custom field Ryng was told is "Name".
    name_field = next(k.removesuffix("Name") for k, v in pushed["customFieldNames"].items() if v == "Name")
    assert {lead["number"]: lead["customFields"][name_field] for lead in pushed["leads"]} == {
        f"+1212555{i:04d}": f"Lead {i}" for i in range(total)
    }


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize("batch", [None, 2])
def test_a_chunk_that_fails_is_retried_alone(emulator, agent, monkeypatch, fmt, batch):
    """Ryng answers 500 to one Append Campaign in the middle of a push (the third request): the
    task's retry sends that request's leads and those after it, never again the ones Ryng took.
    Also when the account's append batch (2) is below the push's chunk (4): a chunk then goes in
    two requests, and its first half, taken before the failure, is not sent again."""
    monkeypatch.setattr(services, "SYNC_CHUNK", 4)
    campaign = ryng_campaign(emulator, fmt=fmt)
    if batch:
        campaign.account.options = {**campaign.account.options, "append_batch_size": batch}
        campaign.account.save()
    add_leads(campaign, 10, agent)
    path = "/rest-api/v1/campaign/595"
    emulator.control("POST", "faults", {"kind": "500", "platform": "ryng", "path": path, "skip": 2})
    tasks.campaign_sync.apply(args=[campaign.pk])  # eager: Celery's retry runs at once
    pushed = read_back(emulator, "595")
    numbers = [lead["number"] for lead in pushed["leads"]]
    assert sorted(numbers) == [f"+1212555{i:04d}" for i in range(10)]  # each lead exactly once
    # Which leads went in which accepted request: the failed third one's leads came in the retry.
    sent = [
        sorted(lead["number"][-1] for lead in pushed["leads"] if lead["append"] == n) for n in range(1, 6)
    ]
    if batch:  # chunks 0-3, 4-7, 8-9 in requests of 2; the third (4-5) failed once
        assert sent == [["0", "1"], ["2", "3"], ["4", "5"], ["6", "7"], ["8", "9"]]
    else:  # requests 0-3, 4-7, 8-9; the third (8-9) failed once
        assert sent[:3] == [["0", "1", "2", "3"], ["4", "5", "6", "7"], ["8", "9"]]
    posts = emulator.requests(platform="ryng", path=path)
    assert len(posts) == (6 if batch else 4)  # the accepted requests and the one that failed
    campaign.refresh_from_db()
    assert campaign.sync_status == "done"
    assert not Lead.objects.filter(campaign=campaign, pushed_at__isnull=True).exists()
