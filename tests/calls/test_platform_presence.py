"""Platform-driven presence, rule by rule (``calls.services`` "platform-driven presence"): agent
states the platforms report move an idle agent between Ready and Not ready; the echoes of our own
requests never do; the call's life keeps its hold on the presence. Signals are the adapters' own
(parsed from stored payloads); the live path over the emulators is in ``test_streams_presence``."""

from __future__ import annotations

import json
import uuid

import pytest
from django.utils import timezone

from agentdesk import services as desk
from agentdesk.models import Presence
from calls import services
from calls.models import CallEvent, CallState, Platform, PlatformSession
from calls.providers.base import AccountConfig, ProviderError, Signal
from calls.providers.genesys import GenesysProvider
from calls.providers.huawei import HuaweiProvider
from calls.services import life, sessions
from tests.calls.conftest import FIXTURES, make_account, make_campaign, make_live_call

NOWHERE = "http://127.0.0.1:9"
HUAWEI = HuaweiProvider(AccountConfig("huawei", NOWHERE))
GENESYS = GenesysProvider(AccountConfig("genesys", NOWHERE))


@pytest.fixture
def pushes(monkeypatch) -> list[tuple[str, str]]:
    """What the desk was told: (kind, message) for every presence push."""
    from calls.services import events

    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(
        events, "presence_set_by_platform", lambda agent_id, msg: sent.append(("platform", msg))
    )
    monkeypatch.setattr(events, "presence_changed", lambda agent_id: sent.append(("presence", "")))
    return sent


@pytest.fixture
def huawei(alice):
    account = make_account(Platform.HUAWEI, NOWHERE)
    PlatformSession.objects.create(agent=alice, account=account, status=PlatformSession.Status.SIGNED_IN)
    return account


def be(agent, presence: str, reason: str = "") -> None:
    agent.presence, agent.presence_reason = presence, reason
    agent.save(update_fields=["presence", "presence_reason"])


def huawei_event(event_type: str) -> Signal:
    (signal,) = HUAWEI.parse(
        {"eventType": event_type, "workNo": "101", "content": None, "x-agentdesk-receipt": uuid.uuid4().hex}
    )
    return signal


def genesys_state(state: str, reason: str = "") -> Signal:
    message = json.loads((FIXTURES / "genesys" / "device_state_not_ready.json").read_text())
    message["id"] = uuid.uuid4().hex
    user_state = message["data"]["devices"][0]["userState"]
    user_state["state"] = state
    user_state.pop("reason", None)
    if reason:
        user_state["reason"] = reason
    (signal,) = GENESYS.parse(message)
    return signal


def report(account, agent, signal: Signal, source: str = "stream") -> CallEvent:
    event = services.call_apply_signal(account=account, signal=signal, source=source, agent=agent)
    assert event is not None
    agent.refresh_from_db()
    return event


def ask(agent, account, state: str, echoes: tuple[str, ...] | None = None) -> None:
    services.platform_ask(agent=agent, account=account, state=state, echoes=echoes)


def test_an_external_not_ready_moves_a_ready_agent_and_says_why(
    alice, huawei, pushes, django_capture_on_commit_callbacks
):
    be(alice, Presence.READY)
    ask(alice, huawei, "ready")
    report(huawei, alice, huawei_event("AgentState_Ready"))  # our echo
    with django_capture_on_commit_callbacks(execute=True):
        event = report(huawei, alice, huawei_event("AgentState_Force_SetNotReady"))
    assert event.applied and event.kind == "agent" and event.state == "not_ready"
    assert (alice.presence, alice.presence_reason) == (Presence.NOT_READY, "Set on the platform")
    assert pushes == [("platform", "Set Not ready on the platform.")]


def test_external_changes_both_ways_follow_the_platform(
    alice, huawei, pushes, django_capture_on_commit_callbacks
):
    be(alice, Presence.READY)
    ask(alice, huawei, "ready")
    with django_capture_on_commit_callbacks(execute=True):
        report(huawei, alice, huawei_event("AgentState_Ready"))
        report(huawei, alice, huawei_event("AgentState_Force_SetNotReady"))
        # Back to what we had asked for, but the platform said otherwise in between: a change.
        report(huawei, alice, huawei_event("AgentState_Force_Ready"))
    assert alice.presence == Presence.READY and alice.presence_reason == ""
    assert [m for _, m in pushes] == ["Set Not ready on the platform.", "Set Ready on the platform."]


