"""The Genesys GWS adapter against the emulator over real HTTP, and its parser on captured messages."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from calls.bayeux import BayeuxClient
from calls.providers import get_provider
from calls.providers.base import (
    CONNECTED,
    CUSTOMER_RINGING,
    DIALING,
    ENDED,
    FAILED,
    PUSH,
    REASON_BUSY,
    REASON_NO_ANSWER,
    REASON_PLATFORM,
    AccountConfig,
    AgentLogin,
    DialRequest,
    Identity,
    Offer,
    ProviderError,
)
from calls.providers.genesys import GenesysProvider, gws_error

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "genesys"
AGENT = AgentLogin(ref="agent1")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def account(url: str, **kwargs: Any) -> AccountConfig:
    return AccountConfig(
        platform="genesys",
        base_url=url,
        credentials={"agent_password": "demo"},
        options={"application_id": "OCS_App"},
        **kwargs,
    )


class Events:
    """The adapter's CometD stream, parsed into signals, collected for tests to wait on."""

    def __init__(self, provider: GenesysProvider):
        self.provider = provider
        self.signals: list[Any] = []
        self.cond = threading.Condition()

    def __call__(self, message: dict[str, Any]) -> None:
        with self.cond:
            self.signals.extend(self.provider.parse(message))
            self.cond.notify_all()

    def wait(self, predicate: Callable[[Any], bool], timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for signal in self.signals:
                    if predicate(signal):
                        return signal
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no matching signal in {[(s.kind, s.state, s.key) for s in self.signals]}"
                    )
                self.cond.wait(remaining)

    def call_states(self, call_id: str, final: tuple[str, ...] = (ENDED, FAILED)) -> list[Any]:
        self.wait(lambda s: s.kind == "call" and s.call_id == call_id and s.state in final)
        return [s for s in self.signals if s.kind == "call" and s.call_id == call_id and s.state]


@pytest.fixture
def provider(emulator) -> GenesysProvider:
    return GenesysProvider(account(emulator.url), {})


@pytest.fixture
def stream(provider) -> Iterator[tuple[Events, BayeuxClient, list[int]]]:
    events = Events(provider)
    rehandshakes: list[int] = []
    client = provider.open_notifications(
        AGENT, on_message=events, on_rehandshake=lambda: rehandshakes.append(len(provider.list_calls(AGENT)))
    )
    client.backoff_base = 0.05
    client.start()
    deadline = time.monotonic() + 10
    while client.client_id is None and time.monotonic() < deadline:
        time.sleep(0.02)
    yield events, client, rehandshakes
    client.stop(timeout=5)


def load_campaign(emulator, rows: list[dict[str, Any]] | None = None) -> list[int]:
    rows = rows or [{"phoneNumber": "+14155550101", "customerName": "Ada"}]
    body = {"name": "Spring", "callingList": "Spring_list", "records": rows}
    return emulator.control("POST", "genesys/campaigns", body)["recordHandles"]


def script(emulator, **outcome: Any) -> None:
    emulator.control("POST", "outcomes", {"platform": "genesys", **outcome})


def gws_state(emulator) -> dict[str, Any]:
    return emulator.control("GET", "genesys/state")


# -- session and agent state ------------------------------------------------------------------------
def test_registry_builds_the_genesys_adapter(emulator):
    adapter = get_provider(account(emulator.url))
    assert isinstance(adapter, GenesysProvider) and adapter.offers_leads


def test_sign_in_keeps_the_session_in_state(emulator, provider):
    provider.sign_in(AGENT)
    state = provider.state
    assert state["device_id"] == gws_state(emulator)["users"]["agent1"]["deviceId"]
    assert set(state["cookies"]) == {"JSESSIONID"} and state["csrf_token"]
    assert gws_state(emulator)["users"]["agent1"]["contactCenterSession"] is True
    # Another process picks the session up from the persisted state: no new server session.
    sessions = len(gws_state(emulator)["sessions"])
    other = GenesysProvider(account(emulator.url), json.loads(json.dumps(dict(state))))
    other.set_ready(AGENT)
    assert len(gws_state(emulator)["sessions"]) == sessions
    assert gws_state(emulator)["users"]["agent1"]["agentState"] == "Ready"


