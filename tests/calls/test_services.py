"""The calls engine's services: the forward-only state machine, duplicate and out-of-order
signals, dial-time checks, dispositions, and the at-most-once dial against the Ryng emulator."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone

from calls import selectors, services
from calls.models import Call, CallEvent, CallState, DialAttempt
from calls.providers.base import Signal
from campaigns.models import Campaign, Disposition, DoNotCall, Lead
from tests.calls.conftest import lease_lead

pytestmark = pytest.mark.django_db


def _call(lead, agent, state=CallState.DIAL_REQUESTED, platform_call_id="") -> Call:
    return Call.objects.create(
        lead=lead,
        campaign=lead.campaign,
        agent=agent,
        account=lead.campaign.account,
        state=state,
        number=lead.number,
        platform_call_id=platform_call_id,
        state_changed_at=timezone.now(),
    )


def _signal(call_id: str, state: str, key: str, **data) -> Signal:
    return Signal(kind="call", key=key, call_id=call_id, state=state, data=data)


def test_dial_requires_the_lease(ryng_lead, bob):
    with pytest.raises(services.Refusal, match="not leased"):
        services.call_dial(agent=bob, lead=ryng_lead)


def test_dial_creates_a_requested_call_with_its_checks(ryng_lead, alice):
    call = services.call_dial(agent=alice, lead=ryng_lead)
    assert call.state == CallState.DIAL_REQUESTED
    assert call.compliance["click"]["ok"] is True
    assert {c["name"] for c in call.compliance["click"]["checks"]} == {
        "campaign",
        "window",
        "dnc",
        "attempts",
    }
    ryng_lead.refresh_from_db()
    assert ryng_lead.status == Lead.Status.IN_PROGRESS
    with pytest.raises(services.Refusal, match="already on a call"):
        services.call_dial(agent=alice, lead=lease_lead(ryng_lead.campaign, alice, "+12125550101"))


def test_dial_refused_for_dnc_and_spent_attempts(ryng_lead, alice):
    DoNotCall.objects.create(number=ryng_lead.number)
    with pytest.raises(services.Refusal, match="do-not-call") as refused:
        services.call_dial(agent=alice, lead=ryng_lead)
    assert refused.value.code == "compliance_dnc"
    other = lease_lead(ryng_lead.campaign, alice, "+12125550102", attempts=3)
    with pytest.raises(services.Refusal, match="attempts"):
        services.call_dial(agent=alice, lead=other)
    assert not Call.objects.exists()


def test_a_lead_on_the_desk_is_not_dialed_once_its_campaign_is_paused(ryng_lead, alice):
    Campaign.objects.filter(pk=ryng_lead.campaign_id).update(status=Campaign.Status.PAUSED)
    ryng_lead.refresh_from_db()
    with pytest.raises(services.Refusal, match="is paused: no calls until it is resumed") as refused:
        services.call_dial(agent=alice, lead=Lead.objects.get(pk=ryng_lead.pk))
    assert refused.value.code == "compliance_campaign"
    assert not Call.objects.exists()


def test_state_machine_moves_forward_only(ryng_lead, alice):
    call = _call(ryng_lead, alice, CallState.CONNECTED)
    assert services.call_advance(call=call, state=CallState.AGENT_RINGING) is False
    assert services.call_advance(call=call, state=CallState.CONNECTED) is False
    assert services.call_advance(call=call, state=CallState.ENDED) is True
    assert services.call_advance(call=call, state=CallState.FAILED) is False  # same rank as ended
    call.refresh_from_db()
    assert call.state == CallState.ENDED and call.ended_at is not None


def test_duplicate_signal_is_a_no_op(ryng_lead, alice):
    call = _call(ryng_lead, alice, CallState.DIALING, "131")
    account = call.account
    first = services.call_apply_signal(
        account=account, signal=_signal("131", CallState.AGENT_CONNECTED, "k1"), source="callback"
    )
    assert first is not None and first.applied
    again = services.call_apply_signal(
        account=account, signal=_signal("131", CallState.AGENT_CONNECTED, "k1"), source="callback"
    )
    assert again is None
    assert CallEvent.objects.filter(key="k1").count() == 1
    call.refresh_from_db()
    assert call.state == CallState.AGENT_CONNECTED


def test_out_of_order_signal_never_moves_back(ryng_lead, alice):
    call = _call(ryng_lead, alice, CallState.DIALING, "131")
    account = call.account
    services.call_apply_signal(
        account=account,
        # The adapter's normalized keys (calls.providers.base.TALK_SECONDS, RECORDING_URL).
        signal=_signal(
            "131", CallState.ENDED, "end", talk_seconds=42, recording_url="https://r.example/x.mp3"
        ),
        source="callback",
    )
    late = services.call_apply_signal(
        account=account, signal=_signal("131", CallState.CONNECTED, "late"), source="callback"
    )
    assert late is not None and late.applied is False  # recorded, not applied
    call.refresh_from_db()
    assert call.state == CallState.ENDED
    assert call.talk_seconds == 42 and call.recording_url.endswith("x.mp3")


def test_signal_for_an_unknown_call_is_kept_unapplied(ryng_account):
    event = services.call_apply_signal(
        account=ryng_account, signal=_signal("999", CallState.CONNECTED, "u1"), source="callback"
    )
    assert event is not None and event.call is None and not event.applied


def test_failed_signal_carries_the_reason(ryng_lead, alice):
    call = _call(ryng_lead, alice, CallState.CUSTOMER_RINGING, "7")
    services.call_apply_signal(
        account=call.account,
        signal=Signal(kind="call", key="f", call_id="7", state=CallState.FAILED, reason="busy"),
        source="callback",
    )
    call.refresh_from_db()
    assert call.state == CallState.FAILED and call.failure_reason == "busy"
    assert call.failure_message == "Busy"


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (Disposition.Outcome.FINAL, Lead.Status.DONE),
        (Disposition.Outcome.RETRY, Lead.Status.PENDING),
        (Disposition.Outcome.DNC, Lead.Status.DNC),
    ],
)
def test_dispose_applies_the_outcome_and_releases_the_lease(ryng_lead, alice, outcome, status):
    call = _call(ryng_lead, alice, CallState.ENDED, "131")
    disposition = ryng_lead.campaign.dispositions.get(outcome=outcome)
    services.call_dispose(agent=alice, call=call, disposition=disposition, notes="spoke briefly")
    call.refresh_from_db()
    ryng_lead.refresh_from_db()
    assert call.state == CallState.DISPOSED and call.notes == "spoke briefly"
    assert ryng_lead.status == status and ryng_lead.lease_owner is None
    assert ryng_lead.last_disposition == disposition.name
    if outcome == Disposition.Outcome.RETRY:
        assert ryng_lead.next_attempt_at > timezone.now()
    if outcome == Disposition.Outcome.DNC:
        assert DoNotCall.objects.filter(number=ryng_lead.number).exists()


def test_dispose_callback_needs_a_future_time(ryng_lead, alice):
    call = _call(ryng_lead, alice, CallState.ENDED, "131")
    callback = ryng_lead.campaign.dispositions.get(outcome=Disposition.Outcome.CALLBACK)
    with pytest.raises(services.Refusal, match="callback time"):
        services.call_dispose(agent=alice, call=call, disposition=callback)
    at = timezone.now() + timedelta(hours=2)
    services.call_dispose(agent=alice, call=call, disposition=callback, callback_at=at)
    ryng_lead.refresh_from_db()
    assert ryng_lead.status == Lead.Status.CALLBACK and ryng_lead.next_attempt_at == at


def test_dispose_refused_while_live_and_for_others(ryng_lead, alice, bob):
    call = _call(ryng_lead, alice, CallState.CONNECTED, "131")
    final = ryng_lead.campaign.dispositions.get(outcome=Disposition.Outcome.FINAL)
    with pytest.raises(services.Refusal, match="End the call"):
        services.call_dispose(agent=alice, call=call, disposition=final)
    with pytest.raises(services.Refusal, match="not yours"):
        services.call_dispose(agent=bob, call=call, disposition=final)


def test_call_gate(ryng_lead, alice, bob):
    call = _call(ryng_lead, alice)
    assert selectors.call_get_for_agent(agent=alice, call_id=call.pk) == call
    with pytest.raises(PermissionDenied):
        selectors.call_get_for_agent(agent=bob, call_id=call.pk)
    with pytest.raises(Http404):
        selectors.call_get_for_agent(agent=alice, call_id=call.pk + 1000)
    assert selectors.live_call_for_agent(agent=alice) == call
    assert selectors.live_call_for_agent(agent=bob) is None


def test_end_before_the_dial_went_out_ends_locally(ryng_lead, alice):
    call = services.call_dial(agent=alice, lead=ryng_lead)
    services.call_end(agent=alice, call=call)
    call.refresh_from_db()
    assert call.state == CallState.ENDED
    assert services.call_place(call_id=call.pk).status == "skipped"


def test_end_while_a_refused_dial_waits_for_its_retry_ends_it_and_the_retry_sends_nothing(
    ryng_lead, alice, emulator
):
    """make shift found it: a clean refusal (500) left the dial waiting for its retry; the agent's
    End then waited for a platform call id that could never come, and the reconciler re-dialed
    the call the agent had ended."""
    # Ryng's own "Failed to start call." (a clean refusal; a bare 500 would leave it in doubt).
    emulator.control("POST", "outcomes", {"number": ryng_lead.number, "result": "error"})
    call = services.call_dial(agent=alice, lead=ryng_lead)
    assert services.call_place(call_id=call.pk).status == "retry"
    assert DialAttempt.objects.get(call=call).status == DialAttempt.Status.PENDING
    services.call_end(agent=alice, call=call)
    call.refresh_from_db()
    assert call.state == CallState.ENDED
    assert services.call_place(call_id=call.pk).status == "skipped"  # the retry
    assert len(emulator.requests(platform="ryng", path="/rest-api/v1/preview/call")) == 1


def test_end_while_a_dial_is_in_doubt_asks_the_platform(ryng_lead, alice, emulator):
    call = services.call_dial(agent=alice, lead=ryng_lead)
    DialAttempt.objects.create(call=call, key=f"dial:{call.key}", tries=1)  # sent, no answer yet
    services.call_end(agent=alice, call=call)
    call.refresh_from_db()
    assert call.state == CallState.DIAL_REQUESTED  # end_call (after commit) decides, not us


def test_place_call_dials_once_and_a_rerun_does_not_dial_again(ryng_lead, alice, emulator):
    call = services.call_dial(agent=alice, lead=ryng_lead)
    assert services.call_place(call_id=call.pk).status == "placed"
    call.refresh_from_db()
    assert call.state == CallState.DIALING and call.platform_call_id and call.platform_log_id
    assert call.dial_attempt.status == DialAttempt.Status.PLACED
    ryng_lead.refresh_from_db()
    assert ryng_lead.attempts == 1
    # A redelivered task: nothing is sent.
    assert services.call_place(call_id=call.pk).status == "skipped"
    assert len(emulator.requests(platform="ryng", path="/rest-api/v1/preview/call")) == 1
    dial = emulator.requests(platform="ryng", path="/rest-api/v1/preview/call")[0]
    assert f"call={call.key}" in dial["body"]  # our call key rides on the callback URLs


def test_place_call_in_doubt_on_ryng_waits_instead_of_redialing(ryng_lead, alice, emulator):
    call = services.call_dial(agent=alice, lead=ryng_lead)
    # As if a worker died after committing the attempt and sending the request.
    DialAttempt.objects.create(call=call, key=f"dial:{call.key}", tries=1)
    assert services.call_place(call_id=call.pk).status == "waiting"
    assert emulator.requests(platform="ryng", path="/rest-api/v1/preview/call") == []
    assert DialAttempt.objects.get(call=call).status == DialAttempt.Status.AMBIGUOUS


def test_retryable_failure_then_give_up_fails_the_call_with_the_reason(ryng_lead, alice, emulator):
    emulator.control("POST", "outcomes", {"platform": "ryng", "result": "error", "count": 2})
    call = services.call_dial(agent=alice, lead=ryng_lead)
    first = services.call_place(call_id=call.pk)
    assert first.status == "retry" and first.error.code == "500"
    # A clean refusal may be sent again (no doubt: Ryng said the call did not start).
    second = services.call_place(call_id=call.pk)
    assert second.status == "retry"
    assert len(emulator.requests(platform="ryng", path="/rest-api/v1/preview/call")) == 2
    services.call_place_give_up(call_id=call.pk, error=second.error)
    call.refresh_from_db()
    assert call.state == CallState.FAILED and call.failure_reason == Call.FailureReason.PLATFORM_ERROR
    assert "could not start" in call.failure_message


def test_dial_time_check_runs_again_in_the_task(ryng_lead, alice, emulator):
    call = services.call_dial(agent=alice, lead=ryng_lead)
    DoNotCall.objects.create(number=ryng_lead.number)
    assert services.call_place(call_id=call.pk).status == "failed"
    call.refresh_from_db()
    assert call.state == CallState.FAILED and call.failure_reason == Call.FailureReason.COMPLIANCE
    assert call.compliance["dial"]["ok"] is False
    assert emulator.requests(platform="ryng", path="/rest-api/v1/preview/call") == []


def test_talk_time_arriving_after_the_disposition_is_counted_and_announced(ryng_lead, alice, monkeypatch):
    """Ryng's terminal callback can land after the agent's Save: its talk time is kept, and the
    campaign's figures (the wallboard) and the agent's day and recent calls are told, or they show
    a talk time of 0:00 until something else moves."""
    from agentdesk import live

    call = _call(ryng_lead, alice, CallState.DISPOSED, "131")
    sent = []
    monkeypatch.setattr(live, "emit", lambda group, event: sent.append((group, event)))
    services.call_apply_signal(
        account=call.account,
        signal=_signal("131", CallState.ENDED, "late", talk_seconds=82),
        source="callback",
    )
    call.refresh_from_db()
    assert call.state == CallState.DISPOSED and call.talk_seconds == 82
    assert (live.WALLBOARD, {"type": live.CAMPAIGN_CALLS, "campaign": call.campaign_id}) in sent
    desk = [event for group, event in sent if group == live.agent_group(alice.pk)]
    assert desk and {live.DAY, live.RECENT} <= set(desk[0]["panels"])