def test_the_echo_of_our_own_request_never_moves_the_agent(alice, huawei, pushes):
    # The desk asked for Not ready; the echo arrives before the desk saved the presence.
    be(alice, Presence.READY)
    ask(alice, huawei, "not_ready")
    event = report(huawei, alice, huawei_event("AgentState_SetNotReady_Success"))
    assert not event.applied and alice.presence == Presence.READY
    # A repeat of what we asked for is no change either.
    report(huawei, alice, huawei_event("AgentState_SetNotReady_Success"))
    assert alice.presence == Presence.READY and pushes == []


def test_a_skips_busy_then_free_echoes_leave_a_ready_agent_ready(alice, huawei, pushes):
    be(alice, Presence.READY)
    ask(alice, huawei, "ready")
    report(huawei, alice, huawei_event("AgentState_Ready"))
    ask(alice, huawei, "ready", HUAWEI.skip_echoes(stay_ready=True))
    for event_type in ("AgentState_SetNotReady_Success", "AgentState_Ready"):
        assert not report(huawei, alice, huawei_event(event_type)).applied
        assert alice.presence == Presence.READY
    assert pushes == []
    assert PlatformSession.objects.get(account=huawei).asked_echoes == []
    # Once the echoes are in, the next Not ready is somebody else's.
    assert report(huawei, alice, huawei_event("AgentState_Force_SetNotReady")).applied


def test_quick_asks_keep_their_echoes_in_order(alice, huawei, pushes):
    # Ready then Not ready at once: the Ready echo arrives after the Not ready was asked.
    be(alice, Presence.NOT_READY, "Lunch")
    ask(alice, huawei, "ready")
    ask(alice, huawei, "not_ready")
    report(huawei, alice, huawei_event("AgentState_Ready"))
    report(huawei, alice, huawei_event("AgentState_SetNotReady_Success"))
    assert (alice.presence, alice.presence_reason) == (Presence.NOT_READY, "Lunch") and pushes == []


@pytest.mark.parametrize("event_type", ["AgentState_Busy", "AgentState_Work", "AgentState_SetWork_Success"])
def test_talking_and_after_call_work_never_move_presence(alice, huawei, pushes, event_type):
    be(alice, Presence.READY)
    event = report(huawei, alice, huawei_event(event_type))
    assert event.kind == "agent" and not event.applied and alice.presence == Presence.READY


def test_offline_and_wrap_up_agents_are_left_alone(alice, huawei, pushes):
    for presence in (Presence.OFFLINE, Presence.WRAP_UP):
        be(alice, presence)
        report(huawei, alice, huawei_event("AgentState_Force_SetNotReady"))
        report(huawei, alice, huawei_event("AgentState_Force_Ready"))
        assert alice.presence == presence
    assert pushes == []


