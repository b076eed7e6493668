"""The reconciler keeps a call's life truthful for hours (calls.services.reconcile): a quiet call
is asked about where the platform can be asked, a conversation is never "lost" for being long,
and a connected call whose final signal never came ends as ended, never failed. Huawei and
Genesys calls are real calls on the emulators (real HTTP); every decision is recorded with its
reason."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from calls import services
from calls.models import Call, CallEvent, CallState, DialAttempt, Platform
from calls.providers.base import DialRequest
from tests.calls.conftest import FIXTURES, lease_lead, make_account, make_campaign

QUIET = timedelta(minutes=15)


def live_call(
    campaign,
    agent,
    *,
    state=CallState.CONNECTED,
    platform_call_id="",
    quiet=timedelta(hours=1),
    connected=timedelta(hours=1),
    number="+12125550100",
) -> Call:
    """A call on the desk, quiet for ``quiet``, connected ``connected`` ago (None: never)."""
    now = timezone.now()
    lead = lease_lead(campaign, agent, number=number)
    call = Call.objects.create(
        lead=lead,
        campaign=campaign,
        agent=agent,
        account=campaign.account,
        state=state,
        number=lead.number,
        platform_call_id=platform_call_id,
    )
    Call.objects.filter(pk=call.pk).update(
        state_changed_at=now - quiet,
        connected_at=now - connected if connected is not None else None,
        created_at=now - max(quiet, connected or quiet) - timedelta(seconds=30),
    )
    DialAttempt.objects.create(call=call, key=f"dial:{call.key}", tries=1, status=DialAttempt.Status.PLACED)
    call.refresh_from_db()
    return call


def decisions(call) -> list[tuple[str, str]]:
    return [
        (e.payload["action"], e.payload["reason"])
        for e in CallEvent.objects.filter(call=call, source="reconcile").order_by("id")
    ]


def another_quiet_spell(call) -> None:
    """Time passes: the call's last look was a quiet spell ago."""
    Call.objects.filter(pk=call.pk).update(reconciled_at=timezone.now() - QUIET - timedelta(seconds=1))


def test_a_long_conversation_on_a_platform_that_cannot_be_asked_is_kept_for_hours(ryng_campaign, alice):
    call = live_call(ryng_campaign, alice, connected=timedelta(hours=1))
    for _ in range(3):  # beat runs every minute; each quiet spell looks once
        assert services.calls_reconcile(stale_after=QUIET) == 0
        assert services.calls_reconcile(stale_after=QUIET) == 0  # looked at: left alone till the next spell
        another_quiet_spell(call)
    call.refresh_from_db()
    assert call.state == CallState.CONNECTED and call.failure_reason == ""
    assert [action for action, _ in decisions(call)] == ["kept"] * 3
    assert "under the maximum length" in decisions(call)[0][1]


def test_past_the_maximum_length_a_connected_call_ends_never_fails(ryng_campaign, alice):
    call = live_call(ryng_campaign, alice, connected=timedelta(hours=5))
    assert services.calls_reconcile(stale_after=QUIET, max_call=timedelta(hours=4)) == 1
    call.refresh_from_db()
    assert call.state == CallState.ENDED and call.failure_reason == "" and call.ended_at is not None
    [(action, reason)] = decisions(call)
    assert action == "ended" and "over the maximum call length" in reason
    alice.refresh_from_db()
    assert alice.presence == "wrap_up"  # the agent disposes it as the conversation it was


def test_a_call_that_never_connected_is_lost(ryng_campaign, alice):
    call = live_call(ryng_campaign, alice, state=CallState.AGENT_RINGING, connected=None)
    fresh = live_call(
        ryng_campaign,
        alice,
        state=CallState.DIALING,
        connected=None,
        quiet=timedelta(minutes=1),
        number="+12125550109",
    )
    assert services.calls_reconcile(stale_after=QUIET) == 1
    call.refresh_from_db()
    fresh.refresh_from_db()
    assert call.state == CallState.FAILED and call.failure_reason == Call.FailureReason.LOST
    assert fresh.state == CallState.DIALING
    [(action, reason)] = decisions(call)
    assert action == "lost" and "no signal past" in reason
    assert services.calls_reconcile(stale_after=QUIET) == 0


@pytest.mark.django_db(transaction=True)
def test_genesys_a_live_call_is_kept_through_several_runs_and_ends_when_the_platform_ends_it(emulator, alice):
    account = make_account(Platform.GENESYS, emulator.url)
    campaign = make_campaign(account, "Spring")
    services.platform_sign_in(agent=alice, account=account)
    emulator.control("POST", "outcomes", {"platform": "genesys", "result": "answer", "talk_seconds": None})
    provider, session = services.provider_for(agent=alice, account=account)
    login = services.agent_login(agent=alice, account=account)
    placed = provider.dial(DialRequest(agent=login, number="+14155550188"))
    services.session_save_state(session, provider)
    wait_until(lambda: provider.call_live(login, placed.call_id))
    call = live_call(campaign, alice, platform_call_id=placed.call_id, number="+14155550188")

    for _ in range(3):
        assert services.calls_reconcile(stale_after=QUIET) == 0
        another_quiet_spell(call)
    call.refresh_from_db()
    assert call.state == CallState.CONNECTED
    assert decisions(call) == [("kept", "still live on the platform")] * 3

    provider.hang_up(login, placed.call_id)
    wait_until(lambda: not provider.call_live(login, placed.call_id))
    assert services.calls_reconcile(stale_after=QUIET) == 1
    call.refresh_from_db()
    assert call.state == CallState.ENDED and call.failure_reason == ""
    assert decisions(call)[-1] == (
        "ended",
        "the platform no longer has the call; its final signal never came",
    )


