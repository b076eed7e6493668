"""The desk over HTTP: the page, its fragments, the commands, and the permission matrix (an agent,
another agent, a supervisor). Commands run through the real views and services; Celery tasks
are enqueued only on commit, which these (non-transactional) tests never reach."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from agentdesk import services
from agentdesk.models import Agent, Presence
from calls.models import Call, CallState
from campaigns.models import Campaign, DoNotCall, Lead
from tests.agentdesk.conftest import login
from tests.factories import make_call, make_campaign, make_leads

pytestmark = pytest.mark.django_db


def _ready(client, campaign):
    assert client.post("/desk/campaign/", {"campaign": campaign.pk}).status_code == 200
    answer = client.post("/desk/presence/", {"presence": "ready"})
    assert answer.status_code == 200
    return answer


def test_desk_page_shows_the_panels_and_connects_the_socket(agent_client, campaign):
    page = agent_client.get("/desk/", headers={"HX-Request": ""}).content.decode()
    assert 'ws-connect="/ws/desk/?tab=' in page  # the tab's own socket (its commands' answers)
    assert 'hx-ext="ws"' in page
    for element in ("desk-presence", "desk-preview", "desk-call", "desk-dispose", "ws-banner"):
        assert f'id="{element}"' in page
    assert campaign.name in page
    assert "{#" not in page and "#}" not in page  # no template comment printed as text


def test_supervisor_and_anonymous_cannot_open_the_desk(client, supervisor, db):
    assert client.get("/desk/").status_code == 302
    assert login(supervisor).get("/desk/state/").status_code == 403


def test_going_ready_leases_and_shows_the_next_lead(agent_client, agent, campaign, leads):
    body = _ready(agent_client, campaign).content.decode()
    lead = Lead.objects.get(lease_owner=agent)
    assert lead == leads[0]
    assert lead.lease_expires_at > timezone.now()
    assert lead.name in body and lead.number in body
    assert "New York" in body and "Plus" in body  # custom fields under the campaign's names
    assert "City" in body and "Plan" in body
    assert "America/New_York" in body
    assert "Calling window open" in body
    assert "0 of 3" in body  # attempts so far
    agent.refresh_from_db()
    assert agent.presence == Presence.READY


def test_ready_needs_a_campaign(agent_client):
    body = agent_client.post("/desk/presence/", {"presence": "ready"}).content.decode()
    assert "Pick a campaign first" in body


def test_customer_data_is_escaped(agent_client, agent, campaign):
    Lead.objects.create(
        campaign=campaign,
        number="+12125550999",
        name="<script>alert(1)</script>",
        custom_fields={"City": "<img src=x onerror=alert(2)>"},
        timezone="America/New_York",
    )
    body = _ready(agent_client, campaign).content.decode()
    assert "<script>alert(1)" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<img src=x" not in body


def test_desk_state_after_reconnect_is_the_whole_desk(agent_client, agent, campaign, leads):
    _ready(agent_client, campaign)
    body = agent_client.get("/desk/state/").content.decode()
    assert 'id="desk-preview"' in body and leads[0].name in body
    assert "hx-swap-oob" not in body  # a re-read is a normal swap into #desk-main


def test_desk_page_query_count(agent_client, agent, campaign, leads, other, django_assert_max_num_queries):
    _ready(agent_client, campaign)
    for state in (CallState.DISPOSED, CallState.SKIPPED, CallState.DISPOSED):
        make_call(other, leads[0], state)
    with django_assert_max_num_queries(22):
        page = agent_client.get("/desk/", headers={"HX-Request": ""})
    assert page.status_code == 200
    with django_assert_max_num_queries(20):
        agent_client.get("/desk/state/")


def test_a_save_and_the_next_lease_stay_within_their_statements(
    agent_client, agent, campaign, leads, django_assert_max_num_queries
):
    """The Save from a tab (the agent in wrap-up): the request's sign-in, the disposition's
    write, the presence back to Ready and the next lead's lease. Issue 16 measured 39 statements
    here (ten of them savepoints, the held lead read twice, the lease in three, the session read
    from the database); each costs a round trip and the ORM's compile on the agent's wait for the
    next preview. 25 after that; 21 since the disposition reads the call, its lead and its agent
    in one locked read, takes the agent's presence from that read, renews no lease it just
    released and reads no platform session on a platform without one (Ryng); 19 since the
    request's user comes with its roles and its agent row in one read."""
    _ready(agent_client, campaign)
    call = make_call(agent, leads[0], CallState.ENDED)
    Agent.objects.filter(pk=agent.pk).update(presence=Presence.WRAP_UP)
    final = campaign.dispositions.get(name="Interested")
    with django_assert_max_num_queries(19):
        answer = agent_client.post(
            "/desk/dispose/", {"call": call.pk, "disposition": final.pk}, headers={"X-Desk-Tab": "c" * 32}
        )
    assert answer.status_code == 204
    assert Lead.objects.get(lease_owner=agent) == leads[1]
    agent.refresh_from_db()
    assert agent.presence == Presence.READY


