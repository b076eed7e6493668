"""Platform-driven presence over the real emulators and the real ``run_streams`` (``live_stack``):
an agent state changed on the platform (a supervisor, through the emulators' control API) moves
a Ready agent to Not ready and the desk's socket is told why; the echoes of our own requests
(ready, not ready, a Huawei skip's saybusy + sayfree, a GWS RejectRecord) never move it; an
agent on a call stays on the call; after a GWS re-handshake the agent state is re-read."""

from __future__ import annotations

import contextlib
import time

import pytest

from agentdesk import services as desk
from agentdesk.models import Agent, Presence
from calls import services
from calls.models import CallEvent, CallState, Platform
from tests.calls.conftest import make_account, make_agent, make_campaign
from tests.calls.test_live import call_state, desk_socket, wait_until
from tests.calls.test_streams import offered_lead, streams_log_after
from tests.calls.wsclient import WSClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PLATFORM_WORDS = "on the platform"


@pytest.fixture(autouse=True)
def quiet_platforms():
    """After each test, let run_streams and the workers finish with the events still in flight
    (a call's last events, acknowledgements) before the database is flushed under them."""
    yield
    deadline = time.monotonic() + 15
    last, since = -1, time.monotonic()
    while time.monotonic() - since < 1.5 and time.monotonic() < deadline:
        count = CallEvent.objects.count()
        if count != last:
            last, since = count, time.monotonic()
        time.sleep(0.2)


def presence(agent: Agent) -> tuple[str, str]:
    return tuple(Agent.objects.values_list("presence", "presence_reason").get(pk=agent.pk))


def agent_events(account, state: str, **extra) -> int:
    return CallEvent.objects.filter(account=account, kind="agent", state=state, **extra).count()


def drain(ws: WSClient, quiet: float = 1.0) -> list[str]:
    """Every frame the desk has been sent so far (until ``quiet`` seconds pass without one)."""
    frames: list[str] = []
    with contextlib.suppress(TimeoutError):
        while True:
            frames.append(ws.recv(timeout=quiet))
    return frames


def desk_told(ws: WSClient, message: str, shown: str) -> None:
    """The desk gets one push carrying the note in plain words and the presence panel in its
    new state."""
    frames = ws.recv_until(lambda m: message in m, timeout=30)
    assert f'data-presence="{shown}"' in frames[-1]


def round_trip(live_stack, agent, *, not_ready, ready, said: str, reason: str) -> None:
    """A supervisor sets a Ready agent Not ready on the platform, then Ready again: the desk
    follows both and is told why each time."""
    ws = desk_socket(live_stack, agent)
    try:
        not_ready()
        desk_told(ws, said, "not_ready")
        assert presence(agent) == (Presence.NOT_READY, reason)
        ready()
        desk_told(ws, "Set Ready on the platform.", "ready")
        assert presence(agent) == (Presence.READY, "")
    finally:
        ws.close()


def end_and_dispose(agent, call) -> None:
    services.call_end(agent=agent, call=call)
    wait_until(lambda: call_state(call) == CallState.ENDED, timeout=45, what="ended")
    assert presence(agent)[0] == Presence.WRAP_UP
    disposition = call.campaign.dispositions.get(name="Interested")
    services.call_dispose(agent=agent, call=call, disposition=disposition, notes="ok")


# -- Huawei ----------------------------------------------------------------------------------------


def huawei_desk(emulator):
    """alice (workno 101) Ready on a Huawei campaign from the desk, with run_streams polling."""
    alice = make_agent("alice", 1)
    account = make_account(Platform.HUAWEI, emulator.url)
    campaign = make_campaign(account, "demo-preview")
    desk.agent_set_presence(agent=alice, presence=Presence.READY, campaign=campaign)
    # The loop is polling once it has recorded our sayfree's echo (and left the agent alone).
    wait_until(lambda: agent_events(account, "ready"), timeout=30, what="the event poll to start")
    assert presence(alice) == (Presence.READY, "")
    return alice, account, campaign


def force(emulator, state: str) -> None:
    emulator.control("POST", "huawei/agents/101/state", {"state": state})


def test_huawei_a_supervisors_not_ready_moves_a_ready_agent_and_tells_the_desk(live_stack, emulator):
    alice, _, _ = huawei_desk(emulator)
    round_trip(
        live_stack,
        alice,
        not_ready=lambda: force(emulator, "busy"),
        ready=lambda: force(emulator, "idle"),
        said="Set Not ready on the platform.",
        reason="Set on the platform",
    )


