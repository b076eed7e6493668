"""The lower desk: the agent's day, their callbacks, their recent calls (notes correctable for a
few minutes), the wrap-up limit, and the small ones (favicon, "Other" skips). Through the real
views and services, with the named users: ``agent``, ``other`` (another agent)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from agentdesk import live, selectors, services
from agentdesk.models import Presence, PresenceSpan
from calls import services as engine
from calls.models import Call, CallState
from campaigns.forms import CampaignForm
from campaigns.models import Disposition, Lead
from tests.factories import disposition_rows, make_call, make_campaign, make_leads

pytestmark = pytest.mark.django_db


def _ready(client, campaign):
    assert client.post("/desk/campaign/", {"campaign": campaign.pk}).status_code == 200
    assert client.post("/desk/presence/", {"presence": "ready"}).status_code == 200


def _disposed(agent, lead, name, *, notes="", callback_at=None):
    """A call of ``agent`` on ``lead``, ended and disposed with ``name`` through the engine."""
    Lead.objects.filter(pk=lead.pk).update(
        lease_owner=agent, lease_expires_at=timezone.now() + timedelta(minutes=2)
    )
    call = make_call(agent, lead, CallState.ENDED)
    now = timezone.now()
    Call.objects.filter(pk=call.pk).update(connected_at=now - timedelta(seconds=90), ended_at=now)
    disposition = lead.campaign.dispositions.get(name=name)
    engine.call_dispose(agent=agent, call=call, disposition=disposition, notes=notes, callback_at=callback_at)
    call.refresh_from_db()
    return call


# -- the day ----------------------------------------------------------------------------------------


def test_every_presence_change_is_logged_through_one_writer(agent_client, agent, campaign, leads):
    _ready(agent_client, campaign)  # the desk's path (agentdesk.services)
    call = make_call(agent, leads[0], CallState.DIAL_REQUESTED)
    engine.set_presence(agent, Presence.ON_CALL)  # the engine's path (calls.services.presence)
    spans = list(PresenceSpan.objects.filter(agent=agent))
    assert [s.presence for s in spans] == [Presence.READY, Presence.ON_CALL]
    assert spans[0].ended_at == spans[1].started_at and spans[1].ended_at is None
    assert call.agent_id == agent.pk


def test_the_day_adds_up_calls_connects_talk_conversions_and_time_in_each_state(
    agent, campaign, leads, local_midday
):
    Disposition.objects.filter(campaign=campaign, name="Interested").update(is_conversion=True)
    _disposed(agent, leads[0], "Interested")  # connected 90 s, a conversion
    _disposed(agent, leads[1], "No answer")  # connected 90 s, no conversion
    make_call(agent, leads[2], CallState.FAILED)  # a call, never connected
    make_call(agent, leads[3], CallState.SKIPPED)  # a skip is not a call
    now = timezone.now()
    PresenceSpan.objects.all().delete()
    for presence, start, end in (
        (Presence.READY, 600, 300),
        (Presence.NOT_READY, 300, 120),
        (Presence.WRAP_UP, 120, 60),
        (Presence.READY, 60, None),
    ):
        PresenceSpan.objects.create(
            agent=agent,
            presence=presence,
            started_at=now - timedelta(seconds=start),
            ended_at=now - timedelta(seconds=end) if end else None,
        )
    day = selectors.agent_day(agent=agent, now=now)
    assert (day.calls, day.connects, day.talk_seconds, day.conversions) == (3, 2, 180, 1)
    assert day.seconds == {"ready": 360, "not_ready": 180, "wrap_up": 60}
    assert day.talk_text == "3:00"


def test_the_day_starts_at_midnight_and_counts_only_todays_part_of_a_span(agent, settings):
    settings.TIME_ZONE = "UTC"
    midnight = datetime(2026, 5, 4, 0, 0, tzinfo=ZoneInfo("UTC"))
    PresenceSpan.objects.create(
        agent=agent,
        presence=Presence.NOT_READY,
        started_at=midnight - timedelta(hours=2),
        ended_at=midnight + timedelta(minutes=10),
    )
    day = selectors.agent_day(agent=agent, now=midnight + timedelta(hours=1))
    assert day.since == midnight
    assert day.seconds == {"not_ready": 600}


def test_the_day_panel_is_on_the_desk_and_pushed_with_presence_and_dispositions(
    agent_client, agent, campaign, leads
):
    _ready(agent_client, campaign)
    body = agent_client.get("/desk/state/").content.decode()
    assert 'id="desk-day"' in body and 'id="day-calls">0<' in body
    # The current state ticks in the browser from the server's timestamp.
    assert re.search(r'id="in-state" data-since="\d+" data-server-now="\d+"', body)
    assert live.DAY in live.PANELS and live.CALLBACKS in live.PANELS and live.RECENT in live.PANELS


def test_events_that_change_the_day_name_its_panel(agent, campaign, leads, monkeypatch):
    sent = []
    monkeypatch.setattr(live, "emit", lambda group, event: sent.append(event))
    engine.set_presence(agent, Presence.NOT_READY, reason="Break")
    assert live.DAY in sent[-2]["panels"]  # the desk's event (the board row's is last)
    call = make_call(agent, leads[0], CallState.ENDED)
    sent.clear()
    from calls.services import events

    events.call_left_desk(call)
    panels = sent[0]["panels"]
    assert {live.DAY, live.CALLBACKS, live.RECENT} <= set(panels)


# -- callbacks --------------------------------------------------------------------------------------


def _book(agent, lead, at):
    return _disposed(agent, lead, "Call back", callback_at=at)


def test_my_callbacks_list_shows_due_times_in_the_leads_zone_and_mine(agent_client, agent, other):
    campaign = make_campaign(name="Callbacks")
    (ny, syd) = make_leads(campaign, 1, tz="America/New_York") + make_leads(
        campaign, 1, start=5, tz="Australia/Sydney"
    )
    later = datetime(2031, 3, 3, 15, 0, tzinfo=ZoneInfo("UTC"))  # 10:00 in New York, 02:00 next day in Sydney
    _book(agent, ny, later)
    _book(other, syd, later + timedelta(hours=1))  # another agent's: not in my list
    agent_client.post("/desk/campaign/", {"campaign": campaign.pk})
    body = agent_client.get("/desk/state/").content.decode()
    section = body[body.index('id="desk-callbacks"') :]
    assert ny.name in section and syd.name not in section
    assert "Mon 10:00" in section and "America/New_York" in section  # the lead's time
    assert "Mon 15:00" in section  # the agent's (the server's zone, UTC)
    assert 'class="cb"' in section  # not due yet


def test_a_callback_rebooked_by_another_agent_is_theirs_now(agent, other):
    campaign = make_campaign(name="Rebooked")
    (lead,) = make_leads(campaign, 1)
    soon = timezone.now() + timedelta(days=1)
    _book(agent, lead, soon)
    assert [c.lead for c in selectors.callbacks_for_agent(agent=agent)] == [lead]
    _book(other, lead, soon + timedelta(hours=2))
    assert selectors.callbacks_for_agent(agent=agent) == []
    assert [c.lead for c in selectors.callbacks_for_agent(agent=other)] == [lead]


def test_a_due_callback_is_offered_before_new_leads(agent_client, agent, campaign, leads):
    _book(agent, leads[3], timezone.now() + timedelta(minutes=1))
    Lead.objects.filter(pk=leads[3].pk).update(next_attempt_at=timezone.now() - timedelta(seconds=5))
    Call.objects.filter(lead=leads[3]).update(callback_at=timezone.now() - timedelta(seconds=5))
    Lead.objects.filter(pk=leads[3].pk).update(next_attempt_at=Call.objects.get(lead=leads[3]).callback_at)
    _ready(agent_client, campaign)
    assert Lead.objects.get(lease_owner=agent) == leads[3]  # not leads[0], the lowest id
    body = agent_client.get("/desk/state/").content.decode()
    assert 'class="cb due"' in body and "On desk" in body


def test_someone_elses_due_callback_also_comes_before_new_leads(agent_client, agent, other, campaign, leads):
    past = timezone.now() - timedelta(minutes=1)
    Lead.objects.filter(pk=leads[4].pk).update(status=Lead.Status.CALLBACK, next_attempt_at=past)
    _ready(agent_client, campaign)
    assert Lead.objects.get(lease_owner=agent) == leads[4]


def test_a_callback_not_yet_due_waits(agent_client, agent, campaign, leads):
    _book(agent, leads[2], timezone.now() + timedelta(hours=3))
    _ready(agent_client, campaign)
    assert Lead.objects.get(lease_owner=agent) == leads[0]


def test_preview_from_the_list_leases_it_then_the_normal_dial(agent_client, agent, campaign, leads):
    _book(agent, leads[2], timezone.now() + timedelta(hours=3))
    _ready(agent_client, campaign)
    assert Lead.objects.get(lease_owner=agent) == leads[0]
    body = agent_client.post(f"/desk/callbacks/{leads[2].pk}/take/").content.decode()
    assert leads[2].name in body and f"/desk/leads/{leads[2].pk}/dial/" in body
    assert list(Lead.objects.filter(lease_owner=agent)) == [leads[2]]  # the one held went back
    agent_client.post(f"/desk/leads/{leads[2].pk}/dial/")
    assert Call.objects.filter(lead=leads[2], state=CallState.DIAL_REQUESTED).exists()


def test_another_agents_callback_cannot_be_taken(agent_client, other_client, agent, other, campaign, leads):
    _book(agent, leads[2], timezone.now() + timedelta(hours=3))
    other_client.post("/desk/campaign/", {"campaign": campaign.pk})
    assert other_client.post(f"/desk/callbacks/{leads[2].pk}/take/").status_code == 404
    assert other_client.post(f"/desk/callbacks/{leads[0].pk}/take/").status_code == 404  # not a callback
    assert Lead.objects.get(pk=leads[2].pk).lease_owner_id is None


def test_taking_a_callback_is_refused_during_a_call_or_in_another_campaign(
    agent_client, agent, campaign, leads
):
    _book(agent, leads[2], timezone.now() + timedelta(hours=3))
    _ready(agent_client, campaign)
    make_call(agent, leads[0], CallState.CONNECTED)
    body = agent_client.post(f"/desk/callbacks/{leads[2].pk}/take/").content.decode()
    assert "Finish the call on your desk first." in body
    Call.objects.filter(agent=agent, lead=leads[0]).update(state=CallState.DISPOSED)
    agent_client.post("/desk/campaign/", {"campaign": make_campaign(name="Elsewhere").pk})
    body = agent_client.post(f"/desk/callbacks/{leads[2].pk}/take/").content.decode()
    assert "switch to it first" in body


# -- recent calls -----------------------------------------------------------------------------------


def test_recent_calls_show_outcome_and_notes_escaped_newest_first(agent_client, agent, campaign, leads):
    _disposed(agent, leads[0], "Interested", notes="first <b>bold</b>")
    _disposed(agent, leads[1], "No answer", notes="second")
    make_call(agent, leads[2], CallState.SKIPPED)
    body = agent_client.get("/desk/state/").content.decode()
    section = body[body.index('id="desk-recent"') :]
    assert section.index("second") < section.index("first")
    assert "first &lt;b&gt;bold&lt;/b&gt;" in section and "<b>bold" not in section
    assert "Skipped" not in section
    assert section.count("data-edit-notes=") == 2


def test_notes_can_be_corrected_for_five_minutes_then_are_final(agent_client, agent, campaign, leads):
    call = _disposed(agent, leads[0], "Interested", notes="tpyo")
    body = agent_client.post(f"/desk/calls/{call.pk}/notes/", {"notes": "typo fixed"}).content.decode()
    call.refresh_from_db()
    assert call.notes == "typo fixed" and "typo fixed" in body
    assert Lead.objects.get(pk=leads[0].pk).last_notes == "typo fixed"
    Call.objects.filter(pk=call.pk).update(disposed_at=timezone.now() - timedelta(minutes=5, seconds=1))
    body = agent_client.post(f"/desk/calls/{call.pk}/notes/", {"notes": "too late"}).content.decode()
    assert "Notes can be corrected for 5 minutes after the disposition" in body
    call.refresh_from_db()
    assert call.notes == "typo fixed"
    assert "data-edit-notes" not in agent_client.get("/desk/state/").content.decode()


def test_only_my_own_calls_notes_and_only_disposed_ones(agent_client, other_client, agent, campaign, leads):
    call = _disposed(agent, leads[0], "Interested", notes="mine")
    assert other_client.post(f"/desk/calls/{call.pk}/notes/", {"notes": "theirs"}).status_code == 403
    assert other_client.post("/desk/calls/999999/notes/", {"notes": "x"}).status_code == 404
    live_call = make_call(agent, leads[1], CallState.CONNECTED)
    body = agent_client.post(f"/desk/calls/{live_call.pk}/notes/", {"notes": "x"}).content.decode()
    assert "Only a disposed call" in body
    call.refresh_from_db()
    assert call.notes == "mine"


def test_other_agents_see_nothing_of_mine(agent_client, other_client, agent, other, campaign, leads):
    _disposed(agent, leads[0], "Interested", notes="private note")
    _book(agent, leads[1], timezone.now() + timedelta(hours=2))
    body = other_client.get("/desk/state/").content.decode()
    assert "private note" not in body and leads[1].name not in body


# -- wrap-up limit ----------------------------------------------------------------------------------


def test_the_campaign_form_edits_the_wrap_up_limit(campaign):
    data = {
        "name": campaign.name,
        "account": campaign.account_id,
        "platform_campaign_id": "595",
        "agent_mapping": "all-agents",
        "push_format": "json",
        "default_region": "US",
        "window_start": "09:00",
        "window_end": "21:00",
        "attempt_cap": 3,
        "retry_delay_minutes": 60,
        "wrap_up_limit_seconds": 90,
        "days": list("0123456"),
        **disposition_rows({"name": "Sale", "is_conversion": True}, {"name": "No"}),
    }
    form = CampaignForm(data, instance=campaign)
    assert form.is_valid(), form.errors
    form.save_campaign()
    campaign.refresh_from_db()
    assert campaign.wrap_up_limit_seconds == 90
    assert [(d.name, d.is_conversion) for d in campaign.dispositions.all()] == [("Sale", True), ("No", False)]
    data["wrap_up_limit_seconds"] = ""
    form = CampaignForm(data, instance=campaign)
    assert form.is_valid(), form.errors
    form.save_campaign()
    campaign.refresh_from_db()
    assert campaign.wrap_up_limit_seconds is None


def test_wrap_up_counts_against_the_limit_and_says_when_over(agent_client, agent, campaign, leads):
    campaign.wrap_up_limit_seconds = 60
    campaign.save(update_fields=["wrap_up_limit_seconds"])
    _ready(agent_client, campaign)
    call = make_call(agent, leads[0], CallState.ENDED)
    Call.objects.filter(pk=call.pk).update(ended_at=timezone.now() - timedelta(seconds=10))
    body = agent_client.get("/desk/state/").content.decode()
    assert re.search(r'<div class="wrapup" id="wrapup">\s*Wrap-up <span class="clock" data-since="\d+"', body)
    assert 'data-limit="60"' in body and "of 1:00" in body
    Call.objects.filter(pk=call.pk).update(ended_at=timezone.now() - timedelta(seconds=75))
    body = agent_client.get("/desk/state/").content.decode()
    assert 'class="wrapup over"' in body and "over the limit" in body
    call.refresh_from_db()
    assert call.state == CallState.ENDED  # never disposed by itself


# -- small ones -------------------------------------------------------------------------------------


def test_favicon_is_served(client):
    answer = client.get("/favicon.ico")
    assert answer.status_code == 302 and answer["Location"].endswith("favicon.ico")


def test_other_skip_takes_a_short_text(agent_client, agent, campaign, leads):
    _ready(agent_client, campaign)
    agent_client.post(f"/desk/leads/{leads[0].pk}/skip/", {"reason": "Other", "other": "  asked  for email "})
    assert Call.objects.get(lead=leads[0]).notes == "Skipped: Other: asked for email"
    body = agent_client.post(
        f"/desk/leads/{leads[1].pk}/skip/", {"reason": "Other", "other": "x" * 81}
    ).content.decode()
    assert "80 characters or fewer" in body
    assert Lead.objects.get(lease_owner=agent) == leads[1]


def test_the_not_ready_list_is_disabled_during_a_call(agent_client, agent, campaign, leads):
    _ready(agent_client, campaign)
    make_call(agent, leads[0], CallState.CONNECTED)
    body = agent_client.get("/desk/state/").content.decode()
    assert re.search(r'<select name="reason" id="presence-reason"[^>]*disabled', body)


def test_services_take_callbacks_keyword_only(agent):
    with pytest.raises(TypeError):
        services.callback_take(agent, 1)  # type: ignore[misc]


# -- what each push redraws -------------------------------------------------------------------------


def _desk_events(monkeypatch) -> list[dict]:
    """The desk events the code under test emits (the board rows' events left out)."""
    sent: list[dict] = []
    monkeypatch.setattr(live, "emit", lambda group, event: sent.append(event))
    return sent


def _a_full_day(agent, campaign, leads):
    """A day with a conversion, a booked callback and a few recent calls, and a lead held on the
    desk: the lower panels have rows to read."""
    Disposition.objects.filter(campaign=campaign, name="Interested").update(is_conversion=True)
    _disposed(agent, leads[0], "Interested", notes="Wants the plus plan")
    _disposed(agent, leads[1], "Call back", callback_at=timezone.now() + timedelta(days=1))
    _disposed(agent, leads[2], "No answer")
    Lead.objects.filter(pk=leads[3].pk).update(
        lease_owner=agent, lease_expires_at=timezone.now() + timedelta(minutes=2)
    )


def test_a_call_state_push_redraws_the_call_alone_in_few_queries(agent, campaign, leads, monkeypatch):
    """Ringing, connected: the call panel and the presence it shows, nothing below (the day,
    the callbacks and the recent calls are read only when a change of theirs is pushed)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from agentdesk import fragments

    _a_full_day(agent, campaign, leads)
    engine.set_presence(agent, Presence.ON_CALL)
    call = make_call(agent, leads[3], CallState.DIALING)
    sent = _desk_events(monkeypatch)
    Call.objects.filter(pk=call.pk).update(state=CallState.CUSTOMER_RINGING)
    call = Call.objects.select_related("agent").get(pk=call.pk)
    assert engine.call_advance(call=call, state=CallState.CONNECTED)
    desk = [e for e in sent if e["type"] == live.DESK_CHANGED]
    assert len(desk) == 1 and set(desk[0]["panels"]) == {live.CALL, live.PRESENCE}
    with CaptureQueriesContext(connection) as queries:
        frame = fragments.desk_event(agent.pk, desk[0])
    assert 'id="desk-call"' in frame and "Connected" in frame and 'id="desk-presence"' in frame
    assert (
        'id="desk-day"' not in frame
        and 'id="desk-callbacks"' not in frame
        and 'id="desk-recent"' not in frame
    )
    sql = [q["sql"] for q in queries.captured_queries]
    assert not any('FROM "agentdesk_presencespan"' in q or '"callback_at" IS NOT NULL' in q for q in sql)
    assert len(sql) <= 5, sql  # 7 when the day was redrawn with every call state


def test_a_call_that_moves_the_agents_presence_redraws_the_day_with_it(agent, campaign, leads, monkeypatch):
    """Dialing puts the agent on call, the end puts them in wrap-up: a presence change, so the
    day's times move too, in the same frame."""
    engine.set_presence(agent, Presence.READY)
    Lead.objects.filter(pk=leads[0].pk).update(
        lease_owner=agent, lease_expires_at=timezone.now() + timedelta(minutes=2)
    )
    call = make_call(agent, leads[0], CallState.DIAL_REQUESTED)
    sent = _desk_events(monkeypatch)
    call = Call.objects.select_related("agent").get(pk=call.pk)
    for state in (CallState.DIALING, CallState.CONNECTED, CallState.ENDED):
        assert engine.call_advance(call=call, state=state)
    desk = [set(e["panels"]) for e in sent if e["type"] == live.DESK_CHANGED]
    assert desk == [
        {live.CALL, live.PRESENCE, live.DAY},  # ready -> on call
        {live.CALL, live.PRESENCE},  # still on call
        {live.CALL, live.PRESENCE, live.DAY},  # on call -> wrap-up
    ]


def test_the_day_panel_still_updates_after_a_disposition(agent_client, agent, campaign, leads, monkeypatch):
    """What the agent sees in the frame a disposition pushes: the day counts the call."""
    from agentdesk import fragments

    Disposition.objects.filter(campaign=campaign, name="Interested").update(is_conversion=True)
    _ready(agent_client, campaign)
    lead = Lead.objects.get(lease_owner=agent)
    call = make_call(agent, lead, CallState.ENDED)
    now = timezone.now()
    Call.objects.filter(pk=call.pk).update(connected_at=now - timedelta(seconds=75), ended_at=now)
    before = fragments.desk_event(agent.pk, live.desk_event([live.DAY]))
    assert 'id="day-conversions">0<' in before
    sent = _desk_events(monkeypatch)
    interested = campaign.dispositions.get(name="Interested")
    assert (
        agent_client.post("/desk/dispose/", {"call": call.pk, "disposition": interested.pk}).status_code
        == 200
    )
    frames = [fragments.desk_event(agent.pk, e) for e in sent if e["type"] == live.DESK_CHANGED]
    day = [f for f in frames if 'id="desk-day"' in f]
    assert day, "a disposition pushes the day panel"
    assert 'id="day-calls">1<' in day[-1] and 'id="day-connects">1<' in day[-1]
    assert 'id="day-conversions">1<' in day[-1] and 'id="day-talk">1:15<' in day[-1]
