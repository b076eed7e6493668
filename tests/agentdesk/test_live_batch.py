"""Events of one transaction leave when it commits, once each, and a desk's changes as one frame:
a Ryng callback that moves the call and then the agent's presence costs each open desk one
render, not two (issue 20: renders are what a web process spends its time on)."""

from __future__ import annotations

import pytest
from django.db import transaction

from agentdesk import fragments, live
from calls.models import Call, CallState
from campaigns.models import Lead
from tests.agentdesk.test_desk_views import _dispose_ready

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict]]:
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(live, "send", lambda group, event: sent.append((group, event)))
    return sent


def test_a_transactions_desk_changes_leave_as_one_event_after_commit(sent):
    with transaction.atomic():
        live.desk_changed(7, live.CALL, live.DISPOSE)
        live.desk_changed(7, live.PRESENCE)
        live.desk_changed(8, live.PRESENCE)
        live.campaign_calls_changed(3)
        live.campaign_calls_changed(3)
        assert sent == []  # nothing before the commit
    assert sent == [
        (live.agent_group(7), live.desk_event([live.PRESENCE, live.CALL, live.DISPOSE])),
        (live.SUPERVISORS, {"type": live.BOARD_AGENT, "agent": 7}),
        (live.agent_group(8), live.desk_event([live.PRESENCE])),
        (live.SUPERVISORS, {"type": live.BOARD_AGENT, "agent": 8}),
        (live.campaign_group(3), {"type": live.CAMPAIGN_CALLS, "campaign": 3}),
        (live.WALLBOARD, {"type": live.CAMPAIGN_CALLS, "campaign": 3}),
    ]


def test_the_whole_desk_takes_in_every_panel_and_one_alert_rides_along(sent):
    warning = live.alert("The platform refused the dial.", "500")
    with transaction.atomic():
        live.desk_changed(7, live.CALL)
        live.desk_changed(7, live.MAIN, live.ALERT, alert=warning)
    assert sent[0] == (live.agent_group(7), live.desk_event([live.MAIN], alert=warning))


def test_two_different_alerts_and_a_tabs_own_extras_are_never_merged(sent):
    first, second = live.alert("one"), live.alert("two")
    tab_answer = live.desk_event([live.DISPOSE], errors={"notes": "Too long"})
    with transaction.atomic():
        live.desk_changed(7, live.ALERT, alert=first)
        live.desk_changed(7, live.ALERT, alert=second)
        live.emit(live.tab_group(7, "a" * 32), tab_answer)
        live.emit(live.tab_group(7, "a" * 32), live.desk_event([live.CALL]))
    desk_events = [event for group, event in sent if event["type"] == live.DESK_CHANGED]
    assert [e["alert"] for e in desk_events[:2]] == [first, second]
    assert desk_events[2:] == [tab_answer, live.desk_event([live.CALL])]


def test_an_event_after_a_rolled_back_savepoint_is_still_sent_and_the_rolled_back_ones_are_not(sent):
    with transaction.atomic():
        try:
            with transaction.atomic():
                live.desk_changed(7, live.CALL)
                raise RuntimeError("the inner work fails")
        except RuntimeError:
            pass
        live.desk_changed(8, live.PRESENCE)
    assert [group for group, _ in sent] == [live.agent_group(8), live.SUPERVISORS]


def test_outside_a_transaction_an_event_leaves_at_once(sent):
    live.desk_changed(7, live.CALL)
    assert [group for group, _ in sent] == [live.agent_group(7), live.SUPERVISORS]


def test_nothing_leaves_when_the_transaction_rolls_back(sent):
    with pytest.raises(RuntimeError), transaction.atomic():
        live.desk_changed(7, live.CALL)
        raise RuntimeError
    assert sent == []


def test_the_batch_leaves_behind_every_hook_registered_before_its_newest_event(sent):
    """A render must never read the state before a commit hook that came before its event (a
    hook that writes, or enqueues what writes): the batch leaves where its newest event would."""
    with transaction.atomic():
        live.desk_changed(7, live.CALL)
        transaction.on_commit(lambda: sent.append(("hook", {"type": "a task enqueued"})))
        live.desk_changed(7, live.PRESENCE)
    assert [group for group, _ in sent] == ["hook", live.agent_group(7), live.SUPERVISORS]
    assert sent[1][1] == live.desk_event([live.PRESENCE, live.CALL])


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, dict]]:
    """What leaves for the channel layer (the batches already merged)."""
    published: list[tuple[str, dict]] = []
    monkeypatch.setattr(live, "_publish", lambda group, event: published.append((group, event)))
    return published