def test_renew_extends_and_expiry_releases(agent_client, agent, campaign, leads):
    _ready(agent_client, campaign)
    lead = Lead.objects.get(lease_owner=agent)
    Lead.objects.filter(pk=lead.pk).update(lease_expires_at=timezone.now() + timedelta(seconds=5))
    assert agent_client.post("/desk/renew/").status_code == 204
    lead.refresh_from_db()
    assert lead.lease_expires_at > timezone.now() + timedelta(seconds=60)
    Lead.objects.filter(pk=lead.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.lease_release_expired() == 1
    lead.refresh_from_db()
    assert lead.lease_owner is None


def test_expiry_keeps_a_lead_with_a_live_call(agent, campaign, leads):
    lead = services.lead_next_for_agent(agent=agent, campaign=campaign)
    make_call(agent, lead, CallState.CONNECTED)
    Lead.objects.filter(pk=lead.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.lease_release_expired() == 0


def test_two_agents_get_different_leads(agent, other, campaign, leads):
    first = services.lead_next_for_agent(agent=agent, campaign=campaign)
    second = services.lead_next_for_agent(agent=other, campaign=campaign)
    assert first and second and first.pk != second.pk
    # Asking again returns the lead already held, never a second one.
    assert services.lead_next_for_agent(agent=agent, campaign=campaign).pk == first.pk


def test_assigned_leads_go_only_to_their_agents(agent, other, campaign):
    Lead.objects.create(campaign=campaign, number="+12125550001", assigned_agents=",other,")
    assert services.lead_next_for_agent(agent=agent, campaign=campaign) is None
    assert services.lead_next_for_agent(agent=other, campaign=campaign) is not None


def test_skip_needs_a_reason_then_records_and_moves_on(agent_client, agent, campaign, leads):
    _ready(agent_client, campaign)
    lead = Lead.objects.get(lease_owner=agent)
    body = agent_client.post(f"/desk/leads/{lead.pk}/skip/", {"reason": ""}).content.decode()
    assert "Pick a reason" in body
    body = agent_client.post(f"/desk/leads/{lead.pk}/skip/", {"reason": "Bad data"}).content.decode()
    lead.refresh_from_db()
    assert lead.lease_owner is None and lead.next_attempt_at > timezone.now()
    skipped = Call.objects.get(lead=lead)
    assert skipped.state == CallState.SKIPPED and "Bad data" in skipped.notes
    assert leads[1].name in body
    assert Lead.objects.get(lease_owner=agent) == leads[1]


def test_dial_disabled_with_the_reason_for_dnc(agent_client, agent, campaign, leads):
    DoNotCall.objects.create(number=leads[0].number, reason="asked")
    body = _ready(agent_client, campaign).content.decode()
    assert 'id="dial-blocked"' in body and "do-not-call" in body
    # The server refuses too, with the reason as the alert.
    body = agent_client.post(f"/desk/leads/{leads[0].pk}/dial/").content.decode()
    assert "do-not-call" in body and "compliance_dnc" in body
    assert not Call.objects.filter(lead=leads[0]).exists()


def test_a_number_listed_while_its_lead_is_on_the_desk_disables_dial_at_the_next_read(
    agent_client, agent, campaign, leads
):
    """The desk reads the do-not-call list with the lead (one query): a number listed while
    its lead sits on the desk is refused at the desk's next read, and allowed again when it
    comes off the list."""
    body = _ready(agent_client, campaign).content.decode()
    assert 'id="dial-blocked"' not in body
    listed = DoNotCall.objects.create(number=leads[0].number, reason="asked")
    body = agent_client.get("/desk/state/").content.decode()
    assert 'id="dial-blocked"' in body and "do-not-call" in body
    listed.delete()
    assert 'id="dial-blocked"' not in agent_client.get("/desk/state/").content.decode()


def test_dial_disabled_when_the_window_closes_on_a_held_lead(agent_client, agent):
    """The queue offers only leads inside their window; one already on the desk when the window
    closes stays, with the dial disabled and the reason shown."""
    closing = make_campaign(name="Closing now")
    make_leads(closing, 1)
    _ready(agent_client, closing)
    now_ny = timezone.now().astimezone(ZoneInfo("America/New_York"))
    start = (now_ny + timedelta(hours=2)).time().replace(second=0, microsecond=0)
    end = (now_ny + timedelta(hours=3)).time().replace(second=0, microsecond=0)
    if end < start:
        start, end = time(0, 0), (now_ny - timedelta(hours=1)).time()
    closing.window_start, closing.window_end = start, end
    closing.save()
    body = agent_client.get("/desk/state/").content.decode()
    assert "Outside calling window" in body and 'id="dial-blocked"' in body


def test_dial_creates_the_call_and_shows_it(agent_client, agent, campaign, leads):
    _ready(agent_client, campaign)
    body = agent_client.post(f"/desk/leads/{leads[0].pk}/dial/").content.decode()
    call = Call.objects.get(lead=leads[0])
    assert call.state == CallState.DIAL_REQUESTED and call.compliance["click"]["ok"]
    assert "Dialing" in body and f'value="{call.pk}"' in body


def _dispose_ready(agent_client, agent, campaign, leads):
    _ready(agent_client, campaign)
    call = make_call(agent, leads[0], CallState.ENDED)
    return call


def test_dispose_with_notes_then_the_next_preview_appears(agent_client, agent, campaign, leads):
    call = _dispose_ready(agent_client, agent, campaign, leads)
    final = campaign.dispositions.get(name="Interested")
    body = agent_client.post(
        "/desk/dispose/", {"call": call.pk, "disposition": final.pk, "notes": "Wants the <b>plus</b> plan"}
    ).content.decode()
    call.refresh_from_db()
    assert call.state == CallState.DISPOSED and call.notes == "Wants the <b>plus</b> plan"
    assert leads[1].name in body
    assert Lead.objects.get(lease_owner=agent) == leads[1]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", ["dispose", "skip"])
def test_the_pushes_a_command_sends_already_show_the_next_lead(
    command, agent_client, agent, campaign, leads, monkeypatch
):
    """The events a command sends are rendered when they are delivered: each shows the desk after
    the command, the next lead, never an empty desk in between (transactional: on_commit runs at
    the real commit, as in production)."""
    from agentdesk import fragments, live
    from calls.services import life

    monkeypatch.setattr(life, "on_commit", lambda fn: None)  # no platform tasks here
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(live, "send", lambda group, event: sent.append((group, event)))
    if command == "dispose":
        call = _dispose_ready(agent_client, agent, campaign, leads)
        sent.clear()
        final = campaign.dispositions.get(name="Interested")
        agent_client.post("/desk/dispose/", {"call": call.pk, "disposition": final.pk})
    else:
        _ready(agent_client, campaign)
        sent.clear()
        agent_client.post(f"/desk/leads/{leads[0].pk}/skip/", {"reason": "Bad data"})
    assert Lead.objects.get(lease_owner=agent) == leads[1]
    events = [event for group, event in sent if group == live.agent_group(agent.pk)]
    assert any(live.CALL in event["panels"] for event in events), "the command re-renders the call panel"
    for event in events:
        html = fragments.desk_event(agent.pk, event)
        if 'id="desk-call"' in html:
            assert "No call" not in html
            assert f"Ready to dial {leads[1].number}" in html


def test_dispose_needs_a_disposition(agent_client, agent, campaign, leads):
    call = _dispose_ready(agent_client, agent, campaign, leads)
    answer = agent_client.post(
        "/desk/dispose/", {"call": call.pk, "notes": "kept"}, headers={"HX-Request": "true"}
    )
    # The disposition panel alone, out of band: the rest of the desk is left as it is.
    assert answer["HX-Reswap"] == "none"
    body = answer.content.decode()
    assert 'id="desk-dispose"' in body and 'hx-swap-oob="true"' in body and 'id="desk-call"' not in body
    assert "Pick a disposition" in body and "kept" in body


def test_callback_outside_the_window_is_refused_on_the_server(agent_client, agent):
    campaign = make_campaign(name="Day shift", window=(time(9, 0), time(17, 0)))
    leads = make_leads(campaign, 2, tz="America/Chicago")
    call = _dispose_ready(agent_client, agent, campaign, leads)
    callback = campaign.dispositions.get(name="Call back")
    local = timezone.now().astimezone(ZoneInfo("America/Chicago")) + timedelta(days=2)
    late = local.replace(hour=22, minute=30).strftime("%Y-%m-%dT%H:%M")
    body = agent_client.post(
        "/desk/dispose/", {"call": call.pk, "disposition": callback.pk, "callback_at": late}
    ).content.decode()
    assert "Outside the lead" in body
    call.refresh_from_db()
    assert call.state == CallState.ENDED
    good = local.replace(hour=10, minute=15).strftime("%Y-%m-%dT%H:%M")
    agent_client.post("/desk/dispose/", {"call": call.pk, "disposition": callback.pk, "callback_at": good})
    call.refresh_from_db()
    assert call.state == CallState.DISPOSED
    expected = datetime.fromisoformat(good).replace(tzinfo=ZoneInfo("America/Chicago"))
    assert call.callback_at == expected
    lead = Lead.objects.get(pk=leads[0].pk)
    assert lead.status == Lead.Status.CALLBACK


def test_callback_in_the_past_is_refused(agent_client, agent, campaign, leads):
    call = _dispose_ready(agent_client, agent, campaign, leads)
    callback = campaign.dispositions.get(name="Call back")
    body = agent_client.post(
        "/desk/dispose/", {"call": call.pk, "disposition": callback.pk, "callback_at": "2001-01-01T10:00"}
    ).content.decode()
    assert "in the past" in body


# -- the permission matrix: another agent's lead and call are 403 --------------------------------


def test_another_agents_lead_is_403(agent_client, other_client, agent, campaign, leads):
    _ready(agent_client, campaign)
    mine = Lead.objects.get(lease_owner=agent)
    assert other_client.post(f"/desk/leads/{mine.pk}/dial/").status_code == 403
    assert other_client.post(f"/desk/leads/{mine.pk}/skip/", {"reason": "Other"}).status_code == 403
    # A lead leased to nobody is not dialable either; a missing one is 404.
    assert agent_client.post(f"/desk/leads/{leads[4].pk}/dial/").status_code == 403
    assert agent_client.post("/desk/leads/999999/dial/").status_code == 404
    assert not Call.objects.exists()


def test_another_agents_call_is_403(agent_client, other_client, agent, campaign, leads):
    _ready(agent_client, campaign)
    call = make_call(agent, Lead.objects.get(lease_owner=agent), CallState.CONNECTED)
    final = campaign.dispositions.first()
    assert other_client.post(f"/desk/calls/{call.pk}/end/").status_code == 403
    Call.objects.filter(pk=call.pk).update(state=CallState.ENDED)
    answer = other_client.post("/desk/dispose/", {"call": call.pk, "disposition": final.pk})
    assert answer.status_code == 403
    call.refresh_from_db()
    assert call.state == CallState.ENDED
    # Another agent's desk shows nothing of it.
    body = other_client.get("/desk/state/").content.decode()
    assert call.number not in body and leads[0].name not in body


def test_supervisor_is_not_an_agent_on_the_desk(supervisor, agent, campaign, leads):
    boss = login(supervisor)
    lead = services.lead_next_for_agent(agent=agent, campaign=campaign)
    assert boss.post(f"/desk/leads/{lead.pk}/dial/").status_code == 403
    assert boss.post("/desk/presence/", {"presence": "ready"}).status_code == 403


def test_offline_releases_the_lead(agent_client, agent, campaign, leads):
    _ready(agent_client, campaign)
    agent_client.post("/desk/presence/", {"presence": "offline"})
    assert not Lead.objects.filter(lease_owner=agent).exists()


def test_signing_out_releases_the_lead(agent_client, agent, campaign, leads):
    _ready(agent_client, campaign)
    agent_client.post("/logout/")
    assert not Lead.objects.filter(lease_owner=agent).exists()
    agent.refresh_from_db()
    assert agent.presence == Presence.OFFLINE


def test_toggle_presence_with_a_reason(agent_client, agent, campaign, leads):
    _ready(agent_client, campaign)
    body = agent_client.post("/desk/presence/", {"presence": "toggle", "reason": "Lunch"}).content.decode()
    agent.refresh_from_db()
    assert agent.presence == Presence.NOT_READY and agent.presence_reason == "Lunch"
    assert "Lunch" in body


def test_an_empty_ready_desk_looks_for_leads_less_often_the_longer_it_waits(agent_client, campaign):
    # No lead in the campaign: Ready shows the waiting card, which asks again after 5 s.
    body = _ready(agent_client, campaign).content.decode()
    assert 'hx-trigger="load delay:5s"' in body and '{"attempt": 0}' in body
    delays = []
    for attempt in range(7):
        body = agent_client.post("/desk/next/", {"attempt": attempt}).content.decode()
        delays.append(int(re.search(r'data-poll-delay="(\d+)"', body).group(1)))
        assert f'{{"attempt": {attempt + 1}}}' in body
    assert delays == [5, 10, 10, 20, 30, 30, 30]
    # A junk attempt counts as the first.
    body = agent_client.post("/desk/next/", {"attempt": "x"}).content.decode()
    assert 'data-poll-delay="5"' in body


@pytest.mark.parametrize("zone", ["Australia/Sydney", "America/Los_Angeles"])
def test_the_preview_shows_the_leads_own_clock_on_a_server_in_utc(agent_client, agent, zone, settings):
    """The server runs in UTC; a lead in Sydney or Los Angeles is shown at its own local time and
    day, and the callback picker starts there too (never the server's clock)."""
    assert settings.TIME_ZONE == "UTC"
    campaign = make_campaign(name=f"Clock {zone}")
    make_leads(campaign, 1, tz=zone)
    before = timezone.now()
    body = _ready(agent_client, campaign).content.decode()
    after = timezone.now()
    local_times = {t.astimezone(ZoneInfo(zone)) for t in (before, after)}
    shown = re.search(r'id="lead-local-time">([^<]+)<', body).group(1)
    assert shown in {t.strftime("%H:%M") for t in local_times}
    utc = {t.astimezone(ZoneInfo("UTC")).strftime("%H:%M") for t in (before, after)}
    assert shown not in utc  # Sydney and Los Angeles are never on UTC's clock
    day = re.search(r'id="lead-local-day">([^<]+)<', body).group(1)
    assert day.startswith(tuple(t.strftime("%a") for t in local_times)) and zone in day
    picker_min = re.search(r'id="dispose-callback"[^>]* min="([^"]+)"', body).group(1)
    assert picker_min in {t.strftime("%Y-%m-%dT%H:%M") for t in local_times}


def test_the_disposition_drafted_during_a_call_survives_a_reload(
    agent_client, other_client, agent, campaign, leads
):
    """The desk posts the form a moment after each change; a reload (or a second tab) renders
    the call's draft: the notes, the chosen disposition, the callback time."""
    _ready(agent_client, campaign)
    call = make_call(agent, leads[0], CallState.CONNECTED)
    callback = campaign.dispositions.get(name="Call back")
    draft = {
        "call": call.pk,
        "notes": "Asked about <b>roaming</b>",
        "disposition": callback.pk,
        "callback_at": "2030-01-02T10:00",
    }
    assert agent_client.post("/desk/draft/", draft).status_code == 204
    page = agent_client.get("/desk/").content.decode()
    assert re.search(
        r'<textarea id="dispose-notes"[^>]*>Asked about &lt;b&gt;roaming&lt;/b&gt;</textarea>', page
    )
    assert re.search(rf'value="{callback.pk}" data-outcome="callback" checked', page)
    assert 'value="2030-01-02T10:00"' in page
    # Another agent cannot write into this call's draft; notes past the limit are refused.
    assert other_client.post("/desk/draft/", draft).status_code == 403
    refused = agent_client.post("/desk/draft/", {**draft, "notes": "x" * 4001})
    assert refused.status_code == 400 and b"4000 characters" in refused.content
    # Saving the disposition keeps what was drafted as the call's notes; the next call starts empty.
    Call.objects.filter(pk=call.pk).update(state=CallState.ENDED)
    final = campaign.dispositions.get(name="Interested")
    agent_client.post(
        "/desk/dispose/", {"call": call.pk, "disposition": final.pk, "notes": "Asked about <b>roaming</b>"}
    )
    call.refresh_from_db()
    assert call.state == CallState.DISPOSED and call.notes == "Asked about <b>roaming</b>"
    assert agent_client.post("/desk/draft/", draft).status_code == 400  # disposed: nothing to draft
    page = agent_client.get("/desk/").content.decode()
    assert re.search(r'<textarea id="dispose-notes"[^>]*></textarea>', page)


def test_presence_refuses_what_an_agent_may_not_set(agent_client, agent, campaign):
    """On call follows the call's life; a Not-ready reason comes from the list."""
    _ready(agent_client, campaign)
    body = agent_client.post("/desk/presence/", {"presence": "on_call"}).content.decode()
    assert "On call follows your calls: it cannot be set by hand." in body
    assert "Unknown presence." in agent_client.post("/desk/presence/", {"presence": "away"}).content.decode()
    agent.refresh_from_db()
    assert agent.presence == Presence.READY
    body = agent_client.post(
        "/desk/presence/", {"presence": "not_ready", "reason": "x" * 3000}
    ).content.decode()
    assert "Pick a Not-ready reason from the list: Break, Lunch, Meeting, Training, Coaching." in body
    assert "x" * 100 not in body
    agent.refresh_from_db()
    assert agent.presence == Presence.READY
    agent_client.post("/desk/presence/", {"presence": "not_ready", "reason": "Lunch"})
    agent.refresh_from_db()
    assert agent.presence == Presence.NOT_READY and agent.presence_reason == "Lunch"


def test_presence_is_refused_during_a_live_call_and_free_again_when_it_ends(
    agent_client, agent, campaign, leads
):
    """The desk disables the presence buttons during a call; a stale tab or a hand-made POST is
    refused by the server too, and the presence stays what the call made it."""
    _ready(agent_client, campaign)
    call = make_call(agent, leads[0], CallState.CONNECTED)
    Agent.objects.filter(pk=agent.pk).update(presence=Presence.ON_CALL)
    for presence, label in (
        ("ready", "Ready"),
        ("not_ready", "Not ready"),
        ("wrap_up", "Wrap-up"),
        ("offline", "Offline"),
        ("toggle", "Ready"),
    ):
        body = agent_client.post(
            "/desk/presence/", {"presence": presence, "reason": "Lunch"}
        ).content.decode()
        assert f"You are on a call: {label} can be set when it ends." in body
        agent.refresh_from_db()
        assert agent.presence == Presence.ON_CALL
    assert Lead.objects.get(pk=leads[0].pk).lease_owner == agent  # Offline released nothing
    # The call ends: wrap-up may be left by hand.
    Call.objects.filter(pk=call.pk).update(state=CallState.ENDED)
    body = agent_client.post("/desk/presence/", {"presence": "not_ready", "reason": "Lunch"}).content.decode()
    assert "You are on a call" not in body
    agent.refresh_from_db()
    assert agent.presence == Presence.NOT_READY and agent.presence_reason == "Lunch"


def test_an_ended_call_says_how_long_it_lasted(agent_client, agent, campaign, leads):
    _ready(agent_client, campaign)
    call = make_call(agent, leads[0], CallState.ENDED)
    now = timezone.now()
    Call.objects.filter(pk=call.pk).update(connected_at=now - timedelta(seconds=125), ended_at=now)
    body = agent_client.get("/desk/state/").content.decode()
    assert 'Talked <span id="call-talk-time">2:05</span> · pick a disposition' in body
    Call.objects.filter(pk=call.pk).update(talk_seconds=61)  # the platform's own figure wins
    assert '<span id="call-talk-time">1:01</span>' in agent_client.get("/desk/state/").content.decode()


def test_the_history_shows_earlier_calls_in_the_leads_time(agent_client, agent):
    campaign = make_campaign(name="Sydney history")
    (lead,) = make_leads(campaign, 1, tz="Australia/Sydney")
    earlier = make_call(agent, lead, CallState.DISPOSED)
    at = datetime(2026, 3, 1, 23, 30, tzinfo=ZoneInfo("UTC"))  # 10:30 on 2 March in Sydney
    Call.objects.filter(pk=earlier.pk).update(created_at=at)
    body = _ready(agent_client, campaign).content.decode()
    assert "Mar 2 10:30" in body and "Mar 1 23:30" not in body


def test_leads_outside_their_window_are_not_offered_and_the_desk_says_when(agent_client, agent, campaign):
    """A server in UTC, leads in New York and Sydney, a window that closed an hour ago in both:
    no lead on the desk (the dial would refuse it), and the wait in words, in both zones."""
    Lead.objects.create(campaign=campaign, number="+12125550101", name="Ann NY", timezone="America/New_York")
    Lead.objects.create(campaign=campaign, number="+61291234567", name="Bo Syd", timezone="Australia/Sydney")
    local = timezone.now().astimezone(ZoneInfo("America/New_York"))
    campaign.window_start = (local - timedelta(hours=2)).time().replace(second=0, microsecond=0)
    campaign.window_end = (local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    campaign.save()
    body = _ready(agent_client, campaign).content.decode()
    assert not Lead.objects.filter(lease_owner=agent).exists()
    assert "Ann NY" not in body and "Bo Syd" not in body
    assert "Leads are waiting for their calling window" in body
    assert f"{campaign.window_start:%H:%M} in " in body


def test_a_campaigns_own_not_ready_reasons_are_the_ones_offered_and_taken(agent_client, agent, campaign):
    """A supervisor lists the campaign's reasons: the desk offers those, the server takes only
    those, and the refusal names them."""
    Campaign.objects.filter(pk=campaign.pk).update(not_ready_reasons=["Team huddle", "Tech issue"])
    _ready(agent_client, campaign)
    page = agent_client.get("/desk/").content.decode()
    picker = re.search(r'<select name="reason" id="presence-reason".*?</select>', page, re.S).group(0)
    assert re.findall(r"<option[^>]*>([^<]+)</option>", picker) == ["Team huddle", "Tech issue"]
    body = agent_client.post("/desk/presence/", {"presence": "not_ready", "reason": "Lunch"}).content.decode()
    assert "Pick a Not-ready reason from the list: Team huddle, Tech issue." in body
    agent.refresh_from_db()
    assert agent.presence == Presence.READY
    agent_client.post("/desk/presence/", {"presence": "not_ready", "reason": "Tech issue"})
    agent.refresh_from_db()
    assert agent.presence == Presence.NOT_READY and agent.presence_reason == "Tech issue"
    # No reason given: the campaign's first.
    _ready(agent_client, campaign)
    agent_client.post("/desk/presence/", {"presence": "not_ready"})
    agent.refresh_from_db()
    assert agent.presence_reason == "Team huddle"


DESK_JS = Path(__file__).resolve().parent.parent.parent / "static" / "js" / "desk.js"


def test_the_cheat_sheet_lists_every_key_the_desk_handles(agent_client, campaign):
    """Each key desk.js answers on the desk (its switch's cases, the disposition digits, Shift+Enter
    in the notes, typing in the campaign list) has a line on the cheat sheet (?)."""
    js = DESK_JS.read_text()
    names = {"Escape": "Esc"}
    cases = re.findall(r'case "([^"]+)":', js)
    handled = {names.get(key, key.upper() if len(key) == 1 else key) for key in cases}
    assert {"D", "E", "S", "R", "N", "C", "B", "H", "M", "A", "?", "Enter", "Esc"} <= handled
    page = agent_client.get("/desk/").content.decode()
    sheet = re.search(r'<dialog id="cheatsheet".*?</dialog>', page, re.S).group(0)
    listed = set(re.findall(r"<kbd>([^<]+)</kbd>", sheet))
    assert handled <= listed, handled - listed
    # The digits pick a disposition (and a skip reason, once S is open).
    assert "/^[0-9]$/.test(key)" in js and {"1", "9", "0"} <= listed
    # Enter saves from the notes; Shift+Enter is a new line there.
    assert '!e.shiftKey && (t.id === "dispose-notes"' in js
    assert re.search(r"<kbd>Shift</kbd>\+<kbd>Enter</kbd></td><td>A new line in the notes", sheet)
    # C focuses the campaign list, where typing a name's first letters picks it (the browser's own).
    assert '$("#campaign-select").focus()' in js
    assert re.search(r"<kbd>C</kbd> then type</td><td>Pick a campaign by its first letters", sheet)