def test_agent_states_arrive_as_agent_signals(emulator, provider, stream):
    events, _, _ = stream
    provider.sign_in(AGENT)
    provider.set_ready(AGENT)
    assert events.wait(lambda s: s.kind == "agent" and s.state == "ready")
    provider.set_not_ready(AGENT, "Lunch")
    assert events.wait(lambda s: s.kind == "agent" and s.state == "not_ready" and s.reason == "Lunch")
    provider.set_after_call_work(AGENT)
    assert events.wait(lambda s: s.kind == "agent" and s.state == "wrap_up")
    provider.sign_out(AGENT)
    assert events.wait(lambda s: s.kind == "agent" and s.state == "offline")
    assert gws_state(emulator)["users"]["agent1"]["contactCenterSession"] is False


def test_password_from_the_agent_login_wins(emulator):
    adapter = GenesysProvider(AccountConfig("genesys", emulator.url, credentials={}), {})
    adapter.sign_in(AgentLogin(ref="agent2", password="demo"))
    assert gws_state(emulator)["users"]["agent2"]["contactCenterSession"] is True
    with pytest.raises(ProviderError) as caught:
        adapter.sign_in(AgentLogin(ref="agent2"))
    assert caught.value.code == "20"


# -- the lead cycle ---------------------------------------------------------------------------------
def test_offer_dial_hang_up_and_complete(emulator, provider, stream):
    events, _, _ = stream
    [handle] = load_campaign(emulator)
    provider.sign_in(AGENT)
    provider.request_offer(AGENT, "Spring")
    offer = events.wait(lambda s: s.kind == "offer").data
    assert offer["recordHandle"] == handle and offer["campaignName"] == "Spring"
    assert offer["record"]["userData"]["customerName"] == "Ada"
    assert provider.state["preview_sessions"] == ["Spring"]

    script(emulator, result="answer", talk_seconds=None)
    result = provider.dial(DialRequest(agent=AGENT, number="+14155550101", offer=offer))
    assert result.call_id == gws_state(emulator)["users"]["agent1"]["calls"][0]["id"]
    events.wait(lambda s: s.call_id == result.call_id and s.state == CONNECTED)
    provider.hang_up(AGENT, result.call_id)
    states = events.call_states(result.call_id)
    assert [s.state for s in states] == [DIALING, CUSTOMER_RINGING, CONNECTED, ENDED]
    assert states[0].data["record_handle"] == handle
    provider.hang_up(AGENT, result.call_id)  # already released: not an error

    provider.dispose(AGENT, result.call_id, disposition="busy", offer=offer)
    ack = events.wait(lambda s: s.kind == "ack" and s.data.get("recordHandle") == handle)
    assert ack.data["notificationType"] == "RecordProcessedAcknowledge"
    record = gws_state(emulator)["records"][str(handle)]
    assert record["status"] == "completed" and record["callResult"] == "Busy"

    provider.request_offer(AGENT, "Spring")  # the preview session is started only once
    assert events.wait(lambda s: s.kind == "other" and s.reason == "no_records")
    starts = [r for r in emulator.requests(platform="genesys") if "StartPreviewSession" in r["body"]]
    assert len(starts) == 1


def test_skip_and_reschedule(emulator, provider, stream):
    """A skip holds the record back until the campaign's retry delay (a Campaign callback): the
    next preview is another record, never the skipped one again."""
    events, _, _ = stream
    [first, second] = load_campaign(
        emulator, [{"phoneNumber": "+14155550101"}, {"phoneNumber": "+14155550102"}]
    )
    provider.sign_in(AGENT)
    provider.request_offer(AGENT, "Spring")
    offer = events.wait(lambda s: s.kind == "offer").data
    assert offer["recordHandle"] == first
    retry_at = int(time.time()) + 600
    provider.skip(AGENT, offer, retry_at=retry_at)
    assert (
        events.wait(lambda s: s.kind == "ack" and s.data.get("recordHandle") == first).data[
            "notificationType"
        ]
        == "RecordRescheduleAcknowledge"
    )
    skipped = gws_state(emulator)["records"][str(first)]
    assert skipped["status"] == "rescheduled" and skipped["due"] == retry_at
    assert skipped["recordType"] == "CampaignCallback"

    offers = [s for s in events.signals if s.kind == "offer"]
    provider.request_offer(AGENT, "Spring")
    offer = events.wait(lambda s: s.kind == "offer" and s not in offers).data
    assert offer["recordHandle"] == second  # moved on
    callback_at = int(time.time()) + 7200
    provider.dispose(AGENT, "", disposition="callback", offer=offer, callback_at=callback_at)
    events.wait(
        lambda s: (
            s.kind == "ack"
            and s.data.get("recordHandle") == second
            and s.data["notificationType"] == "RecordRescheduleAcknowledge"
        )
    )
    record = gws_state(emulator)["records"][str(second)]
    assert record["recordType"] == "PersonalCallback" and record["due"] == callback_at
    with pytest.raises(ProviderError):
        provider.skip(AGENT, {})