def test_on_a_call_the_calls_life_decides_then_the_platform_after_it(
    alice, huawei, pushes, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(life, "on_commit", lambda fn: None)  # no platform tasks here
    campaign = make_campaign(huawei)
    be(alice, Presence.READY)
    ask(alice, huawei, "ready")
    # Still ON_CALL-to-be: the dial was only requested, presence has not caught up.
    call = make_live_call(campaign, alice, state=CallState.DIAL_REQUESTED)
    assert not report(huawei, alice, huawei_event("AgentState_Force_SetNotReady")).applied
    assert alice.presence == Presence.READY
    services.call_advance(call=call, state=CallState.CONNECTED)
    alice.refresh_from_db()
    assert alice.presence == Presence.ON_CALL
    report(huawei, alice, huawei_event("AgentState_Force_SetNotReady"))
    assert alice.presence == Presence.ON_CALL
    services.call_advance(call=call, state=CallState.ENDED)
    report(huawei, alice, huawei_event("AgentState_Work"))  # the platform's after-call work
    alice.refresh_from_db()
    assert alice.presence == Presence.WRAP_UP
    with django_capture_on_commit_callbacks(execute=True):
        services.call_dispose(agent=alice, call=call, disposition=campaign.dispositions.first())
    alice.refresh_from_db()
    # The supervisor's Not ready, remembered through the call.
    assert (alice.presence, alice.presence_reason) == (Presence.NOT_READY, "Set on the platform")
    assert ("platform", "Set Not ready on the platform during your call.") in pushes


def test_after_a_call_an_agent_the_platform_left_ready_is_ready(alice, huawei, pushes):
    campaign = make_campaign(huawei)
    ask(alice, huawei, "ready")
    report(huawei, alice, huawei_event("AgentState_Ready"))
    call = make_live_call(campaign, alice, state=CallState.CONNECTED)
    services.call_advance(call=call, state=CallState.ENDED)
    report(huawei, alice, huawei_event("AgentState_Ready"))  # autoenteridle
    services.call_dispose(agent=alice, call=call, disposition=campaign.dispositions.first())
    alice.refresh_from_db()
    assert alice.presence == Presence.READY


def test_a_genesys_not_ready_carries_the_platforms_reason(alice, pushes, django_capture_on_commit_callbacks):
    account = make_account(Platform.GENESYS, NOWHERE)
    PlatformSession.objects.create(agent=alice, account=account, status=PlatformSession.Status.SIGNED_IN)
    be(alice, Presence.READY)
    ask(alice, account, "ready")
    report(account, alice, genesys_state("Ready"))
    for state in ("AfterCallWork", "LoggedOut"):
        assert not report(account, alice, genesys_state(state)).applied
    with django_capture_on_commit_callbacks(execute=True):
        report(account, alice, genesys_state("NotReady", "Coaching"))
    assert (alice.presence, alice.presence_reason) == (Presence.NOT_READY, "Coaching")
    assert pushes == [("platform", "Set Not ready on the platform (Coaching).")]


def test_a_reread_after_a_gap_forgets_the_echoes_lost_in_it(alice, huawei, pushes):
    be(alice, Presence.READY)
    ask(alice, huawei, "ready")  # its echo was lost while disconnected
    ask(alice, huawei, "not_ready")
    be(alice, Presence.NOT_READY, "Break")
    # The platform's current state, read over REST, says Ready: somebody set it after our ask.
    assert report(huawei, alice, huawei_event("AgentState_Ready"), source=services.REREAD_SOURCE).applied
    assert alice.presence == Presence.READY


def test_a_refused_request_withdraws_its_ask(alice, huawei, monkeypatch):
    be(alice, Presence.NOT_READY, "Break")
    ask(alice, huawei, "not_ready")
    before = PlatformSession.objects.get(account=huawei)

    def refuse(*args, **kwargs):
        raise ProviderError("The agent is not signed in.", code="100-006")

    monkeypatch.setattr(sessions, "_session_call", refuse)
    with pytest.raises(ProviderError):
        services.platform_set_ready(agent=alice, account=huawei, ready=True)
    after = PlatformSession.objects.get(account=huawei)
    assert (after.asked_state, after.asked_at, after.asked_echoes) == (
        before.asked_state,
        before.asked_at,
        before.asked_echoes,
    )
    # No stale "ready" echo is waiting to swallow a supervisor's Ready.
    assert report(huawei, alice, huawei_event("AgentState_Force_Ready")).applied


def test_a_platform_change_between_our_request_and_our_save_wins(alice, huawei, monkeypatch, pushes):
    """The desk asks for Not ready; the platform echoes it, then a supervisor sets Ready, all
    before the desk saves: the desk must not save Not ready over the platform's word."""
    campaign = make_campaign(huawei)
    be(alice, Presence.READY)

    def platform(agent, account, op, *args):
        assert op == "set_not_ready"
        report(account, agent, huawei_event("AgentState_SetNotReady_Success"))
        report(account, agent, huawei_event("AgentState_Force_Ready"))

    monkeypatch.setattr(sessions, "_session_call", platform)
    desk.agent_set_presence(agent=alice, presence=Presence.NOT_READY, reason="Lunch", campaign=campaign)
    alice.refresh_from_db()
    assert alice.presence == Presence.READY


def test_a_platform_change_before_our_requests_echo_is_overtaken_by_it(alice, huawei, monkeypatch, pushes):
    """The platform took a supervisor's Not ready first, then our Ready: Ready is its last word."""
    campaign = make_campaign(huawei)
    be(alice, Presence.NOT_READY, "Lunch")

    def platform(agent, account, op, *args):
        assert op == "set_ready"
        report(account, agent, huawei_event("AgentState_Force_SetNotReady"))
        report(account, agent, huawei_event("AgentState_Ready"))

    monkeypatch.setattr(sessions, "_session_call", platform)
    desk.agent_set_presence(agent=alice, presence=Presence.READY, campaign=campaign)
    alice.refresh_from_db()
    assert alice.presence == Presence.READY


def test_platform_state_is_recorded_with_when(alice, huawei):
    before = timezone.now()
    report(huawei, alice, huawei_event("AgentState_Force_SetNotReady"))
    session = PlatformSession.objects.get(account=huawei)
    assert session.platform_state == "not_ready" and session.platform_state_at >= before