@pytest.mark.django_db(transaction=True)
def test_huawei_a_live_call_is_kept_and_ends_when_the_platform_ends_it(emulator, alice):
    emulator.huawei_quiet()
    account = make_account(Platform.HUAWEI, emulator.url)
    campaign = make_campaign(account, "demo-preview")
    number = "88889047"
    services.platform_sign_in(agent=alice, account=account)
    services.platform_set_ready(agent=alice, account=account, ready=True)
    provider, session = services.provider_for(agent=alice, account=account)
    login = services.agent_login(agent=alice, account=account)
    emulator.control("POST", "outcomes", {"number": number, "result": "answer", "talk_seconds": None})
    emulator.control("POST", "huawei/campaigns", {"records": [{"numbers": [number], "callData": "c"}]})
    offer = next_offer(provider, login)
    placed = provider.dial(DialRequest(agent=login, number=number, offer=offer))
    services.session_save_state(session, provider)
    wait_until(lambda: provider.call_live(login, placed.call_id))
    call = live_call(campaign, alice, platform_call_id=placed.call_id, number="+8688889047")

    assert services.calls_reconcile(stale_after=QUIET) == 0
    another_quiet_spell(call)
    assert services.calls_reconcile(stale_after=QUIET) == 0
    assert decisions(call) == [("kept", "still live on the platform")] * 2
    # The call ends on the platform (its signal never reaches us: nobody polls here).
    provider.hang_up(login, placed.call_id)
    wait_until(lambda: not provider.call_live(login, placed.call_id))
    another_quiet_spell(call)
    assert services.calls_reconcile(stale_after=QUIET) == 1
    call.refresh_from_db()
    assert call.state == CallState.ENDED and call.failure_reason == ""


def next_offer(provider, login, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = provider.poll_event(login, timeout=2)
        for signal in provider.parse(event) if event else []:
            if signal.kind == "offer":
                return dict(signal.data)
    raise AssertionError("no offer")


def wait_until(check, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("never happened")
        time.sleep(0.1)


def test_the_admin_shows_each_decision_with_its_reason(ryng_campaign, alice, client):
    from django.contrib.auth import get_user_model

    call = live_call(ryng_campaign, alice, state=CallState.DIALING, connected=None)
    services.calls_reconcile(stale_after=QUIET)
    admin = get_user_model().objects.create_superuser("root", password="pw")
    client.force_login(admin)
    page = client.get(f"/admin/calls/call/{call.pk}/change/").content.decode()
    assert "lost: no signal past dialing for 60 min" in page


def test_a_plain_500_to_a_ryng_dial_is_told_in_seconds_and_a_late_callback_still_applies(
    client, emulator, ryng_lead, alice, monkeypatch
):
    """Ryng answers the dial with a plain 500 (not its envelope): the call may have gone out and
    Ryng cannot be asked. The desk hears so at the next run (seconds), in plain words with what
    to do; when the platform's connect callback comes after all, it applies."""
    from calls.services import events, life
    from calls.services.placing import DIAL_IN_DOUBT

    monkeypatch.setattr(life, "on_commit", lambda fn: None)  # the test runs the task's service
    notes: list[tuple[int, str, str]] = []
    monkeypatch.setattr(
        events, "dial_note", lambda agent_id, message, code="": notes.append((agent_id, message, code))
    )
    call = services.call_dial(agent=alice, lead=ryng_lead)
    emulator.control(
        "POST", "faults", {"kind": "500", "platform": "ryng", "path": "/rest-api/v1/preview/call", "count": 1}
    )
    first = services.call_place(call_id=call.pk)
    assert first.status == "retry" and first.error.ambiguous
    second = services.call_place(call_id=call.pk)  # the task's retry, seconds later
    assert second.status == "waiting"
    assert notes == [(alice.pk, DIAL_IN_DOUBT, "500")]
    assert "press End" in DIAL_IN_DOUBT
    assert emulator.requests(platform="ryng", path="/rest-api/v1/preview/call")[-1]["status"] == 500
    call.refresh_from_db()
    assert call.state == CallState.DIAL_REQUESTED  # still on the desk: End is offered

    body = (FIXTURES / "ryng" / "connect_callback.json").read_text()
    connect = call.account.callback_urls(call=str(call.key))["connect"]
    path = connect.split("://", 1)[1].split("/", 1)[1]
    assert client.post(f"/{path}", data=body, content_type="application/json").status_code == 200
    call.refresh_from_db()
    assert call.state == CallState.AGENT_CONNECTED
    assert DialAttempt.objects.get(call=call).status == DialAttempt.Status.PLACED


def test_ryngs_could_not_start_is_retried_and_said_on_the_desk(
    emulator, ryng_lead, alice, monkeypatch, settings
):
    from calls.services import events, life

    monkeypatch.setattr(life, "on_commit", lambda fn: None)
    notes: list[tuple[str, str]] = []
    monkeypatch.setattr(events, "dial_note", lambda agent_id, message, code="": notes.append((message, code)))
    emulator.control("POST", "outcomes", {"number": ryng_lead.number, "result": "error"})
    call = services.call_dial(agent=alice, lead=ryng_lead)
    outcome = services.call_place(call_id=call.pk)
    assert outcome.status == "retry" and not outcome.error.ambiguous
    assert notes == [
        ("The platform could not start the call: Ryng could not start the call. Trying again.", "500")
    ]
    assert settings.CALLS_DIAL_MAX_RETRIES == 3  # few and short: about 8 s of backoff in all