def test_plain_dial_busy_and_lookup(emulator, provider, stream):
    events, _, _ = stream
    provider.sign_in(AGENT)
    script(emulator, result="busy")
    request = DialRequest(agent=AGENT, number="+14155550123")
    result = provider.dial(request)
    assert result.call_id
    assert [(s.state, s.reason) for s in events.call_states(result.call_id)] == [
        (DIALING, ""),
        (FAILED, REASON_BUSY),
    ]
    found = provider.lookup_call(request)
    assert found is not None and found.call_id == result.call_id
    assert provider.lookup_call(DialRequest(agent=AGENT, number="+19995550000")) is None
    provider.dispose(AGENT, result.call_id, disposition="busy")  # no record: nothing to send


def test_rehandshake_after_drop_clients_rereads_calls_and_keeps_streaming(emulator, provider, stream):
    events, client, rehandshakes = stream
    provider.sign_in(AGENT)
    emulator.control("POST", "genesys/drop-clients")
    deadline = time.monotonic() + 10
    while not rehandshakes and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rehandshakes == [0]  # on_rehandshake ran and could read the calls over REST
    script(emulator, result="no_answer")
    result = provider.dial(DialRequest(agent=AGENT, number="+14155550124"))
    states = events.call_states(result.call_id)
    assert [(s.state, s.reason) for s in states] == [
        (DIALING, ""),
        (CUSTOMER_RINGING, ""),
        (FAILED, REASON_NO_ANSWER),
    ]
    assert client.handshakes == 2


# -- errors -----------------------------------------------------------------------------------------
def test_stale_csrf_token_is_refreshed_once(emulator, provider):
    provider.sign_in(AGENT)
    provider.state["csrf_token"] = "stale"
    provider.set_ready(AGENT)
    statuses = [(r["method"], r["path"], r["status"]) for r in emulator.requests(platform="genesys")][-3:]
    assert statuses == [
        ("POST", "/api/v2/me/channels/voice", 403),
        ("GET", "/api/v2/me", 200),
        ("POST", "/api/v2/me/channels/voice", 200),
    ]
    assert provider.state["csrf_token"] != "stale"


def test_wrong_password_is_not_authenticated(emulator):
    adapter = GenesysProvider(
        AccountConfig("genesys", emulator.url, credentials={"agent_password": "nope"}), {}
    )
    with pytest.raises(ProviderError) as caught:
        adapter.sign_in(AGENT)
    assert (caught.value.code, caught.value.permanent, caught.value.http_status) == ("20", True, 401)
    assert "cookies" not in adapter.state


def test_status_codes_become_provider_errors(emulator, provider):
    with pytest.raises(ProviderError) as caught:
        provider.set_ready(AGENT)  # no contact-center session
    assert (caught.value.code, caught.value.permanent) == ("2", True)
    provider.sign_in(AGENT)
    with pytest.raises(ProviderError) as caught:
        provider.hang_up(AGENT, "NOSUCHCALL")
    assert (caught.value.code, caught.value.permanent, caught.value.http_status) == ("6", True, 404)
    with pytest.raises(ProviderError) as caught:
        provider.request_offer(AGENT, "NoSuchCampaign")
    assert caught.value.code == "6"
    script(emulator, result="error")
    with pytest.raises(ProviderError) as caught:
        provider.dial(DialRequest(agent=AGENT, number="+14155550125"))
    assert (caught.value.code, caught.value.permanent, caught.value.ambiguous) == ("4", False, False)


