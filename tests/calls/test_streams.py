"""run_streams against the emulators (through ``live_stack``): Huawei and Genesys full paths
(sign in -> offer -> dial -> states -> end -> dispose), Huawei GUID rotation, and the Genesys
re-handshake after the emulator drops its CometD clients."""

from __future__ import annotations

import time

import pytest

from calls import services
from calls.models import Call, CallState, Platform, PlatformSession
from campaigns.models import Lead
from tests.calls.conftest import make_account, make_agent, make_campaign
from tests.calls.test_live import call_state, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def offered_lead(agent, exclude: tuple[int, ...] = ()) -> Lead:
    return wait_until(
        lambda: (
            Lead.objects.filter(source=Lead.Source.PLATFORM, lease_owner=agent)
            .exclude(pk__in=exclude)
            .first()
        ),
        timeout=30,
        what="a platform offer to become a lead",
    )


def request_offer_once_listening(agent, campaign) -> None:
    """Ask GWS for the next preview once run_streams listens to this session: the product asks only
    then (an offer pushed to nobody is lost) and answers False before. A "subscribed" log line is not
    enough: the previous test's loop, whose session is gone, can still be subscribing as the same
    platform agent."""
    wait_until(
        lambda: services.platform_request_offer(agent=agent, campaign=campaign),
        timeout=30,
        what="run_streams listening to the session",
    )


def streams_log_after(live_stack, offset: int) -> str:
    return live_stack.processes["streams"].log_path.read_bytes()[offset:].decode(errors="replace")


def run_call(agent, lead, *, end: bool = True) -> Call:
    call = services.call_dial(agent=agent, lead=lead)
    wait_until(lambda: call_state(call) == CallState.CONNECTED, timeout=45, what="connected")
    if end:
        services.call_end(agent=agent, call=call)
        wait_until(lambda: call_state(call) == CallState.ENDED, timeout=45, what="ended")
        disposition = lead.campaign.dispositions.get(name="Interested")
        services.call_dispose(agent=agent, call=call, disposition=disposition, notes="ok")
    return call


def test_huawei_full_path_and_guid_rotation(live_stack, emulator):
    alice = make_agent("alice", 1)  # Huawei workno 101
    account = make_account(Platform.HUAWEI, emulator.url)
    make_campaign(account, "demo-preview")
    services.platform_sign_in(agent=alice, account=account)
    services.platform_set_ready(agent=alice, account=account, ready=True)
    emulator.control(
        "POST", "huawei/campaigns", {"records": [{"numbers": ["2125550100"]}, {"numbers": ["2125550101"]}]}
    )

    first = offered_lead(alice)
    assert first.offer["controlid"] and first.raw_number == "2125550100"
    call = run_call(alice, first)
    assert call_state(call) == CallState.DISPOSED
    assert Call.objects.get(pk=call.pk).platform_call_id

    session = PlatformSession.objects.get(agent=alice, account=account)
    old_guid = session.state["guid"]
    emulator.control("POST", "huawei/agents/101/rotate-guid")
    new_guid = wait_until(
        lambda: (g := PlatformSession.objects.get(pk=session.pk).state.get("guid")) != old_guid and g,
        timeout=20,
        what="the rotated GUID to be stored",
    )

    def polled_with_new_guid() -> bool:
        polls = emulator.requests(platform="huawei", path="/agentgateway/resource/agentevent/101")
        return any(r["headers"].get("guid") == new_guid for r in polls)

    wait_until(polled_with_new_guid, timeout=20, what="a poll with the new GUID")
    # The next offer and call still flow after the rotation.
    second = offered_lead(alice, exclude=(first.pk,))
    call = run_call(alice, second)
    assert call_state(call) == CallState.DISPOSED


def test_genesys_full_path_and_rehandshake(live_stack, emulator):
    alice = make_agent("alice", 1)  # Genesys agent1
    account = make_account(Platform.GENESYS, emulator.url)
    campaign = make_campaign(account, "DemoPreview")
    emulator.control(
        "POST",
        "genesys/campaigns",
        {"name": "DemoPreview", "records": [{"phoneNumber": "2125550100"}, {"phoneNumber": "2125550101"}]},
    )
    services.platform_sign_in(agent=alice, account=account)
    services.platform_set_ready(agent=alice, account=account, ready=True)
    request_offer_once_listening(alice, campaign)
    first = offered_lead(alice)
    call = run_call(alice, first)
    assert call_state(call) == CallState.DISPOSED

    before_drop = live_stack.processes["streams"].log_path.stat().st_size
    dropped = emulator.control("POST", "genesys/drop-clients")
    assert dropped["dropped"] >= 1
    wait_until(
        lambda: "re-reading calls and agent state over REST" in streams_log_after(live_stack, before_drop),
        timeout=30,
        what="a re-handshake",
    )
    request_offer_once_listening(alice, campaign)
    second = offered_lead(alice, exclude=(first.pk,))
    call = run_call(alice, second)
    assert call_state(call) == CallState.DISPOSED


