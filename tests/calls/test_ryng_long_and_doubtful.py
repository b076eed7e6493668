"""Ryng with real processes (``live_stack``: the Celery worker dials, Ryng's callbacks come back
through daphne, the desk listens on its WebSocket):

- a conversation connected past the old 15-minute threshold (its timestamps moved back an hour)
  stays connected through several reconciler runs, End still offered, and ends normally when
  Ryng's terminal callback comes;
- a plain HTTP 500 to the worker's dial: the desk says in plain words, within seconds, that the
  call may or may not have gone out and what to do; Ryng's late connect callback still applies.
"""

from __future__ import annotations

import html
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from calls import services
from calls.models import Call, CallState, DialAttempt, Platform
from calls.services.placing import DIAL_IN_DOUBT
from tests.calls.conftest import FIXTURES, lease_lead, make_account, make_agent, make_campaign
from tests.calls.test_live import DIAL_PATH, call_state, desk_socket, dials, wait_until
from tests.calls.test_reconcile import QUIET, another_quiet_spell, decisions

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def ryng_desk(emulator):
    alice = make_agent("alice", 1)
    campaign = make_campaign(make_account(Platform.RYNG, emulator.url), "595")
    return alice, lease_lead(campaign, alice)


def test_ryng_a_call_connected_past_the_old_threshold_is_kept_and_ends_on_ryngs_terminal_callback(
    live_stack, emulator
):
    alice, lead = ryng_desk(emulator)
    emulator.control("POST", "outcomes", {"number": lead.number, "result": "answer", "talk_seconds": None})
    ws = desk_socket(live_stack, alice)
    try:
        call = services.call_dial(agent=alice, lead=lead)
        wait_until(lambda: call_state(call) == CallState.CONNECTED, timeout=45, what="connected")
        # An hour into the conversation, quiet all along: the old rule failed it at 15 minutes.
        hour_ago = timezone.now() - timedelta(hours=1)
        Call.objects.filter(pk=call.pk).update(connected_at=hour_ago, state_changed_at=hour_ago)
        for _ in range(3):
            assert services.calls_reconcile(stale_after=QUIET) == 0
            another_quiet_spell(call)
        assert call_state(call) == CallState.CONNECTED
        assert [action for action, _ in decisions(call)] == ["kept"] * 3
        [up] = emulator.control("GET", "ryng/calls")
        assert up["state"] == "connected"
        ws.recv_until(lambda frame: 'id="desk-call"' in frame, timeout=20)

        # The customer hangs up: Ryng's terminal callback ends the call as a conversation.
        emulator.control("POST", f"ryng/calls/{up['callID']}/hangup")
        frames = ws.recv_until(lambda frame: 'data-state="ended"' in frame, timeout=30)
    finally:
        ws.close()
    call.refresh_from_db()
    assert call.state == CallState.ENDED and call.failure_reason == "" and call.ended_at is not None
    assert f'data-call-id="{call.pk}"' in frames[-1]
    assert call.connected_at is not None and call.talk_seconds is not None
    assert len(dials(emulator)) == 1


def test_a_plain_500_to_the_workers_ryng_dial_is_said_on_the_desk_and_a_late_connect_still_applies(
    live_stack, emulator
):
    alice, lead = ryng_desk(emulator)
    emulator.control("POST", "faults", {"kind": "500", "platform": "ryng", "path": DIAL_PATH, "count": 1})
    ws = desk_socket(live_stack, alice)
    try:
        call = services.call_dial(agent=alice, lead=lead)
        # The worker's dial got a bare 500: placed or not, Ryng cannot be asked. The desk says so.
        frames = ws.recv_until(lambda frame: html.escape(DIAL_IN_DOUBT) in frame, timeout=30)
        assert 'id="desk-alert"' in frames[-1]
        assert emulator.requests(platform="ryng", path=DIAL_PATH)[-1]["status"] == 500
        assert call_state(call) == CallState.DIAL_REQUESTED  # still on the desk: End is offered

        # Ryng had placed it after all: its connect callback, late, still moves the call.
        body = (FIXTURES / "ryng" / "connect_callback.json").read_text()
        connect = call.account.callback_urls(call=str(call.key))["connect"]
        answer = requests.post(connect, data=body, headers={"Content-Type": "application/json"}, timeout=10)
        assert answer.status_code == 200
        wait_until(
            lambda: call_state(call) == CallState.AGENT_CONNECTED, timeout=30, what="the late connect applied"
        )
        frames = ws.recv_until(lambda frame: 'data-state="agent_connected"' in frame, timeout=30)
        assert f'data-call-id="{call.pk}"' in frames[-1]
    finally:
        ws.close()
    assert DialAttempt.objects.get(call=call).status == DialAttempt.Status.PLACED