TAB = "c" * 32


def test_a_save_from_a_tab_is_one_render_for_each_desk_of_the_agent(
    agent_client, agent, campaign, leads, published
):
    """The disposition, the next lead's lease and the tab's answer are one event to the agent's
    desks (the whole desk, the next lead on it), nothing more to the tab: one render, not three."""
    call = _dispose_ready(agent_client, agent, campaign, leads)
    published.clear()
    final = campaign.dispositions.get(name="Interested")
    answer = agent_client.post(
        "/desk/dispose/", {"call": call.pk, "disposition": final.pk}, headers={"X-Desk-Tab": TAB}
    )
    assert answer.status_code == 204
    desk_events = [(group, event) for group, event in published if event["type"] == live.DESK_CHANGED]
    assert desk_events == [(live.agent_group(agent.pk), live.desk_event([live.MAIN]))]
    assert [event for _, event in published].count({"type": live.BOARD_AGENT, "agent": agent.pk}) == 1
    html = fragments.desk_event(agent.pk, desk_events[0][1])
    assert f"Ready to dial {leads[1].number}" in html


def test_a_campaign_pick_and_ready_from_a_tab_are_one_render_each_for_each_desk(
    agent_client, agent, campaign, leads, published
):
    """Picking the campaign, then Ready (the presence, the day, the lead it leases and the tab's
    answer): one whole-desk event to the agent's desks each, nothing more to the tab. They were
    two and four: the 8-hour shift's 30 desks signing in at once waited seconds for their frames,
    and a desk counting its answers took an older frame for the newest."""
    desk_events = lambda: [(g, e) for g, e in published if e["type"] == live.DESK_CHANGED]  # noqa: E731
    mine = [(live.agent_group(agent.pk), live.desk_event([live.MAIN]))]
    headers = {"X-Desk-Tab": TAB}
    assert agent_client.post("/desk/campaign/", {"campaign": campaign.pk}, headers=headers).status_code == 204
    assert desk_events() == mine
    published.clear()
    answer = agent_client.post("/desk/presence/", {"presence": "ready"}, headers=headers)
    assert answer.status_code == 204
    assert desk_events() == mine
    assert f"Ready to dial {leads[0].number}" in fragments.desk_event(agent.pk, desk_events()[0][1])
    published.clear()
    agent_client.post("/desk/presence/", {"presence": "not_ready", "reason": "Break"}, headers=headers)
    assert desk_events() == mine


def test_a_click_on_a_lead_no_longer_on_the_desk_is_refused_and_the_tab_is_told(
    agent_client, agent, other, campaign, leads, published
):
    """Dial or Skip on a lead the agent no longer holds (skipped in another tab, or the frame
    saying so still on its way) stays a 403, and the asking tab is drawn its desk as it is with a
    note saying why; a lead on another agent's desk is a 403 that shows nothing of theirs."""
    headers = {"X-Desk-Tab": TAB}
    agent_client.post("/desk/campaign/", {"campaign": campaign.pk}, headers=headers)
    agent_client.post("/desk/presence/", {"presence": "ready"}, headers=headers)
    skipped = Lead.objects.get(lease_owner=agent)
    agent_client.post(f"/desk/leads/{skipped.pk}/skip/", {"reason": "Bad data"}, headers=headers)
    now_held = Lead.objects.get(lease_owner=agent)
    theirs = Lead.objects.exclude(pk__in=[skipped.pk, now_held.pk]).first()
    Lead.objects.filter(pk=theirs.pk).update(lease_owner=other, lease_expires_at=now_held.lease_expires_at)
    for path in (
        f"/desk/leads/{skipped.pk}/dial/",
        f"/desk/leads/{skipped.pk}/skip/",
        f"/desk/leads/{theirs.pk}/dial/",
    ):
        published.clear()
        assert agent_client.post(path, {"reason": "Bad data"}, headers=headers).status_code == 403
        (group, event), *more = [(g, e) for g, e in published if e["type"] == live.DESK_CHANGED]
        assert not more and group == live.tab_group(agent.pk, TAB)
        frame = fragments.desk_event(agent.pk, event)
        assert "That lead is no longer on your desk." in frame
        assert now_held.number in frame and theirs.number not in frame
    assert not Call.objects.filter(lead__in=[skipped, theirs]).exclude(state=CallState.SKIPPED).exists()
    # Without a tab (a script): the plain 403, nothing sent.
    published.clear()
    assert agent_client.post(f"/desk/leads/{skipped.pk}/dial/").status_code == 403
    assert published == []