def huawei_requests(emulator, method: str, path: str) -> int:
    return len([r for r in emulator.requests(platform="huawei", path=path) if r["method"] == method])


def test_huawei_gateway_sign_out_is_respected_and_a_lapsed_session_recovers(live_stack, emulator):
    """A supervisor (or the gateway) signs the agent out while we poll: the desk says so, the agent
    is offline and nobody signs them back in. A session that lapsed while nobody polled (the
    streams process was down) is signed in again when polling resumes."""
    from agentdesk.models import Agent, Presence
    from tests.calls.test_live import desk_socket

    alice = make_agent("alice", 1)  # Huawei workno 101
    account = make_account(Platform.HUAWEI, emulator.url)
    make_campaign(account, "demo-preview")
    Agent.objects.filter(pk=alice.pk).update(presence=Presence.READY)
    services.platform_sign_in(agent=alice, account=account)
    services.platform_set_ready(agent=alice, account=account, ready=True)
    poll_path = "/agentgateway/resource/agentevent/101"
    login_path = "/agentgateway/resource/onlineagent/101"
    wait_until(lambda: huawei_requests(emulator, "GET", poll_path) >= 2, timeout=30, what="polls answered")
    ws = desk_socket(live_stack, alice)
    try:
        logins = huawei_requests(emulator, "PUT", login_path)
        emulator.control("POST", "huawei/agents/101/signout")
        session = wait_until(
            lambda: PlatformSession.objects.filter(
                agent=alice, account=account, status=PlatformSession.Status.SIGNED_OUT
            ).first(),
            timeout=30,
            what="the session marked signed out",
        )
        assert session.last_error == "Signed out by the platform."
        frames = ws.recv_until(lambda m: "signed you out" in m, timeout=20)
        assert any("Press Ready to sign in again" in f for f in frames)
        assert Agent.objects.get(pk=alice.pk).presence == Presence.OFFLINE
        time.sleep(3)  # several poll rounds' worth: nobody signs the agent back in
        assert huawei_requests(emulator, "PUT", login_path) == logins
        assert emulator.control("GET", "huawei/agents")["101"]["signed_in"] is False
    finally:
        ws.close()

    # Signed in again; then the session lapses while the streams process is down.
    Agent.objects.filter(pk=alice.pk).update(presence=Presence.READY)
    services.platform_sign_in(agent=alice, account=account)
    streams = live_stack.processes["streams"]
    streams.stop()
    emulator.control("POST", "huawei/agents/101/signout")
    logins = huawei_requests(emulator, "PUT", login_path)
    streams.start()
    wait_until(
        lambda: huawei_requests(emulator, "PUT", login_path) > logins, timeout=40, what="a new sign-in"
    )
    assert (
        PlatformSession.objects.get(agent=alice, account=account).status == PlatformSession.Status.SIGNED_IN
    )
    assert Agent.objects.get(pk=alice.pk).presence == Presence.READY


def test_the_first_genesys_offer_after_ready_reaches_the_desk(live_stack, emulator):
    """Ready signs the agent in and would ask GWS for a record at once, before run_streams has
    subscribed to the new session: the PreviewRecord message would go nowhere and the record stay
    handed to the agent on the platform. The ask waits until the stream listens."""
    from agentdesk import services as desk
    from agentdesk.models import Presence

    alice = make_agent("alice", 1)
    account = make_account(Platform.GENESYS, emulator.url)
    campaign = make_campaign(account, "DemoPreview")
    records = [{"phoneNumber": "2125550100"}, {"phoneNumber": "2125550101"}]
    emulator.control("POST", "genesys/campaigns", {"name": "DemoPreview", "records": records})
    # What the desk's Ready does (agentdesk.desk_views.set_presence), with no browser polling after.
    desk.agent_select_campaign(agent=alice, campaign=campaign)
    desk.agent_set_presence(agent=alice, presence=Presence.READY, campaign=campaign)
    desk.desk_fill(agent=alice, campaign=campaign)

    lead = offered_lead(alice)
    assert lead.raw_number == "2125550100", "the first record handed out is the one on the desk"
    asks = [r for r in emulator.requests(platform="genesys") if "GetPreviewRecord" in (r.get("body") or "")]
    assert len(asks) == 1, asks
    assert PlatformSession.objects.get(agent=alice, account=account).listening_since is not None
