"""The Ryng adapter against the Ryng emulator over real HTTP, and its parser on the seeds' payloads."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from calls.providers import get_provider
from calls.providers.base import AccountConfig, AgentLogin, DialRequest, Identity, ProviderError
from calls.providers.ryng import RyngProvider
from tests.emulator_fixtures import CallbackSink, EmulatorProcess

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ryng"
TOKEN = "demo-ryng-token"
AGENT = AgentLogin(ref="7", username="ashwin@example.com")


def make_provider(emulator: EmulatorProcess, token: str = TOKEN, **account: Any) -> RyngProvider:
    config = AccountConfig(
        platform="ryng", base_url=f"{emulator.url}/rest-api/v1", credentials={"token": token}, **account
    )
    provider = get_provider(config)
    assert isinstance(provider, RyngProvider)
    return provider


@pytest.fixture
def ryng(emulator: EmulatorProcess) -> RyngProvider:
    return make_provider(emulator)


def request_for(sink: CallbackSink | None = None, number: str = "+919800000001", **extra: Any) -> DialRequest:
    urls = {}
    if sink is not None:
        urls = {
            "connect_callback_url": f"{sink.url}/connect",
            "terminal_callback_url": f"{sink.url}/terminal",
        }
    return DialRequest(
        agent=AGENT, number=number, customer_name="Joe", platform_campaign_id="595", **(urls | extra)
    )


def script(emulator: EmulatorProcess, **outcome: Any) -> None:
    emulator.control("POST", "outcomes", {"platform": "ryng", **outcome})


def ryng_calls(emulator: EmulatorProcess) -> list[dict[str, Any]]:
    return emulator.control("GET", "ryng/calls")


def leads(emulator: EmulatorProcess, campaign: int) -> dict[str, Any]:
    return emulator.control("GET", f"ryng/campaigns/{campaign}/leads")


# -- dial ---------------------------------------------------------------------------------------------


def test_dial_places_the_call_with_the_token_and_our_callback_urls(emulator, ryng, callback_sink, caplog):
    caplog.set_level(logging.DEBUG)
    result = ryng.dial(request_for(callback_sink))
    (call,) = ryng_calls(emulator)
    assert (result.call_id, result.log_id) == (str(call["callID"]), str(call["logID"]))
    assert call["agentID"] == 7 and call["campaignID"] == 595 and call["customerName"] == "Joe"
    assert call["terminalCallbackUrl"] == f"{callback_sink.url}/terminal"
    (sent,) = emulator.requests(platform="ryng")
    assert sent["headers"]["x-access-token"] == TOKEN
    assert json.loads(sent["body"]) == {
        "agentID": 7,
        "campaignID": 595,
        "customerNumber": "+919800000001",
        "customerName": "Joe",
        "connectCallbackUrl": f"{callback_sink.url}/connect",
        "terminalCallbackUrl": f"{callback_sink.url}/terminal",
    }
    assert TOKEN not in caplog.text
    # The connect callbacks that follow parse into our states.
    signals = [ryng.parse(r["body"])[0] for r in callback_sink.wait_for(2, path="/connect")]
    assert [s.state for s in signals] == ["agent_connected", "connected"]
    assert {s.call_id for s in signals} == {result.call_id}


def test_a_refused_token_is_a_permanent_error_with_its_code(emulator):
    with pytest.raises(ProviderError) as caught:
        make_provider(emulator, token="wrong").dial(request_for())
    error = caught.value
    assert (error.permanent, error.code, error.http_status) == (True, "403", 403)
    assert error.message == "The Ryng access token was refused." and error.platform == "ryng"


def test_no_token_fails_before_any_request(emulator):
    with pytest.raises(ProviderError) as caught:
        make_provider(emulator, token="").dial(request_for())
    assert caught.value.permanent and caught.value.code == "no_token"
    assert emulator.requests(platform="ryng") == []


@pytest.mark.parametrize(
    "request_",
    [
        DialRequest(agent=AgentLogin(ref="ashwin"), number="+911", platform_campaign_id="595"),
        DialRequest(agent=AGENT, number="+911", platform_campaign_id=""),
        DialRequest(agent=AGENT, number=" ", platform_campaign_id="595"),
    ],
    ids=["agent-not-int", "no-campaign", "no-number"],
)
def test_a_dial_ryng_would_refuse_is_stopped_here_as_permanent(emulator, ryng, request_):
    with pytest.raises(ProviderError) as caught:
        ryng.dial(request_)
    assert caught.value.permanent and caught.value.code == "invalid"
    assert emulator.requests(platform="ryng") == []


def test_failed_to_start_call_is_retryable_and_not_ambiguous(emulator, ryng):
    script(emulator, result="error")
    with pytest.raises(ProviderError) as caught:
        ryng.dial(request_for())
    error = caught.value
    assert (error.permanent, error.ambiguous, error.code) == (False, False, "500")


def test_an_unexplained_500_on_dial_is_retryable_and_ambiguous(emulator, ryng):
    emulator.control("POST", "faults", {"kind": "500", "platform": "ryng", "path": "/rest-api/v1/preview"})
    with pytest.raises(ProviderError) as caught:
        ryng.dial(request_for())
    error = caught.value
    assert (error.permanent, error.ambiguous, error.code, error.http_status) == (False, True, "500", 500)


def test_a_slow_answer_is_an_ambiguous_retryable_timeout(emulator):
    emulator.control("POST", "faults", {"kind": "slow", "platform": "ryng", "seconds": 1.0})
    with pytest.raises(ProviderError) as caught:
        make_provider(emulator, read_timeout=0.2).dial(request_for())
    error = caught.value
    assert (error.permanent, error.ambiguous, error.code) == (False, True, "timeout")


def test_what_ryng_cannot_do_says_so(ryng):
    with pytest.raises(NotImplementedError):
        ryng.hang_up(AGENT, "16703", log_id="87288")
    with pytest.raises(NotImplementedError):
        ryng.lookup_call(request_for())


# -- dispose --------------------------------------------------------------------------------------------


def test_dispose_ends_the_call_and_the_terminal_callback_carries_it(emulator, ryng, callback_sink):
    script(emulator, result="answer", agent_ring_seconds=1, ring_seconds=1)
    result = ryng.dial(request_for(callback_sink))
    callback_sink.wait_for(2, path="/connect")
    ryng.dispose(
        AGENT, result.call_id, log_id=result.log_id, disposition="Interested", notes="call back Friday"
    )
    patch = emulator.requests(platform="ryng", path=f"/rest-api/v1/preview/call/{result.call_id}")[0]
    assert json.loads(patch["body"]) == {
        "logID": int(result.log_id),
        "dispositionName": "Interested",
        "notes": "call back Friday",
    }
    (terminal,) = callback_sink.wait_for(1, path="/terminal")
    (signal,) = ryng.parse(terminal["body"])
    assert (signal.kind, signal.state, signal.call_id) == ("call", "ended", result.call_id)
    assert signal.data["disposition"] == "Interested" and signal.data["notes"] == "call back Friday"
    assert signal.data["callLogID"] == result.log_id and isinstance(signal.data["talktime"], int)
    assert signal.data["recordingUrl"].endswith(".mp3")


def test_disposing_twice_is_a_permanent_error(emulator, ryng):
    result = ryng.dial(request_for())
    ryng.dispose(AGENT, result.call_id, log_id=result.log_id, disposition="Interested")
    with pytest.raises(ProviderError) as caught:
        ryng.dispose(AGENT, result.call_id, log_id=result.log_id, disposition="Interested")
    assert (caught.value.permanent, caught.value.code, caught.value.http_status) == (True, "500", 500)


def test_dispose_without_ids_or_disposition_is_refused_here(emulator, ryng):
    for call_id, log_id, disposition in (("", "1", "x"), ("16703", "", "x"), ("16703", "1", " ")):
        with pytest.raises(ProviderError) as caught:
            ryng.dispose(AGENT, call_id, log_id=log_id, disposition=disposition)
        assert caught.value.code == "invalid"
    assert emulator.requests(platform="ryng") == []


@pytest.mark.parametrize(("result", "reason"), [("busy", "busy"), ("no_answer", "no_answer")])
def test_busy_and_no_answer_reach_us_as_failed_with_the_reason(emulator, ryng, callback_sink, result, reason):
    script(emulator, result=result, agent_ring_seconds=1, ring_seconds=1)
    placed = ryng.dial(request_for(callback_sink))
    (terminal,) = callback_sink.wait_for(1, path="/terminal")
    (signal,) = ryng.parse(terminal["body"])
    assert (signal.state, signal.reason, signal.call_id) == ("failed", reason, placed.call_id)
    assert signal.data["disposition"] is None and signal.data["callStarted"] is None


# -- append_leads -------------------------------------------------------------------------------------------

ROWS = [
    {
        "number": "+919876543210",
        "agents": ["john@example.com", "emma@example.com"],
        "custom_fields": {"Name": "Max"},
    },
    {
        "number": "+917994771185",
        "agents": ["agent3@example.com"],
        "custom_fields": {"Name": "Alex", "Brand": "Acme"},
    },
]
NAMES = {"customField1Name": "Name", "customField2Name": "Brand"}


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize(
    ("mapping", "expected_agents"),
    [
        ("global", [["ashwin@example.com", "alice@example.com"]] * 2),
        ("inline", [["john@example.com", "emma@example.com"], ["agent3@example.com"]]),
        ("all-agents", [[], []]),
    ],
)
def test_append_leads_reads_back_from_the_emulator(emulator, ryng, fmt, mapping, expected_agents):
    ryng.append_leads(
        "595",
        ROWS,
        fmt=fmt,
        agent_mapping=mapping,
        agents=["ashwin@example.com", "alice@example.com"],
        custom_field_names=NAMES,
        name="Spring push",
        connect_callback_url="https://desk.example/hooks/ryng/s3cret/connect",
        terminal_callback_url="https://desk.example/hooks/ryng/s3cret/terminal",
    )
    campaign = leads(emulator, 595)
    assert [lead["number"] for lead in campaign["leads"]] == ["+919876543210", "+917994771185"]
    assert [lead["agents"] for lead in campaign["leads"]] == expected_agents
    assert {lead["agentMapping"] for lead in campaign["leads"]} == {mapping}
    assert campaign["customFieldNames"] == NAMES
    assert [lead["customFields"] for lead in campaign["leads"]] == [
        {"customField1": "Max"},
        {"customField1": "Alex", "customField2": "Acme"},
    ]
    if fmt == "json":  # a sheet has no place for a name or callback URLs
        assert campaign["name"] == "Spring push"
        assert campaign["terminalCallbackUrl"] == "https://desk.example/hooks/ryng/s3cret/terminal"
        assert campaign["connectCallbackUrl"] == "https://desk.example/hooks/ryng/s3cret/connect"


def test_append_leads_sends_batches_and_keeps_field_numbers_across_gaps(emulator):
    ryng = make_provider(emulator, options={"append_batch_size": 2})
    rows = [{"number": f"+91980000000{n}", "customField3": f"v{n}"} for n in range(5)]
    ryng.append_leads("12", rows, fmt="csv", agent_mapping="global", agents=["a@example.com"])
    assert len(emulator.requests(platform="ryng", path="/rest-api/v1/campaign/12")) == 3
    campaign = leads(emulator, 12)
    assert len(campaign["leads"]) == 5 and campaign["leads"][4]["customFields"] == {"customField3": "v4"}


def test_a_one_lead_csv_sheet_for_all_agents_goes_as_json(emulator, ryng):
    # seed 002: a one-lead sheet needs agents named, which "all agents" does not give.
    ryng.append_leads("595", [{"number": "+911"}], fmt="csv")
    sent = emulator.requests(platform="ryng", path="/rest-api/v1/campaign/595")
    assert len(sent) == 1 and sent[0]["status"] == 200
    assert '"number": "+911"' in sent[0]["body"] or '"number":"+911"' in sent[0]["body"]
    assert [lead["number"] for lead in leads(emulator, 595)["leads"]] == ["+911"]


def test_append_leads_refusals(emulator, ryng):
    with pytest.raises(ProviderError) as caught:
        make_provider(emulator, token="wrong").append_leads("595", ROWS, custom_field_names=NAMES)
    assert (caught.value.code, caught.value.permanent) == ("403", True)
    assert emulator.requests(platform="ryng", path="/rest-api/v1/campaign/595")[0]["status"] == 403


def test_custom_fields_the_campaign_does_not_name_are_numbered_after_its_own(emulator, ryng):
    rows = [
        {"number": "+911", "custom_fields": {"Colour": "red", "Name": "Max"}},
        {"number": "+912", "custom_fields": {"Size": "L"}},
    ]
    ryng.append_leads(
        "595", rows, custom_field_names=["Name"], agent_mapping="global", agents=["a@example.com"]
    )
    campaign = leads(emulator, 595)
    assert campaign["customFieldNames"] == {
        "customField1Name": "Name",
        "customField2Name": "Colour",
        "customField3Name": "Size",
    }
    assert [lead["customFields"] for lead in campaign["leads"]] == [
        {"customField1": "Max", "customField2": "red"},
        {"customField3": "L"},
    ]


def test_an_unexplained_500_on_append_is_retryable_but_not_ambiguous(emulator, ryng):
    emulator.control("POST", "faults", {"kind": "500", "platform": "ryng", "path": "/rest-api/v1/campaign"})
    with pytest.raises(ProviderError) as caught:
        ryng.append_leads("595", ROWS, custom_field_names=NAMES)
    assert (caught.value.permanent, caught.value.ambiguous, caught.value.code) == (False, False, "500")


# -- parse: the seeds' payloads -------------------------------------------------------------------------------


def parser() -> RyngProvider:
    return RyngProvider(AccountConfig(platform="ryng", base_url="http://unused/rest-api/v1"))


@pytest.mark.parametrize("as_bytes", [False, True])
def test_the_seed_connect_example_verbatim_keeps_the_first_of_its_repeated_keys(as_bytes):
    raw = (FIXTURES / "connect_callback.txt").read_text()
    (signal,) = parser().parse(raw.encode() if as_bytes else raw)
    assert (signal.kind, signal.state, signal.call_id, signal.key) == (
        "call",
        "agent_connected",
        "131",
        "ryng:131:agent-connected",
    )
    assert signal.data["duplicate_keys"]["event"] == ["agent-connected", "customer-connected"]
    assert signal.data["callStarted"] is None and signal.data["customFields"]["customField1"] == "ashwin"


@pytest.mark.parametrize("name", ["terminal_callback.txt", "append_terminal_callback.txt"])
def test_the_seed_terminal_examples_verbatim_parse_despite_the_missing_comma(name):
    (signal,) = parser().parse((FIXTURES / name).read_text())
    assert (signal.state, signal.call_id, signal.key) == ("ended", "28", "ryng:28:call-ended:disposed")
    data = signal.data
    assert data["callLogID"] == "64" and data["talktime"] == 5 and data["callDuration"] is None
    assert data["disposition"] == "New Disposition" and data["notes"] == "" and data["status"] == "2"
    assert data["callStarted"] == "2023-01-19T08:07:07.000Z" and data["callbackTime"] is None
    assert data["legDetails"] == {"leg0Status": 5, "leg0Duration": 16, "leg1Status": 5, "leg1Duration": 5}
    assert data["recordingUrl"].endswith(".mp3") and len(data["customFields"]) == 8


def test_the_parsed_json_variants_match_the_verbatim_text():
    for name in ("connect_callback", "terminal_callback"):
        from_text = parser().parse((FIXTURES / f"{name}.txt").read_text())[0]
        from_dict = parser().parse(json.loads((FIXTURES / f"{name}.json").read_text()))[0]
        assert (from_text.key, from_text.state) == (from_dict.key, from_dict.state)
    (customer,) = parser().parse(json.loads((FIXTURES / "customer_connected_callback.json").read_text()))
    assert (customer.state, customer.key) == ("connected", "ryng:131:customer-connected")


def seed_terminal(**changes: Any) -> dict[str, Any]:
    return json.loads((FIXTURES / "terminal_callback.json").read_text()) | changes


@pytest.mark.parametrize(
    ("changes", "state", "reason"),
    [
        ({"status": "completed"}, "ended", ""),
        ({"status": 2}, "ended", ""),
        ({"status": "busy", "callStarted": None, "talktime": 0}, "failed", "busy"),
        ({"status": "no-answer", "callStarted": None, "talktime": 0}, "failed", "no_answer"),
        ({"status": "failed", "callStarted": None}, "failed", "platform_error"),
        ({"status": "2", "callStarted": None, "talktime": 0}, "failed", "no_answer"),
        ({"status": None, "callStarted": None, "talktime": None}, "failed", "no_answer"),
    ],
)
def test_terminal_status_variants(changes, state, reason):
    (signal,) = parser().parse(seed_terminal(**changes))
    assert (signal.state, signal.reason) == (state, reason)


def test_a_terminal_callback_before_disposal_has_its_own_key():
    (ended,) = parser().parse(seed_terminal(callDisposed=None, disposition=None))
    (disposed,) = parser().parse(seed_terminal())
    assert ended.key == "ryng:28:call-ended" and disposed.key == "ryng:28:call-ended:disposed"


@pytest.mark.parametrize(
    ("legs", "expected"),
    [
        ('{"leg0Status": 5, "leg1Status": 7}', {"leg0Status": 5, "leg1Status": 7}),
        (
            [{"status": 5, "duration": 16}, {"status": 5, "duration": 5}],
            {"leg0Status": 5, "leg0Duration": 16, "leg1Status": 5, "leg1Duration": 5},
        ),
        (None, {}),
        ("garbled", {"raw": "garbled"}),
    ],
)
def test_leg_details_in_other_shapes(legs, expected):
    assert parser().parse(seed_terminal(legDetails=legs))[0].data["legDetails"] == expected


def test_a_missing_event_is_inferred_from_the_callback_type():
    connect = json.loads((FIXTURES / "connect_callback.json").read_text())
    connect.pop("event")
    assert parser().parse(connect)[0].state == "agent_connected"
    assert parser().parse(connect | {"callStarted": "2023-02-01T18:13:31.000Z"})[0].state == "connected"
    terminal = seed_terminal()
    terminal.pop("event")
    assert parser().parse(terminal)[0].state == "ended"


@pytest.mark.parametrize(
    "payload",
    [
        "not json at all",
        b"\xff\xfe",
        42,
        None,
        {"hello": "world"},
        {"callID": 1, "event": "agent-whispered"},
        "[1, 2]",
    ],
)
def test_odd_payloads_become_other_signals_and_never_raise(payload):
    (signal,) = parser().parse(payload)
    assert signal.kind == "other" and signal.state is None and signal.key.startswith("ryng:")
    assert parser().parse(payload)[0].key == signal.key  # a repeat is still recognised


def test_a_repaired_trailing_comma_and_a_bom():
    raw = '\ufeff{\n "callID": 5,\n "callbackType": "connect",\n "event": "agent-connected",\n}'
    assert parser().parse(raw)[0].key == "ryng:5:agent-connected"


def test_the_terminal_callback_carries_the_engines_normalized_keys():
    data = parser().parse((FIXTURES / "terminal_callback.txt").read_text())[0].data
    assert (data["talk_seconds"], data["log_id"]) == (5, "64")
    assert data["recording_url"] == data["recordingUrl"] and data["recording_url"].endswith(".mp3")
    connect = parser().parse((FIXTURES / "connect_callback.txt").read_text())[0].data
    assert "talk_seconds" not in connect and "recording_url" not in connect


def test_capabilities_and_identity():
    assert (
        RyngProvider.takes_pushed_leads and RyngProvider.ends_on_dispose and RyngProvider.receives_callbacks
    )
    assert not (RyngProvider.agent_sessions or RyngProvider.offers_leads or RyngProvider.can_look_up_calls)
    assert RyngProvider.callback_kinds == ("connect", "terminal") and RyngProvider.event_stream == ""
    assert set(RyngProvider.identity_fields) == {"ref", "username"}
    login = RyngProvider.agent_login(Identity(ref="7", username="a@x.test", phone="1"), {"token": "t"})
    assert login == AgentLogin(ref="7", username="a@x.test")  # no password: the token is the account's