def test_platform_500_is_retryable(emulator, provider):
    provider.sign_in(AGENT)
    emulator.control("POST", "faults", {"kind": "500", "platform": "genesys", "path": "/api/v2/me/devices/"})
    with pytest.raises(ProviderError) as caught:
        provider.dial(DialRequest(agent=AGENT, number="+14155550126"))
    assert (caught.value.code, caught.value.permanent, caught.value.ambiguous) == ("500", False, False)


def test_slow_dial_is_an_ambiguous_timeout_then_looked_up(emulator):
    adapter = GenesysProvider(account(emulator.url, read_timeout=0.5), {})
    adapter.sign_in(AGENT)
    script(emulator, result="answer", talk_seconds=None)
    emulator.control(
        "POST",
        "faults",
        {"kind": "slow", "platform": "genesys", "path": "/api/v2/me/devices/", "seconds": 1.5},
    )
    request = DialRequest(agent=AGENT, number="+14155550127")
    with pytest.raises(ProviderError) as caught:
        adapter.dial(request)
    assert (caught.value.code, caught.value.permanent, caught.value.ambiguous) == ("timeout", False, True)
    deadline = time.monotonic() + 5
    found = None
    while found is None and time.monotonic() < deadline:  # the slow request is still being served
        found = adapter.lookup_call(request)
        time.sleep(0.1)
    assert found is not None and found.call_id


@pytest.mark.parametrize(
    ("http_status", "body", "expected"),
    [
        (200, {"statusCode": 0}, None),
        (400, {"statusCode": 1, "statusMessage": "x"}, ("1", True)),
        (400, {"statusCode": 2}, ("2", True)),
        (403, {"statusCode": 3}, ("3", True)),
        (500, {"statusCode": 4}, ("4", False)),
        (403, {"statusCode": 5}, ("5", True)),
        (404, {"statusCode": 6}, ("6", True)),
        (401, {"statusCode": 20}, ("20", True)),
        (401, None, ("20", True)),
        (403, None, ("403", True)),
        (502, None, ("502", False)),
        (200, {"statusCode": 99}, ("99", True)),
    ],
)
def test_gws_error_table(http_status, body, expected):
    error = gws_error(http_status, body)
    if expected is None:
        assert error is None
    else:
        assert (error.code, error.permanent) == expected
        assert error.platform == "genesys" and error.message


# -- parsing ------------------------------------------------------------------------------------------
def parser() -> GenesysProvider:
    return GenesysProvider(AccountConfig("genesys", "http://gws.invalid"), {})


def test_parse_the_seed_message():
    [signal] = parser().parse(fixture("seed_004_cometd_message.json"))
    assert signal.kind == "call" and signal.state == DIALING
    assert signal.call_id == "013V08JRL498H1OI04000VTAES00000G"
    assert signal.key == "genesys:013V08JRL498H1OI04000VTAES00000G:Dialing"
    assert signal.data["number"] == "5001"  # the customer; 5005 is the agent's own DN
    assert signal.data["conn_id"] == "0071023821aec010"
    # The bare data part parses the same, with the same key (a repeat is a no-op).
    [again] = parser().parse(fixture("seed_004_cometd_message.json")["data"])
    assert again.key == signal.key


@pytest.mark.parametrize(
    ("name", "kind", "state", "reason"),
    [
        ("call_established.json", "call", CONNECTED, ""),
        ("call_released_answered.json", "call", ENDED, ""),
        ("call_released_busy.json", "call", FAILED, REASON_BUSY),
        ("device_state_ready.json", "agent", "ready", ""),
        ("device_state_not_ready.json", "agent", "not_ready", "Break"),
        ("preview_record.json", "offer", None, ""),
        ("record_processed_ack.json", "ack", None, ""),
        ("preview_session_started.json", "ack", None, ""),
        ("no_records.json", "other", None, "no_records"),
    ],
)
def test_parse_captured_messages(name, kind, state, reason):
    [signal] = parser().parse(fixture(name))
    assert (signal.kind, signal.state, signal.reason) == (kind, state, reason)
    assert signal.key.startswith("genesys:")


