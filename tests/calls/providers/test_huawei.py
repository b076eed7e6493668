"""The Huawei adapter against the emulated CC-Gateway over real HTTP, and parse() over the fixtures."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from calls.providers import get_provider
from calls.providers.base import (
    AGENT_CONNECTED,
    AGENT_RINGING,
    CONNECTED,
    CUSTOMER_RINGING,
    ENDED,
    FAILED,
    POLL,
    REASON_BUSY,
    REASON_NO_ANSWER,
    AccountConfig,
    AgentLogin,
    DialRequest,
    Identity,
    Offer,
    ProviderError,
    Signal,
)
from calls.providers.huawei import RECEIPT_KEY, HuaweiProvider, parse_set_guid

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "huawei"
AGENT = AgentLogin(ref="101", phone="6001")
NUMBER = "88889039"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def account(url: str, **kwargs: Any) -> AccountConfig:
    return AccountConfig(
        platform="huawei",
        base_url=f"{url}/agentgateway/resource",
        credentials={"agent_password": "demo"},
        **kwargs,
    )


@pytest.fixture
def emu(emulator):
    emulator.huawei_quiet()
    return emulator


@pytest.fixture
def provider(emu) -> HuaweiProvider:
    provider = get_provider(account(emu.url, read_timeout=5.0), {})
    assert isinstance(provider, HuaweiProvider)
    return provider


def next_signal(provider: HuaweiProvider, kind: str | None = None, timeout: float = 10.0) -> Signal:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = provider.poll_event(AGENT, timeout=5)
        if event is None:
            continue
        (signal,) = provider.parse(event)
        if kind is None or signal.kind == kind:
            return signal
    raise AssertionError(f"no {kind or 'any'} signal within {timeout}s")


def call_signals(provider: HuaweiProvider, count: int) -> list[Signal]:
    return [next_signal(provider, "call") for _ in range(count)]


def offer_for(provider: HuaweiProvider, emu, *numbers: str) -> dict[str, Any]:
    emu.control(
        "POST", "huawei/campaigns", {"records": [{"numbers": list(numbers or [NUMBER]), "callData": "c"}]}
    )
    return dict(next_signal(provider, "offer").data)


@pytest.fixture
def ready(provider: HuaweiProvider) -> HuaweiProvider:
    provider.sign_in(AGENT)
    provider.set_ready(AGENT)
    return provider


# -- session ---------------------------------------------------------------------------------------


def test_parse_set_guid() -> None:
    assert parse_set_guid("JSESSIONID=abc.AgentGateway1") == "abc.AgentGateway1"
    assert parse_set_guid("JSESSIONID=abc; Path=/") == "abc"
    assert parse_set_guid("abc") == "abc"


def test_sign_in_keeps_the_guid_and_sends_it_with_the_json_content_type(provider, emu) -> None:
    provider.sign_in(AGENT)
    guid = provider.state["guid"]
    assert guid.endswith(".AgentGateway1")
    provider.set_not_ready(AGENT)
    (sign_in,) = emu.requests(platform="huawei", path="/agentgateway/resource/onlineagent/101")[:1]
    body = json.loads(sign_in["body"])
    assert body["password"] == "demo" and body["phonenum"] == "6001" and body["status"] == 3
    (saybusy,) = emu.requests(platform="huawei", path="/agentgateway/resource/onlineagent/101/saybusy")
    assert saybusy["headers"]["guid"] == guid
    assert saybusy["headers"]["Content-Type"] == "application/json; charset=UTF-8"


def test_second_session_takes_over_with_forcelogin(emu) -> None:
    first = get_provider(account(emu.url), {})
    first.sign_in(AGENT)
    second = get_provider(account(emu.url), {})
    second.sign_in(AGENT)  # 100-002, then forcelogin
    assert second.state["guid"] != first.state["guid"]
    paths = [r["path"] for r in emu.requests(platform="huawei")]
    assert paths[-1].endswith("/onlineagent/101/forcelogin")
    with pytest.raises(ProviderError) as caught:
        first.set_ready(AGENT)
    assert caught.value.code == "100-006" and caught.value.permanent
    assert "guid" not in first.state  # the engine must sign in again
    second.set_ready(AGENT)


def test_wrong_password_is_a_permanent_100_004(emu) -> None:
    provider = get_provider(account(emu.url), {})
    with pytest.raises(ProviderError) as caught:
        provider.sign_in(AgentLogin(ref="101", phone="6001", password="s3cret-Xq"))
    assert (caught.value.code, caught.value.permanent) == ("100-004", True)
    assert "password" in caught.value.message
    assert "s3cret-Xq" not in str(caught.value)


def test_set_ready_and_poll(ready: HuaweiProvider) -> None:
    signal = next_signal(ready)
    assert (signal.kind, signal.state) == ("agent", "ready")
    assert ready.poll_event(AGENT, timeout=5) is None  # held, then empty


def test_adapter_follows_guid_rotation_across_polls(provider: HuaweiProvider, emu) -> None:
    # Rotate every 0.1 s; an old GUID lives 0.3 s: only a client that takes Set-GUID on every
    # poll answer keeps polling.
    emu.control(
        "POST",
        "config",
        {"huawei_guid_rotate_seconds": 10, "huawei_guid_grace_seconds": 30, "huawei_poll_hold_seconds": 0.4},
    )
    provider.sign_in(AGENT)
    seen = [provider.state["guid"]]
    for _ in range(4):
        assert provider.poll_event(AGENT, timeout=5) is None
        seen.append(provider.state["guid"])
    assert len(set(seen)) == 5
    polls = emu.requests(platform="huawei", path="/agentgateway/resource/agentevent/101")
    assert [p["headers"]["guid"] for p in polls] == seen[:-1]
    provider.set_ready(AGENT)  # the newest GUID works for other requests too


def test_sign_out(ready: HuaweiProvider) -> None:
    ready.sign_out(AGENT)
    assert "guid" not in ready.state
    ready.sign_out(AGENT)  # already out: quiet
    with pytest.raises(ProviderError) as caught:
        ready.poll_event(AGENT)
    assert caught.value.code == "100-006"


def test_gateway_signing_the_agent_out_is_reported(ready: HuaweiProvider, emu) -> None:
    emu.control("POST", "huawei/agents/101/signout")
    with pytest.raises(ProviderError) as caught:
        ready.set_not_ready(AGENT)
    assert (caught.value.code, caught.value.permanent) == ("100-006", True)
    assert "guid" not in ready.state


# -- calls -------------------------------------------------------------------------------------------


def test_offer_signal_and_answered_call(ready: HuaweiProvider, emu) -> None:
    emu.control("POST", "outcomes", {"number": NUMBER, "result": "answer"})
    offer = offer_for(ready, emu)
    assert offer["dialeddigits"] == [NUMBER] and offer["controlid"].isdigit() and offer["callData"] == "c"
    result = ready.dial(DialRequest(agent=AGENT, number=NUMBER, offer=offer))
    (callout,) = emu.requests(platform="huawei", path="/agentgateway/resource/voicecall/101/previewCallout")
    sent = json.loads(callout["body"])
    assert set(sent) == set(fixture("previewcallout_request_seed003.json"))
    assert sent == {"called": NUMBER, "callcontrolid": int(offer["controlid"])}  # an integer
    assert set(json.loads(callout["response"])) == set(fixture("previewcallout_response_seed003.json"))
    signals = call_signals(ready, 4)
    assert [s.state for s in signals] == [AGENT_RINGING, AGENT_CONNECTED, CUSTOMER_RINGING, CONNECTED]
    assert [s.call_id for s in signals] == ["", "", result.call_id, result.call_id]
    assert ready.lookup_call(DialRequest(agent=AGENT, number=NUMBER, offer=offer)).call_id == result.call_id
    ready.hang_up(AGENT, result.call_id)
    ended = call_signals(ready, 2)
    assert [(s.state, s.call_id) for s in ended] == [(ENDED, result.call_id)] * 2
    assert len({s.key for s in signals + ended}) == 6
    assert next_signal(ready).state == "ready"
    ready.hang_up(AGENT, result.call_id)  # 200-017: already over, quiet
    assert ready.lookup_call(DialRequest(agent=AGENT, number=NUMBER, offer=offer)) is None


@pytest.mark.parametrize(("result", "reason"), [("busy", REASON_BUSY), ("no_answer", REASON_NO_ANSWER)])
def test_unanswered_call_fails_with_a_reason(ready: HuaweiProvider, emu, result: str, reason: str) -> None:
    emu.control("POST", "outcomes", {"number": NUMBER, "result": result})
    offer = offer_for(ready, emu)
    dialed = ready.dial(DialRequest(agent=AGENT, number=NUMBER, offer=offer))
    signals = call_signals(ready, 4)
    assert (signals[-1].state, signals[-1].reason, signals[-1].call_id) == (FAILED, reason, dialed.call_id)


def test_dial_refusals_map_to_provider_errors(ready: HuaweiProvider, emu) -> None:
    offer = offer_for(ready, emu, NUMBER, "88889040")
    with pytest.raises(ProviderError) as not_offered:
        ready.dial(DialRequest(agent=AGENT, number="12345", offer=offer))
    assert (not_offered.value.code, not_offered.value.permanent) == ("200-001", True)
    with pytest.raises(ProviderError) as stale:
        ready.dial(DialRequest(agent=AGENT, number=NUMBER, offer={**offer, "controlid": "1"}))
    assert (stale.value.code, stale.value.permanent) == ("200-036", True)
    assert "200-036" in stale.value.message
    with pytest.raises(ProviderError) as no_offer:
        ready.dial(DialRequest(agent=AGENT, number=NUMBER))
    assert no_offer.value.code == "no-offer"
    emu.control("POST", "outcomes", {"platform": "huawei", "result": "error"})
    with pytest.raises(ProviderError) as internal:
        ready.dial(DialRequest(agent=AGENT, number="88889040", offer=offer))
    assert (internal.value.code, internal.value.permanent) == ("100-007", False)
    assert ready.dial(DialRequest(agent=AGENT, number="88889040", offer=offer)).call_id  # the retry works


def test_read_timeout_is_ambiguous_and_lookup_finds_the_call(emu) -> None:
    provider = get_provider(account(emu.url, read_timeout=0.5), {})
    provider.sign_in(AGENT)
    provider.set_ready(AGENT)
    offer = offer_for(provider, emu)
    emu.control(
        "POST",
        "faults",
        {"kind": "slow", "platform": "huawei", "path": "/agentgateway/resource/voicecall", "seconds": 1.0},
    )
    request = DialRequest(agent=AGENT, number=NUMBER, offer=offer)
    with pytest.raises(ProviderError) as caught:
        provider.dial(request)
    assert (caught.value.code, caught.value.ambiguous, caught.value.permanent) == ("timeout", True, False)
    time.sleep(1.5)  # the gateway finishes the slow previewCallout
    found = provider.lookup_call(request)
    assert found is not None and found.call_id
    with pytest.raises(ProviderError) as again:
        provider.dial(request)  # the offer is consumed: never a second call
    assert again.value.code == "200-036"


def test_http_500_is_retryable(ready: HuaweiProvider, emu) -> None:
    emu.control("POST", "faults", {"kind": "500", "platform": "huawei"})
    with pytest.raises(ProviderError) as caught:
        ready.set_not_ready(AGENT)
    assert (caught.value.code, caught.value.permanent, caught.value.http_status) == ("500", False, 500)


def test_skip_hands_the_next_record(ready: HuaweiProvider, emu) -> None:
    emu.control("POST", "huawei/campaigns", {"records": [{"number": "111"}, {"number": "222"}]})
    first = next_signal(ready, "offer").data
    ready.skip(AGENT, first)
    second = next_signal(ready, "offer").data
    assert (first["dialeddigits"], second["dialeddigits"]) == (["111"], ["222"])


# -- parse over the fixtures ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "state", "call_id", "reason"),
    [
        ("event_preview_callout.json", "offer", None, "", ""),
        ("event_preview_callout_ex.json", "offer", None, "", ""),
        ("event_phone_alerting.json", "call", AGENT_RINGING, "", ""),
        ("event_phone_offhook.json", "call", AGENT_CONNECTED, "", ""),
        ("event_customer_alerting.json", "call", CUSTOMER_RINGING, "1455885056-1095", ""),
        ("event_talking.json", "call", CONNECTED, "1455885056-1095", ""),
        ("event_call_out_fail.json", "call", FAILED, "1455885056-1095", REASON_NO_ANSWER),
        ("event_call_out_fail_busy_emulator.json", "call", FAILED, "1455885056-1095", REASON_BUSY),
        ("event_call_release.json", "call", ENDED, "1455885056-1095", ""),
        ("event_customer_release.json", "call", ENDED, "1455885056-1095", ""),
        ("event_agent_state_ready.json", "agent", "ready", "", ""),
        ("event_agent_state_not_ready.json", "agent", "not_ready", "", ""),
        ("event_agent_state_work.json", "agent", "work", "", ""),
    ],
)
def test_parse_fixture(name: str, kind: str, state: str | None, call_id: str, reason: str) -> None:
    provider = HuaweiProvider(account("http://gateway.invalid"))
    payload = fixture(name)
    (signal,) = provider.parse(payload)
    assert (signal.kind, signal.state, signal.call_id, signal.reason) == (kind, state, call_id, reason)
    assert signal.data["agent"] == "101"
    assert signal.key.startswith("huawei:101:")
    # A replay of the same stored payload (whole answer, bare event or JSON text) is the same key.
    assert provider.parse(payload["event"])[0].key == signal.key
    assert provider.parse(json.dumps(payload))[0].key == signal.key


def test_parse_offer_data() -> None:
    provider = HuaweiProvider(account("http://gateway.invalid"))
    (signal,) = provider.parse(fixture("event_preview_callout_ex.json"))
    assert signal.key == "huawei:101:offer:1537"
    assert signal.data["dialeddigits"] == ["88889039", "88889040"]
    assert signal.data["controlid"] == "1537" and signal.data["callData"] == "lead-43"


def test_call_less_events_are_told_apart_by_their_delivery_stamp() -> None:
    provider = HuaweiProvider(account("http://gateway.invalid"))
    event = fixture("event_phone_alerting.json")["event"]
    first = provider.parse({**event, RECEIPT_KEY: "a"})[0]
    second = provider.parse({**event, RECEIPT_KEY: "b"})[0]
    assert first.key != second.key
    assert provider.parse({**event, RECEIPT_KEY: "a"})[0].key == first.key


@pytest.mark.parametrize("payload", [fixture("poll_empty.json"), {}, None, ""])
def test_parse_empty(payload: Any) -> None:
    assert HuaweiProvider(account("http://gateway.invalid")).parse(payload) == []


@pytest.mark.parametrize(
    "payload",
    [
        "{not json",
        [1, 2],
        {"foo": "bar"},
        {"eventType": "AgentEvent_Something_New", "workNo": "101", "content": 5},
    ],
)
def test_parse_odd_payloads_never_raise(payload: Any) -> None:
    (signal,) = HuaweiProvider(account("http://gateway.invalid")).parse(payload)
    assert signal.kind == "other" and signal.key


def offer_of(event_data: dict[str, Any]) -> Offer:
    """What the engine makes a lead of, from an offer signal as parse() gives it."""
    (signal,) = HuaweiProvider(account("http://gateway.invalid")).parse(event_data)
    return HuaweiProvider.parse_offer(signal.data)


def test_parse_offer_the_seed_events() -> None:
    offer = offer_of(fixture("event_preview_callout.json"))
    # callData is the campaign's own JSON here: its name is the customer's, the rest custom fields.
    assert offer == Offer(
        raw_number="88889039", name="Asha Rao", custom_fields={"lead": "42"}, campaign_ref=""
    )
    # Several numbers offered: the first is dialed (exactly as offered); opaque callData is one field.
    offer = offer_of(fixture("event_preview_callout_ex.json"))
    assert (offer.raw_number, offer.name, offer.custom_fields) == ("88889039", "", {"Call data": "lead-43"})


def test_parse_offer_call_data_variants() -> None:
    data = {
        "controlid": "1536",
        "callData": json.dumps({"name": "Maya Lopez", "City": "Brooklyn", "Plan": "Gold"}),
    }
    offer = HuaweiProvider.parse_offer(data)
    assert (offer.name, offer.custom_fields) == ("Maya Lopez", {"City": "Brooklyn", "Plan": "Gold"})
    offer = HuaweiProvider.parse_offer({"callData": "ticket=77;vip"})
    assert (offer.name, offer.custom_fields) == ("", {"Call data": "ticket=77;vip"})
    # Odd offers never raise.
    assert HuaweiProvider.parse_offer({}) == Offer()
    assert HuaweiProvider.parse_offer({"callData": "[1, 2]", "dialeddigits": []}).custom_fields == {
        "Call data": "[1, 2]"
    }
    assert HuaweiProvider.parse_offer({"dialeddigits": "2125550100, 2125550101"}).raw_number == "2125550100"


def test_capabilities_and_identity() -> None:
    assert HuaweiProvider.agent_sessions and HuaweiProvider.offers_leads and HuaweiProvider.can_look_up_calls
    assert HuaweiProvider.event_stream == POLL and not HuaweiProvider.receives_callbacks
    assert set(HuaweiProvider.identity_fields) == {"ref", "phone"}
    login = HuaweiProvider.agent_login(Identity(ref="101", phone="70001"), {"agent_password": "pw"})
    assert (login.ref, login.phone, login.password) == ("101", "70001", "pw")
    provider = HuaweiProvider(account("http://gateway.invalid"))
    assert provider.session_lost(ProviderError("gone", code="000-003"))
    assert provider.session_lost(ProviderError("gone", code="100-006"))
    assert not provider.session_lost(ProviderError("busy", code="100-007"))


def test_call_live_while_connected_and_not_once_over(ready: HuaweiProvider, emu) -> None:
    """What the reconciler asks before it ends a quiet call: the gateway lists the agent's
    current calls only."""
    emu.control("POST", "outcomes", {"number": NUMBER, "result": "answer"})
    offer = offer_for(ready, emu)
    result = ready.dial(DialRequest(agent=AGENT, number=NUMBER, offer=offer))
    assert [s.state for s in call_signals(ready, 4)][-1] == CONNECTED
    assert ready.call_live(AGENT, result.call_id) is True
    assert ready.call_live(AGENT, "999999") is False
    ready.hang_up(AGENT, result.call_id)
    call_signals(ready, 2)
    assert ready.call_live(AGENT, result.call_id) is False
