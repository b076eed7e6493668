"""Why leads are not dialable: leads built in each blocked state, counted on the campaign page at a
frozen moment, each under its one reason, the counts adding up to the remaining leads."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

import pytest
from django.test import Client

from agentdesk.models import Presence
from campaigns.blockers import (
    AGENTS_AWAY,
    CALLBACK_LATER,
    CAPPED,
    DIALABLE,
    DO_NOT_CALL,
    LEASED,
    OUTSIDE_WINDOW,
    PAUSED,
    RETRY_LATER,
    campaign_breakdown,
)
from campaigns.models import Campaign, DoNotCall, Lead
from campaigns.selectors import campaign_counts
from tests.factories import make_campaign, make_user_agent

pytestmark = pytest.mark.django_db

# Wednesday 2026-12-09 15:00 UTC: 10:00 in New York (open, 09-20), 02:00 next day in Sydney (closed).
NOW = datetime(2026, 12, 9, 15, 0, tzinfo=UTC)


def lead(campaign, n: int, **fields) -> Lead:
    fields.setdefault("timezone", "America/New_York")
    return Lead.objects.create(campaign=campaign, number=f"+1212555{n:04d}", **fields)


@pytest.fixture
def worked(db):
    campaign = make_campaign(name="Worked")
    campaign.window_start, campaign.window_end, campaign.window_days = time(9), time(20), "0123456"
    campaign.attempt_cap = 3
    campaign.save()
    ann = make_user_agent("ann", 1)
    away = make_user_agent("away", 2)
    type(ann).objects.filter(pk=ann.pk).update(presence=Presence.READY)
    type(away).objects.filter(pk=away.pk).update(presence=Presence.OFFLINE)
    soon = NOW + timedelta(minutes=30)
    later = NOW + timedelta(hours=5)
    made = {
        DIALABLE: [lead(campaign, 1), lead(campaign, 2, assigned_agents=",ann,")],
        CAPPED: [lead(campaign, 3, attempts=3), lead(campaign, 4, attempts=5, status=Lead.Status.CALLBACK)],
        LEASED: [lead(campaign, 5, lease_owner=ann, lease_expires_at=NOW + timedelta(minutes=2))],
        CALLBACK_LATER: [lead(campaign, 6, status=Lead.Status.CALLBACK, next_attempt_at=later)],
        RETRY_LATER: [lead(campaign, 7, next_attempt_at=soon), lead(campaign, 8, next_attempt_at=later)],
        OUTSIDE_WINDOW: [lead(campaign, 9, timezone="Australia/Sydney")],
        AGENTS_AWAY: [lead(campaign, 10, assigned_agents=",away,")],
        # Waiting, but their numbers went on the do-not-call list afterwards (a do-not-call
        # disposition of the same number in another campaign): the desk refuses to dial them,
        # whatever else holds them.
        DO_NOT_CALL: [
            lead(campaign, 15),
            lead(campaign, 16, status=Lead.Status.CALLBACK, next_attempt_at=later),
            lead(campaign, 17, timezone="Australia/Sydney", assigned_agents=",away,"),
        ],
    }
    for number in ("+12125550015", "+12125550016", "+12125550017", "+12125550012"):
        DoNotCall.objects.create(number=number, reason="Do not call (another campaign)")
    # Not remaining: done, do-not-call, attempts used up, an expired lease is free again.
    lead(campaign, 11, status=Lead.Status.DONE)
    lead(campaign, 12, status=Lead.Status.DNC)
    lead(campaign, 13, status=Lead.Status.EXHAUSTED)
    made[DIALABLE].append(lead(campaign, 14, lease_owner=ann, lease_expires_at=NOW - timedelta(minutes=1)))
    return campaign, made, soon, later


def test_each_lead_is_counted_once_under_what_holds_it(worked):
    campaign, made, soon, later = worked
    breakdown = campaign_breakdown(campaign, now=NOW)
    assert {row.key: row.count for row in breakdown.rows} == {key: len(leads) for key, leads in made.items()}
    assert breakdown.remaining == sum(len(leads) for leads in made.values()) == 14
    assert sum(row.count for row in breakdown.rows) == breakdown.remaining
    # The remaining leads the campaign page shows (its counters: waiting and callbacks).
    counts = campaign_counts(campaign)
    assert counts[Lead.Status.PENDING] + counts[Lead.Status.CALLBACK] == breakdown.remaining
    opens = {row.key: row.opens_at for row in breakdown.rows}
    assert opens[CALLBACK_LATER] == later
    assert opens[RETRY_LATER] == soon
    assert opens[OUTSIDE_WINDOW] == datetime(2026, 12, 10, 9, 0, tzinfo=UTC).replace(
        hour=22, day=9
    )  # 09:00 Sydney
    assert opens[LEASED] == NOW + timedelta(minutes=2)


def test_a_paused_campaign_holds_every_remaining_lead(worked):
    campaign, _, _, _ = worked
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    campaign.refresh_from_db()
    breakdown = campaign_breakdown(campaign, now=NOW)
    assert [(row.key, row.count) for row in breakdown.rows] == [(PAUSED, 14)]


def test_the_campaign_page_shows_the_breakdown_to_supervisors_only(worked, supervisor, agent):
    campaign, _, _, _ = worked
    boss = Client()
    boss.force_login(supervisor.user)
    page = boss.get(f"/supervisor/campaigns/{campaign.pk}/").content.decode()
    assert f'hx-get="/supervisor/campaigns/{campaign.pk}/breakdown/"' in page
    fragment = boss.get(f"/supervisor/campaigns/{campaign.pk}/breakdown/").content.decode()
    # Counted at the real now: whichever reasons hold, they add up to the 14 remaining leads.
    assert 'id="breakdown-remaining">14<' in fragment
    counts = re.findall(
        r'<tr class="breakdown-\w+" data-key="\w+">\s*<td>[^<]+</td>\s*<td class="num">(\d+)</td>', fragment
    )
    assert sum(map(int, counts)) == 14 and "Attempts used up" in fragment
    assert "On the do-not-call list" in fragment and "when taken off the list" in fragment
    outsider = Client()
    outsider.force_login(agent.user)
    assert outsider.get(f"/supervisor/campaigns/{campaign.pk}/breakdown/").status_code == 403
    assert Client().get(f"/supervisor/campaigns/{campaign.pk}/breakdown/").status_code == 302


def test_times_that_are_the_leads_own_are_shown_in_their_zone_and_the_servers(worked, settings):
    """A server in UTC, a lead in Sydney outside the calling window (09:00-20:00 there): the row
    says when the window opens in Sydney's time and the server's; a callback booked for a New
    York lead shows New York's hour beside the server's. Times with no zone of their own (a
    retry delay, a lease) stay in the server's."""
    from django.template.loader import render_to_string

    campaign, _, _, later = worked
    assert settings.TIME_ZONE == "UTC"
    breakdown = campaign_breakdown(campaign, now=NOW)
    zones = {row.key: row.zone for row in breakdown.rows}
    assert zones[OUTSIDE_WINDOW] == "Australia/Sydney" and zones[CALLBACK_LATER] == "America/New_York"
    assert zones[RETRY_LATER] == zones[LEASED] == ""
    html = render_to_string(
        "supervisor/_breakdown.html",
        {"campaign": campaign, "breakdown": breakdown, "counted": type("Counted", (), {"at": NOW})},
    )
    window = re.search(r'data-key="outside_window">.*?</tr>', html, re.S).group(0)
    assert "Thu 09:00 in Australia/Sydney" in window and "Wed 22:00 here" in window
    callback = re.search(r'data-key="callback_later">.*?</tr>', html, re.S).group(0)
    # 20:00 UTC is 15:00 in New York.
    assert later.hour == 20 and "Wed 15:00 in America/New_York" in callback and "Wed 20:00 here" in callback
    retry = re.search(r'data-key="retry_later">.*?</tr>', html, re.S).group(0)
    assert " in America/" not in retry and "Wed 15:30" in retry