def test_huawei_our_own_ready_and_skip_echoes_leave_presence_alone(live_stack, emulator):
    alice, account, _ = huawei_desk(emulator)
    ws = desk_socket(live_stack, alice)
    try:
        # saybusy's echo reaches run_streams before the desk saves Not ready (held open here).
        services.platform_set_ready(agent=alice, account=account, ready=False, reason="Lunch")
        wait_until(lambda: agent_events(account, "not_ready") == 1, timeout=30, what="the saybusy echo")
        assert presence(alice) == (Presence.READY, "")
        services.platform_set_ready(agent=alice, account=account, ready=True)
        wait_until(lambda: agent_events(account, "ready") == 2, timeout=30, what="the sayfree echo")

        # A skip is saybusy + sayfree on Huawei: its Not ready echo must not take the agent out.
        emulator.control(
            "POST",
            "huawei/campaigns",
            {"records": [{"numbers": ["2125550100"]}, {"numbers": ["2125550101"]}]},
        )
        first = offered_lead(alice)
        desk.lead_skip(agent=alice, lead=first, reason="Bad data")
        second = offered_lead(alice, exclude=(first.pk,))  # comes after both echoes
        assert second.raw_number == "2125550101"
        assert agent_events(account, "not_ready") == 2 and agent_events(account, "ready") == 3
        assert presence(alice) == (Presence.READY, "")

        # Skipping while Not ready keeps the agent busy on the platform too (no sayfree).
        desk.agent_set_presence(
            agent=alice, presence=Presence.NOT_READY, reason="Lunch", campaign=second.campaign
        )
        desk.lead_skip(agent=alice, lead=second, reason="Bad data")
        wait_until(lambda: agent_events(account, "not_ready") == 4, timeout=30, what="the skip's echo")
        assert emulator.control("GET", "huawei/agents")["101"]["ready"] is False
        assert presence(alice) == (Presence.NOT_READY, "Lunch")
        assert agent_events(account, "not_ready", applied=True) == 0
        assert not any(PLATFORM_WORDS in f for f in drain(ws))
    finally:
        ws.close()


def test_huawei_an_agent_on_a_call_stays_on_it_and_is_not_ready_after_it(live_stack, emulator):
    alice, account, _ = huawei_desk(emulator)
    emulator.control("POST", "huawei/campaigns", {"records": [{"numbers": ["2125550100"]}]})
    lead = offered_lead(alice)
    call = services.call_dial(agent=alice, lead=lead)
    wait_until(lambda: call_state(call) == CallState.CONNECTED, timeout=45, what="connected")
    assert presence(alice)[0] == Presence.ON_CALL
    force(emulator, "busy")
    wait_until(lambda: agent_events(account, "not_ready"), timeout=30, what="the forced busy to arrive")
    assert presence(alice)[0] == Presence.ON_CALL
    end_and_dispose(alice, call)
    # The supervisor's Not ready holds once the call's life lets go.
    assert presence(alice) == (Presence.NOT_READY, "Set on the platform")


# -- Genesys ---------------------------------------------------------------------------------------


def genesys_desk(live_stack, emulator):
    """alice (agent1) Ready on a GWS campaign from the desk, with run_streams subscribed."""
    alice = make_agent("alice", 1)
    account = make_account(Platform.GENESYS, emulator.url)
    campaign = make_campaign(account, "DemoPreview")
    emulator.control("POST", "genesys/campaigns", {"name": "DemoPreview", "records": []})
    desk.agent_set_presence(agent=alice, presence=Presence.READY, campaign=campaign)

    def streaming() -> bool:
        # An empty campaign answers GetPreviewRecord with NoRecords on /v2/me/outbound: once one
        # is recorded for this account, this session's CometD client is subscribed.
        services.platform_request_offer(agent=alice, campaign=campaign)
        time.sleep(0.3)
        return CallEvent.objects.filter(account=account).exists()

    wait_until(streaming, timeout=30, what="the CometD subscription")
    assert presence(alice) == (Presence.READY, "")
    return alice, account, campaign


def load_record(emulator, *numbers: str) -> None:
    records = [{"phoneNumber": number} for number in numbers or ("2125550100",)]
    emulator.control("POST", "genesys/campaigns", {"name": "DemoPreview", "records": records})


def supervisor_sets(emulator, state: str, **extra) -> None:
    emulator.control("POST", "genesys/users/agent1/state", {"state": state, **extra})


