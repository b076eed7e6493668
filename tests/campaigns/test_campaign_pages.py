"""The campaign form and page as a supervisor uses them: two columns, agents only, a 24-hour
clock, a mapping chosen on purpose, the intake token hidden until revealed and rotatable, and the
sheet upload only where the platform does not bring its own leads."""

from __future__ import annotations

import io
import re

import pytest
from django.urls import reverse

from calls.models import Platform
from campaigns import services
from campaigns.models import Campaign
from tests.factories import disposition_rows, make_campaign


def form_data(campaign: Campaign, **changes) -> dict:
    data = {
        "name": "Autumn",
        "account": campaign.account.pk,
        "platform_campaign_id": "778",
        "agent_mapping": "all-agents",
        "push_format": "json",
        "default_region": "US",
        "window_start": "08:00",
        "window_end": "20:30",
        "days": ["0", "1", "2"],
        "attempt_cap": 3,
        "retry_delay_minutes": 60,
        "target_contact_rate": 35,
        **disposition_rows(
            {"name": "Sale", "is_conversion": True},
            {"name": "No answer", "outcome": "retry", "retry_delay_minutes": 15},
        ),
    }
    return {**data, **changes}


def test_the_form_offers_agents_only_in_two_columns_with_a_24_hour_clock(
    supervisor_client, agent, supervisor
):
    page = supervisor_client.get(reverse("supervisor:campaign_new")).content.decode()
    assert page.count("<fieldset>") == 2 and 'class="sv-columns"' in page
    agents = re.search(r'<div id="id_agents">.*?</div>\s*</div>', page, re.S).group(0)
    assert "agent" in agents and "boss" not in agents  # the supervisor is not offered
    # The box sits inside its label, on one line.
    assert re.search(
        r'<label for="id_agents_0"><input type="checkbox" name="agents"[^>]*>\s*agent</label>', agents
    )
    start = re.search(r'<input[^>]*name="window_start"[^>]*>', page).group(0)
    assert 'type="text"' in start and 'pattern="([01][0-9]|2[0-3]):[0-5][0-9]"' in start
    # No mapping is chosen for the supervisor on a new campaign.
    assert not re.search(r'<input type="radio" name="agent_mapping"[^>]*checked', page)


def test_an_existing_campaign_shows_its_times_and_mapping(supervisor_client, campaign):
    campaign.window_start = campaign.window_start.replace(hour=21, minute=15)
    campaign.save()
    page = supervisor_client.get(reverse("supervisor:campaign_edit", args=[campaign.pk])).content.decode()
    assert re.search(r'name="window_start" value="21:15"', page)
    assert re.search(r'<input type="radio" name="agent_mapping" value="all-agents"[^>]*checked', page)


def test_the_mapping_must_be_chosen_and_all_agents_takes_no_list(supervisor_client, campaign, agent):
    data = form_data(campaign)
    del data["agent_mapping"]
    answer = supervisor_client.post(reverse("supervisor:campaign_new"), data)
    assert answer.status_code == 200 and b"This field is required" in answer.content
    answer = supervisor_client.post(
        reverse("supervisor:campaign_new"), form_data(campaign, agents=[agent.pk])
    )
    assert answer.status_code == 200 and "All agents takes no list" in answer.content.decode()
    answer = supervisor_client.post(reverse("supervisor:campaign_new"), form_data(campaign))
    assert answer.status_code == 302
    created = Campaign.objects.get(name="Autumn")
    assert created.window_end.strftime("%H:%M") == "20:30" and created.target_contact_rate == 35
    assert created.dispositions.get(name="Sale").is_conversion


def test_a_supervisor_is_refused_as_a_campaign_agent(supervisor_client, campaign, supervisor):
    answer = supervisor_client.post(
        reverse("supervisor:campaign_new"),
        form_data(campaign, agent_mapping="global", agents=[supervisor.pk]),
    )
    assert answer.status_code == 200 and b"Select a valid choice" in answer.content


def test_the_intake_token_is_hidden_until_revealed(supervisor_client, agent_client, client, campaign):
    page = supervisor_client.get(reverse("supervisor:campaign", args=[campaign.pk])).content.decode()
    assert campaign.intake_token not in page
    assert 'id="btn-reveal-token"' in page
    url = reverse("supervisor:campaign_token", args=[campaign.pk])
    shown = supervisor_client.get(url, headers={"HX-Request": "true"})
    assert campaign.intake_token in shown.content.decode() and shown["Cache-Control"] == "no-store"
    assert agent_client.get(url).status_code == 403
    assert client.get(url)["Location"].startswith("/login/")