def test_parse_release_reasons_and_odd_input():
    released = fixture("call_released_busy.json")
    for result, expected in (
        ("NoAnswer", REASON_NO_ANSWER),
        ("GeneralError", REASON_PLATFORM),
        ("AnsweringMachine", "answering_machine"),
    ):
        released["data"]["extensions"]["CallResult"] = result
        [signal] = parser().parse(released)
        assert (signal.state, signal.reason) == (FAILED, expected)
    released["data"]["extensions"] = {}
    assert parser().parse(released)[0].state == ENDED  # no result: the engine knows if it connected
    held = fixture("call_established.json")
    held["data"]["call"]["state"] = "Held"
    assert parser().parse(held)[0].state is None
    assert [s.kind for s in parser().parse(["nonsense", {"data": 1}, {"messageType": "ErrorMessage"}])] == [
        "other",
        "other",
        "other",
    ]
    offers = parser().parse([fixture("preview_record.json"), fixture("preview_record.json")])
    assert offers[0].key == offers[1].key  # the same delivery twice is one event


def test_base_url_may_end_in_api_v2_as_the_vendor_writes_it(emulator):
    from calls.providers.base import AccountConfig
    from calls.providers.genesys import GenesysProvider

    with_suffix = GenesysProvider(AccountConfig(platform="genesys", base_url=f"{emulator.url}/api/v2/"))
    without = GenesysProvider(AccountConfig(platform="genesys", base_url=emulator.url))
    assert with_suffix.http.base_url == without.http.base_url == emulator.url


def test_parse_offer_the_captured_preview_record():
    [signal] = parser().parse(fixture("preview_record.json"))
    offer = GenesysProvider.parse_offer(signal.data)
    # userData without the platform's GSW_* bookkeeping; customerName is the name.
    assert offer == Offer(
        raw_number="+14155550101",
        name="Ada Lovelace",
        custom_fields={"Account": "A-1"},
        campaign_ref="Spring",
    )


def test_parse_offer_user_data_variants():
    record = {
        "userData": {
            "GSW_CAMPAIGN_NAME": "Demo",
            "GSW_RECORD_HANDLE": 431,
            "name": "Leo Weber",
            "Plan": "Silver",
        }
    }
    offer = GenesysProvider.parse_offer({"record": record})
    assert (offer.name, offer.custom_fields, offer.campaign_ref) == ("Leo Weber", {"Plan": "Silver"}, "")
    named = GenesysProvider.parse_offer({"record": {"userData": {"GSW_CUSTOMER_NAME": "Ida B", "Plan": "x"}}})
    assert (named.name, named.custom_fields) == ("Ida B", {"Plan": "x"})
    assert GenesysProvider.parse_offer({}) == Offer()
    assert GenesysProvider.parse_offer({"record": "nope", "campaignName": "Spring"}).campaign_ref == "Spring"


def test_capabilities_and_identity():
    assert (
        GenesysProvider.agent_sessions and GenesysProvider.offers_leads and GenesysProvider.can_look_up_calls
    )
    assert GenesysProvider.hang_up_needs_call_id and GenesysProvider.event_stream == PUSH
    assert set(GenesysProvider.identity_fields) == {"ref"}
    login = GenesysProvider.agent_login(Identity(ref="agent1"), {"agent_password": "pw"})
    assert (login.ref, login.username, login.password) == ("agent1", "agent1", "pw")


def test_call_live_while_connected_and_not_once_released(emulator, provider, stream):
    """What the reconciler asks before it ends a quiet call: the platform still has it while the
    conversation goes on, and no longer once it is released (still listed as Released)."""
    events, _, _ = stream
    provider.sign_in(AGENT)
    script(emulator, result="answer", talk_seconds=None)
    result = provider.dial(DialRequest(agent=AGENT, number="+14155550177"))
    events.wait(lambda s: s.call_id == result.call_id and s.state == CONNECTED)
    assert provider.call_live(AGENT, result.call_id) is True
    assert provider.call_live(AGENT, "no-such-call") is False
    provider.hang_up(AGENT, result.call_id)
    events.wait(lambda s: s.call_id == result.call_id and s.state == ENDED)
    assert any(c["id"] == result.call_id for c in provider.list_calls(AGENT))  # listed, released
    assert provider.call_live(AGENT, result.call_id) is False