def test_a_socket_draws_the_next_lead_before_the_lists_below_it(
    agent_client, agent, campaign, leads, published
):
    """The Save's desk event leaves a socket as two frames: the working area with the next lead
    (the lower panels on screen kept as they are), then the day, callbacks and recent calls,
    which show the call just saved."""
    call = _dispose_ready(agent_client, agent, campaign, leads)
    published.clear()
    final = campaign.dispositions.get(name="Interested")
    agent_client.post(
        "/desk/dispose/",
        {"call": call.pk, "disposition": final.pk, "notes": "Call me <b>never</b>"},
        headers={"X-Desk-Tab": TAB},
    )
    (event,) = [e for _, e in published if e["type"] == live.DESK_CHANGED]
    first, second = fragments.desk_event_frames(agent.pk, event)
    assert f"Ready to dial {leads[1].number}" in first
    assert '<div class="desk-lower" id="desk-lower" hx-preserve="true"></div>' in first
    assert 'id="desk-recent"' not in first and 'id="desk-day"' not in first
    assert 'id="desk-preview"' not in second
    for panel in ("desk-day", "desk-callbacks", "desk-recent"):
        assert f'id="{panel}" class="panel' in second and 'hx-swap-oob="true"' in second
    assert f'id="recent-{call.pk}"' in second and "Call me &lt;b&gt;never&lt;/b&gt;" in second
    # A lead drawn panel by panel splits the same way; an event drawing no lead is one frame,
    # and a frame with nothing in it is not sent.
    lead_drawn = live.desk_event([live.PREVIEW, live.CALL, live.DAY, live.RECENT])
    assert [f.count('hx-swap-oob="true"') for f in fragments.desk_event_frames(agent.pk, lead_drawn)] == [
        2,
        2,
    ]
    for panels in ([live.CALL, live.PRESENCE, live.DAY], [live.RECENT], [live.PREVIEW]):
        assert len(list(fragments.desk_event_frames(agent.pk, live.desk_event(panels)))) == 1
    # The lead's card never comes without its Dial button: a frame drawing the preview draws the
    # call panel too (Ready's presence event names the preview; the lease's own event comes after).
    (card,) = fragments.desk_event_frames(agent.pk, live.desk_event([live.PRESENCE, live.PREVIEW]))
    assert 'id="desk-call"' in card and f"Ready to dial {leads[1].number}" in card
    assert 'id="btn-dial"' in card and 'id="btn-dial" data-key="d"\n      hx-post=' in card
    # One frame where a socket starts: the whole desk.
    whole = fragments.desk_event(agent.pk, live.desk_event([live.MAIN]))
    assert "hx-preserve" not in whole.split('id="desk-lower"')[1][:40] and 'id="desk-recent"' in whole


def test_what_only_the_asking_tab_shows_still_goes_to_that_tab_alone(
    agent_client, agent, campaign, leads, published
):
    call = _dispose_ready(agent_client, agent, campaign, leads)
    published.clear()
    answer = agent_client.post("/desk/dispose/", {"call": call.pk}, headers={"X-Desk-Tab": TAB})
    assert answer.status_code == 204
    (group, event), *_ = [(g, e) for g, e in published if e["type"] == live.DESK_CHANGED]
    assert group == live.tab_group(agent.pk, TAB)
    assert event["form_errors"]
    assert not [g for g, e in published if g == live.agent_group(agent.pk)]