def test_genesys_a_supervisors_not_ready_moves_a_ready_agent_and_tells_the_desk(live_stack, emulator):
    alice, _, _ = genesys_desk(live_stack, emulator)
    round_trip(
        live_stack,
        alice,
        not_ready=lambda: supervisor_sets(emulator, "NotReady", reason="Coaching"),
        ready=lambda: supervisor_sets(emulator, "Ready"),
        said="Set Not ready on the platform (Coaching).",
        reason="Coaching",
    )


def test_genesys_our_own_ready_not_ready_and_skip_echoes_leave_presence_alone(live_stack, emulator):
    alice, account, campaign = genesys_desk(live_stack, emulator)
    load_record(emulator, "2125550100", "2125550101")
    ws = desk_socket(live_stack, alice)
    try:
        ready, not_ready = agent_events(account, "ready"), agent_events(account, "not_ready")
        # NotReady's echo reaches run_streams before the desk saves Not ready (held open here).
        services.platform_set_ready(agent=alice, account=account, ready=False, reason="Lunch")
        wait_until(
            lambda: agent_events(account, "not_ready") == not_ready + 1, timeout=30, what="the NotReady echo"
        )
        assert presence(alice) == (Presence.READY, "")
        desk.agent_set_presence(agent=alice, presence=Presence.NOT_READY, reason="Break", campaign=campaign)
        desk.agent_set_presence(agent=alice, presence=Presence.READY, campaign=campaign)
        wait_until(lambda: agent_events(account, "ready") == ready + 1, timeout=30, what="the Ready echo")
        assert agent_events(account, "not_ready") == not_ready + 2
        assert presence(alice) == (Presence.READY, "")

        # A GWS skip holds the record back (RescheduleRecord): no agent state at all, the agent
        # stays Ready, and the next preview is the other record, never the skipped one.
        services.platform_request_offer(agent=alice, campaign=campaign)
        lead = offered_lead(alice)
        skipped = lead.offer["recordHandle"]
        desk.lead_skip(agent=alice, lead=lead, reason="Bad data")

        def history():
            return emulator.control("GET", "genesys/state")["records"][str(skipped)]["history"]

        wait_until(
            lambda: any(h.startswith("rescheduled:Campaign:") for h in history()),
            timeout=20,
            what="the skipped record held back",
        )
        services.platform_request_offer(agent=alice, campaign=campaign)
        following = offered_lead(alice, exclude=(lead.pk,))
        assert following.offer["recordHandle"] != skipped and following.number.endswith("2125550101")
        assert presence(alice) == (Presence.READY, "")
        assert CallEvent.objects.filter(account=account, kind="agent", applied=True).count() == 0
        assert not any(PLATFORM_WORDS in f for f in drain(ws))
    finally:
        ws.close()


def test_genesys_an_agent_on_a_call_stays_on_it_and_is_not_ready_after_it(live_stack, emulator):
    alice, account, campaign = genesys_desk(live_stack, emulator)
    load_record(emulator)
    services.platform_request_offer(agent=alice, campaign=campaign)
    call = services.call_dial(agent=alice, lead=offered_lead(alice))
    wait_until(lambda: call_state(call) == CallState.CONNECTED, timeout=45, what="connected")
    assert presence(alice)[0] == Presence.ON_CALL
    supervisor_sets(emulator, "NotReady", reason="Coaching")
    wait_until(lambda: agent_events(account, "not_ready"), timeout=30, what="the NotReady to arrive")
    assert presence(alice)[0] == Presence.ON_CALL
    end_and_dispose(alice, call)
    assert presence(alice) == (Presence.NOT_READY, "Set on the platform")


def test_genesys_a_change_missed_while_disconnected_is_read_after_the_rehandshake(live_stack, emulator):
    alice, account, _ = genesys_desk(live_stack, emulator)
    # The supervisor's change is made while its message is lost (as in a CometD gap).
    supervisor_sets(emulator, "NotReady", reason="Coaching", notify=False)
    time.sleep(2.0)  # a connect cycle or two: nothing may arrive
    assert presence(alice) == (Presence.READY, "")
    before_drop = live_stack.processes["streams"].log_path.stat().st_size
    assert emulator.control("POST", "genesys/drop-clients")["dropped"] >= 1
    wait_until(
        lambda: "re-reading calls and agent state over REST" in streams_log_after(live_stack, before_drop),
        timeout=30,
        what="a re-handshake",
    )
    wait_until(lambda: presence(alice)[0] == Presence.NOT_READY, timeout=20, what="the re-read state applied")
    assert presence(alice) == (Presence.NOT_READY, "Coaching")
    assert agent_events(account, "not_ready", source=services.REREAD_SOURCE, applied=True) == 1