def test_rotating_the_token_asks_first_and_the_old_one_stops_working(
    supervisor_client, agent_client, client, campaign
):
    old = campaign.intake_token
    page = supervisor_client.get(reverse("supervisor:campaign", args=[campaign.pk])).content.decode()
    assert re.search(r'hx-post="[^"]*/token/rotate/"[^>]*hx-confirm="Make a new intake token\?', page)
    url = reverse("supervisor:campaign_token_rotate", args=[campaign.pk])
    assert agent_client.post(url).status_code == 403
    assert client.post(url)["Location"].startswith("/login/")
    assert supervisor_client.get(url).status_code == 405  # a change is a POST
    campaign.refresh_from_db()
    assert campaign.intake_token == old
    answer = supervisor_client.post(url, headers={"HX-Request": "true"}).content.decode()
    campaign.refresh_from_db()
    assert campaign.intake_token != old and campaign.intake_token in answer and old not in answer
    intake = reverse("supervisor:intake", args=[campaign.pk])
    body = {"customerData": {"jsonData": []}}
    refused = client.post(
        intake, body, content_type="application/json", headers={"Authorization": f"Bearer {old}"}
    )
    assert refused.status_code == 401
    taken = client.post(
        intake,
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {campaign.intake_token}"},
    )
    assert taken.status_code != 401


@pytest.mark.parametrize("platform", [Platform.HUAWEI, Platform.GENESYS])
def test_no_sheet_upload_where_the_platform_brings_the_leads(supervisor_client, platform):
    offered = make_campaign(platform, name="Offered", platform_campaign_id="demo-preview")
    page = supervisor_client.get(reverse("supervisor:campaign", args=[offered.pk])).content.decode()
    assert 'id="sheet-form"' not in page and 'id="no-sheets"' in page
    sheet = io.BytesIO(b"number\n2125550134\n")
    sheet.name = "leads.csv"
    answer = supervisor_client.post(
        reverse("supervisor:upload_create", args=[offered.pk]), {"sheet": sheet}, follow=True
    )
    assert b"get their leads from the platform" in answer.content
    assert not offered.uploads.exists()


def test_a_sheet_upload_is_offered_where_the_platform_takes_our_leads(supervisor_client, campaign):
    page = supervisor_client.get(reverse("supervisor:campaign", args=[campaign.pk])).content.decode()
    assert 'id="sheet-form"' in page and 'id="no-sheets"' not in page


def test_rotating_is_a_service(campaign, supervisor):
    before = campaign.intake_token
    services.campaign_rotate_token(campaign=campaign, by=supervisor.user)
    assert Campaign.objects.get(pk=campaign.pk).intake_token not in ("", before)


def test_the_supervisor_lists_the_campaigns_not_ready_reasons(supervisor_client, campaign):
    edit = reverse("supervisor:campaign_edit", args=[campaign.pk])
    page = supervisor_client.get(edit).content.decode()
    assert 'name="not_ready_text"' in page and "Empty: Break, Lunch, Meeting, Training, Coaching." in page
    too_long = supervisor_client.post(edit, form_data(campaign, not_ready_text="Huddle\n" + "y" * 41))
    assert too_long.status_code == 200 and "A reason is at most 40 characters" in too_long.content.decode()
    too_many = "\n".join(f"Reason {n}" for n in range(13))
    answer = supervisor_client.post(edit, form_data(campaign, not_ready_text=too_many))
    assert "At most 12 reasons (13 given)." in answer.content.decode()
    campaign.refresh_from_db()
    assert campaign.not_ready_reasons is None
    answer = supervisor_client.post(
        edit, form_data(campaign, not_ready_text=" Huddle \n\nTech issue\nHuddle")
    )
    assert answer.status_code == 302
    campaign.refresh_from_db()
    assert campaign.not_ready_reasons == ["Huddle", "Tech issue"]
    assert "Huddle\nTech issue</textarea>" in supervisor_client.get(edit).content.decode()
    # Emptied: the standard list again.
    supervisor_client.post(edit, form_data(campaign, not_ready_text=""))
    campaign.refresh_from_db()
    assert campaign.not_ready_reasons is None


def test_the_supervisor_sets_an_answer_time_service_level(supervisor_client, campaign):
    edit = reverse("supervisor:campaign_edit", args=[campaign.pk])
    page = supervisor_client.get(edit).content.decode()
    within = re.search(r'<input[^>]*name="service_level_seconds"[^>]*>', page).group(0)
    target = re.search(r'<input[^>]*name="target_service_level"[^>]*>', page).group(0)
    assert 'type="number"' in within and 'min="1"' in within
    assert 'type="number"' in target and 'max="100"' in target
    half = supervisor_client.post(edit, form_data(campaign, service_level_seconds=20))
    assert "A service level needs both: the seconds and the target percentage." in half.content.decode()
    campaign.refresh_from_db()
    assert campaign.service_level_seconds is None
    answer = supervisor_client.post(
        edit, form_data(campaign, service_level_seconds=20, target_service_level=80)
    )
    assert answer.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.service_level_seconds, campaign.target_service_level) == (20, 80)
    assert re.search(r'name="service_level_seconds" value="20"', supervisor_client.get(edit).content.decode())
