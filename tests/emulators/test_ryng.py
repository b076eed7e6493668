"""The Ryng emulator over real HTTP, held to seeds 000/001/002 and telephony.md § Ryng."""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from calls.providers.base import AccountConfig
from calls.providers.ryng import RyngProvider
from tests.emulator_fixtures import CallbackSink, EmulatorProcess

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ryng"
TOKEN = "demo-ryng-token"
AUTH = {"x-access-token": TOKEN}
ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SID_MESSAGE = re.compile(r"^Call Initiated With SID [a-z0-9]{5}-[a-z0-9]{4}-[a-z0-9]{5}$")
MINUTE = 0.6  # one platform minute at the tests' time scale (0.01)


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def api(emulator: EmulatorProcess, method: str, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("headers", AUTH)
    return requests.request(method, f"{emulator.url}/rest-api/v1{path}", timeout=5, **kwargs)


def control(emulator: EmulatorProcess, method: str, path: str, payload: Any = None) -> Any:
    return emulator.control(method, f"ryng/{path}", payload)


def dial(emulator: EmulatorProcess, sink: CallbackSink | None = None, **extra: Any) -> dict[str, Any]:
    body = {"agentID": 7, "campaignID": 595, "customerNumber": "+919800000001", "customerName": "Joe"}
    if sink is not None:
        body |= {"connectCallbackUrl": f"{sink.url}/connect", "terminalCallbackUrl": f"{sink.url}/terminal"}
    answer = api(emulator, "POST", "/preview/call", json=body | extra)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def dispose(emulator: EmulatorProcess, data: dict[str, Any], **extra: Any) -> requests.Response:
    body = {"logID": data["logID"], "dispositionName": "Interested", "notes": "follow up"} | extra
    return api(emulator, "PATCH", f"/preview/call/{data['callID']}", json=body)


def script(emulator: EmulatorProcess, **outcome: Any) -> None:
    emulator.control("POST", "outcomes", {"platform": "ryng", **outcome})


def seed_keys(name: str) -> set[str]:
    """The keys of a seed callback example (the clean copy from seed 002, minus its quirks)."""
    text = (FIXTURES / name).read_text()
    return set(re.findall(r'^\s*"(\w+)"\s*:', text, re.M)) - set(
        re.findall(r'^\s*"(customField\d+(?:Name)?)"\s*:', text, re.M)
    )


def parse(body: Any):
    provider = RyngProvider(
        AccountConfig(platform="ryng", base_url="http://unused", credentials={"token": "x"})
    )
    return provider.parse(body)[0]


# -- auth -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/preview/call"), ("PATCH", "/preview/call/16703"), ("POST", "/campaign/595")],
)
@pytest.mark.parametrize("headers", [{}, {"x-access-token": "wrong"}], ids=["missing", "wrong"])
def test_every_endpoint_refuses_a_bad_token_with_the_seeds_403(emulator, method, path, headers):
    answer = api(emulator, method, path, headers=headers, json=fixture_json("make_preview_call_body.json"))
    assert answer.status_code == 403
    assert answer.json() == fixture_json("make_preview_call_403.json")
    assert control(emulator, "GET", "calls") == []


# -- Make Preview Call ------------------------------------------------------------------------------


def test_the_seed_example_body_starts_a_call_answered_like_the_seed(emulator):
    answer = api(emulator, "POST", "/preview/call", json=fixture_json("make_preview_call_body.json"))
    assert answer.status_code == 200
    body, seed = answer.json(), fixture_json("make_preview_call_200.json")
    assert body.keys() == seed.keys() and body["data"].keys() == seed["data"].keys()
    assert body["error"] is False and SID_MESSAGE.match(body["message"])
    assert isinstance(body["data"]["callID"], int) and isinstance(body["data"]["logID"], int)
    call = control(emulator, "GET", f"calls/{body['data']['callID']}")
    assert call["agentID"] == 7 and call["campaignID"] == 595 and call["customerName"] == "Joe"
    assert body["message"].endswith(call["sid"])


def test_params_may_come_in_the_query_string(emulator, callback_sink):
    params = {
        "agentID": "7",
        "campaignID": "595",
        "customerNumber": "+919800000002",
        "connectCallbackUrl": f"{callback_sink.url}/connect",
    }
    answer = api(emulator, "POST", "/preview/call", params=params)
    assert answer.status_code == 200, answer.text
    callback_sink.wait_for(1, path="/connect")
    (call,) = control(emulator, "GET", "calls")
    assert call["customerNumber"] == "+919800000002" and call["agentID"] == 7


@pytest.mark.parametrize(
    "body",
    [
        {"campaignID": 595, "customerNumber": "+91"},
        {"agentID": "seven", "campaignID": 595, "customerNumber": "+91"},
        {"agentID": 7, "customerNumber": "+91"},
        {"agentID": 7, "campaignID": 1.5, "customerNumber": "+91"},
        {"agentID": 7, "campaignID": 595},
        {"agentID": 7, "campaignID": 595, "customerNumber": "  "},
        "{not json",
    ],
    ids=[
        "no-agent",
        "agent-not-int",
        "no-campaign",
        "campaign-not-int",
        "no-number",
        "blank-number",
        "bad-json",
    ],
)
def test_a_bad_dial_request_gets_the_seeds_500(emulator, body):
    data = body if isinstance(body, str) else json.dumps(body)
    answer = api(
        emulator, "POST", "/preview/call", data=data, headers=AUTH | {"Content-Type": "application/json"}
    )
    assert answer.status_code == 500
    assert answer.json() == fixture_json("make_preview_call_500.json")


def test_a_scripted_error_outcome_fails_the_dial_itself(emulator):
    script(emulator, result="error")
    answer = api(emulator, "POST", "/preview/call", json=fixture_json("make_preview_call_body.json"))
    assert answer.status_code == 500 and answer.json() == fixture_json("make_preview_call_500.json")
    assert control(emulator, "GET", "calls") == []


# -- connect callbacks ------------------------------------------------------------------------------


def test_connect_callbacks_arrive_in_order_shaped_like_the_seed(emulator, callback_sink):
    script(emulator, result="answer", agent_ring_seconds=1, ring_seconds=20)
    data = dial(emulator, callback_sink)
    agent, customer = (r["body"] for r in callback_sink.wait_for(2, path="/connect"))
    expected_keys = seed_keys("append_connect_callback.txt")
    for body in (agent, customer):
        assert set(body) == expected_keys
        assert body["callID"] == data["callID"] and body["callbackType"] == "connect"
        assert body["callDirection"] == "outbound" and body["customerNum"] == "+919800000001"
        assert ISO_MS_Z.match(body["callCreated"])
    assert agent["event"] == "agent-connected" and agent["callStarted"] is None
    assert customer["event"] == "customer-connected" and ISO_MS_Z.match(customer["callStarted"])
    assert [c["state"] for c in control(emulator, "GET", "calls")] == ["connected"]


def test_registered_agents_and_appended_leads_fill_the_callback(emulator, callback_sink):
    control(
        emulator,
        "POST",
        "agents",
        {"agentID": 67136, "agentUsername": "ashwin@example.com", "agentNum": "+919999999999"},
    )
    body = {
        "agentMapping": "all-agents",
        "customFieldNames": {"customField1Name": "customer name"},
        "customerData": {
            "connectCallbackUrl": f"{callback_sink.url}/connect",
            "jsonData": [{"number": "+917777445511", "customField1": "ashwin"}],
        },
    }
    assert api(emulator, "POST", "/campaign/131", json=body).status_code == 200
    # No callback URLs on the dial: the campaign's apply (an emulator choice, documented).
    assert api(
        emulator,
        "POST",
        "/preview/call",
        params={"agentID": 67136, "campaignID": 131, "customerNumber": "+91 77774 45511"},
    ).ok
    (agent,) = (r["body"] for r in callback_sink.wait_for(1, path="/connect"))
    assert agent["agentUsername"] == "ashwin@example.com" and agent["agentNum"] == "+919999999999"
    assert agent["customFieldNames"] == {"customField1Name": "customer name"}
    assert agent["customFields"] == {"customField1": "ashwin"}


# -- End Preview Call and the terminal callback -----------------------------------------------------------


def test_patch_ends_and_disposes_and_sends_the_terminal_callback(emulator, callback_sink):
    script(emulator, result="answer", agent_ring_seconds=1, ring_seconds=1)
    data = dial(emulator, callback_sink)
    callback_sink.wait_for(2, path="/connect")
    answer = dispose(emulator, data)
    assert answer.status_code == 200 and answer.json() == fixture_json("end_preview_call_200.json")
    (terminal,) = (r["body"] for r in callback_sink.wait_for(1, path="/terminal"))
    assert set(terminal) == seed_keys("append_terminal_callback.txt")
    assert terminal["callbackType"] == "terminal" and terminal["event"] == "call-ended"
    assert (terminal["callID"], terminal["callLogID"]) == (data["callID"], data["logID"])
    assert terminal["disposition"] == "Interested" and terminal["notes"] == "follow up"
    assert terminal["status"] == "2" and isinstance(terminal["talktime"], int)
    assert terminal["parentDisposition"] is None and terminal["recordingUrl"].endswith(".mp3")
    assert set(terminal["legDetails"]) == {"leg0Status", "leg0Duration", "leg1Status", "leg1Duration"}
    for key in ("callCreated", "callStarted", "callEnded", "callDisposed"):
        assert ISO_MS_Z.match(terminal[key]), key
    assert terminal["callStarted"] <= terminal["callEnded"] <= terminal["callDisposed"]
    signal = parse(terminal)
    assert (signal.state, signal.key) == ("ended", f"ryng:{data['callID']}:call-ended:disposed")
    (call,) = control(emulator, "GET", "calls")
    assert call["disposed"] and call["state"] == "ended"


def test_patch_takes_query_params_and_the_seed_example_body(emulator):
    data = dial(emulator)
    params = {"logID": data["logID"], "dispositionName": "Interested", "notes": ""}
    assert api(emulator, "PATCH", f"/preview/call/{data['callID']}", params=params).status_code == 200
    second = dial(emulator)
    seed = fixture_json("end_preview_call_body.json") | {"logID": second["logID"]}
    assert api(emulator, "PATCH", f"/preview/call/{second['callID']}", json=seed).status_code == 200


@pytest.mark.parametrize(
    "case", ["unknown-call", "wrong-log", "no-log", "no-disposition", "no-notes", "twice"]
)
def test_a_refused_patch_gets_the_seeds_500(emulator, case):
    data = dial(emulator)
    body = {"logID": data["logID"], "dispositionName": "Interested", "notes": "n"}
    call_id = data["callID"]
    if case == "unknown-call":
        call_id = 999999
    elif case == "wrong-log":
        body["logID"] += 1
    elif case == "twice":
        assert dispose(emulator, data).status_code == 200
    else:
        body.pop({"no-log": "logID", "no-disposition": "dispositionName", "no-notes": "notes"}[case])
    answer = api(emulator, "PATCH", f"/preview/call/{call_id}", json=body)
    assert answer.status_code == 500 and answer.json() == fixture_json("end_preview_call_500.json")


def test_patch_while_ringing_stops_the_call_before_the_customer_connects(emulator, callback_sink):
    script(emulator, result="answer", agent_ring_seconds=1, ring_seconds=30)
    data = dial(emulator, callback_sink)
    callback_sink.wait_for(1, path="/connect")
    assert dispose(emulator, data).status_code == 200
    (terminal,) = (r["body"] for r in callback_sink.wait_for(1, path="/terminal"))
    assert terminal["callStarted"] is None and terminal["status"] == "no-answer"
    time.sleep(0.5)  # the customer leg would have answered at 0.3 s
    assert [r["body"]["event"] for r in callback_sink.received] == ["agent-connected", "call-ended"]


# -- outcomes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "status", "reason"),
    [("busy", "busy", "busy"), ("no_answer", "no-answer", "no_answer"), ("fail", "failed", "platform_error")],
)
def test_unanswered_outcomes_reach_the_terminal_callback(emulator, callback_sink, result, status, reason):
    script(emulator, result=result, agent_ring_seconds=1, ring_seconds=1)
    data = dial(emulator, callback_sink)
    (terminal,) = (r["body"] for r in callback_sink.wait_for(1, path="/terminal"))
    assert [r["body"]["event"] for r in callback_sink.received if r["path"] == "/connect"] == [
        "agent-connected"
    ]
    assert terminal["status"] == status and terminal["callStarted"] is None
    assert terminal["disposition"] is None and terminal["callDisposed"] is None
    assert terminal["talktime"] == 0 and terminal["recordingUrl"] is None
    signal = parse(terminal)
    assert (signal.state, signal.reason) == ("failed", reason)
    assert signal.key == f"ryng:{data['callID']}:call-ended"
    # The agent still disposes it; that is a second, distinct terminal callback.
    assert dispose(emulator, data, dispositionName="Busy").status_code == 200
    disposed = callback_sink.wait_for(2, path="/terminal")[1]["body"]
    assert disposed["disposition"] == "Busy" and disposed["status"] == status
    assert parse(disposed).key == f"ryng:{data['callID']}:call-ended:disposed"


def test_the_customer_hangs_up_after_talk_seconds(emulator, callback_sink):
    script(emulator, result="answer", agent_ring_seconds=1, ring_seconds=1, talk_seconds=30)
    data = dial(emulator, callback_sink)
    (terminal,) = (r["body"] for r in callback_sink.wait_for(1, path="/terminal"))
    assert terminal["status"] == "2" and terminal["disposition"] is None and terminal["callDisposed"] is None
    assert 25 <= terminal["talktime"] <= 60  # platform seconds, not the 0.3 s it took
    assert parse(terminal).state == "ended"
    assert dispose(emulator, data).status_code == 200
    assert callback_sink.wait_for(2, path="/terminal")[1]["body"]["disposition"] == "Interested"


def test_terminal_can_be_held_until_the_patch(emulator, callback_sink):
    control(emulator, "POST", "config", {"terminal_on_hangup": False})
    script(emulator, result="busy", agent_ring_seconds=1, ring_seconds=1)
    data = dial(emulator, callback_sink)
    callback_sink.wait_for(1, path="/connect")
    time.sleep(0.3)
    assert not [r for r in callback_sink.received if r["path"] == "/terminal"]
    assert dispose(emulator, data).status_code == 200
    (terminal,) = (r["body"] for r in callback_sink.wait_for(1, path="/terminal"))
    assert terminal["status"] == "busy" and terminal["disposition"] == "Interested"


def test_control_hangup_ends_a_connected_call_now(emulator, callback_sink):
    script(emulator, result="answer", agent_ring_seconds=1, ring_seconds=1)
    data = dial(emulator, callback_sink)
    callback_sink.wait_for(2, path="/connect")
    call = control(emulator, "POST", f"calls/{data['callID']}/hangup")
    assert call["state"] == "ended" and call["endStatus"] == "completed"
    assert callback_sink.wait_for(1, path="/terminal")[0]["body"]["status"] == "2"


# -- retries and callback faults --------------------------------------------------------------------------------


def test_a_terminal_callback_is_retried_twice_a_minute_apart(emulator, callback_sink):
    script(emulator, result="answer", agent_ring_seconds=1, ring_seconds=1)
    data = {"connectCallbackUrl": "", "terminalCallbackUrl": f"{callback_sink.url}/terminal"}
    call = dial(emulator, **data)
    callback_sink.statuses = [500, 500, 500, 500]
    assert dispose(emulator, call).status_code == 200
    attempts = callback_sink.wait_for(3, path="/terminal", timeout=10)
    time.sleep(3 * MINUTE)  # long enough for a fourth attempt, which must not come
    assert len(callback_sink.received) == 3
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(attempts)]
    assert all(0.4 < gap < 3 for gap in gaps), gaps
    assert attempts[0]["body"] == attempts[2]["body"]
    logged = emulator.callbacks(label="call-ended")
    assert [(r["attempt"], r["status"]) for r in logged] == [(1, 500), (2, 500), (3, 500)]


def test_a_connect_callback_is_retried_once_a_minute_later(emulator, callback_sink):
    script(emulator, result="answer", agent_ring_seconds=1, ring_seconds=6000)  # no customer leg
    callback_sink.statuses = [500, 500, 500]
    dial(emulator, connectCallbackUrl=f"{callback_sink.url}/connect")
    attempts = callback_sink.wait_for(2, path="/connect", timeout=10)
    time.sleep(2 * MINUTE)
    assert len(callback_sink.received) == 2
    assert 0.4 < attempts[1]["at"] - attempts[0]["at"] < 3
    assert callback_sink.received[0]["body"] == callback_sink.received[1]["body"]


def test_a_callback_that_gets_200_is_not_retried(emulator, callback_sink):
    callback_sink.statuses = [500]
    script(emulator, result="answer", agent_ring_seconds=1, ring_seconds=6000)
    dial(emulator, connectCallbackUrl=f"{callback_sink.url}/connect")
    callback_sink.wait_for(2, path="/connect", timeout=10)
    time.sleep(2 * MINUTE)
    assert [r["status"] for r in callback_sink.received] == [500, 200]


def test_callback_faults_duplicate_drop_and_fail(emulator, callback_sink):
    emulator.control("POST", "callback-faults", {"kind": "drop", "label": "agent-connected"})
    emulator.control("POST", "callback-faults", {"kind": "fail", "label": "customer-connected"})
    emulator.control("POST", "callback-faults", {"kind": "duplicate", "label": "call-ended"})
    script(emulator, result="answer", agent_ring_seconds=1, ring_seconds=1)
    data = dial(emulator, callback_sink)
    (customer,) = callback_sink.wait_for(1, path="/connect", timeout=10)
    assert customer["body"]["event"] == "customer-connected"
    assert dispose(emulator, data).status_code == 200
    first, second = callback_sink.wait_for(2, path="/terminal")
    assert first["body"] == second["body"]
    assert parse(first["body"]).key == parse(second["body"]).key  # the adapter sees one event
    assert [r["dropped"] for r in emulator.callbacks(label="agent-connected")] == [True]
    failed = emulator.callbacks(label="customer-connected")
    assert [(r["attempt"], r["error"] != "") for r in failed] == [(1, True), (2, False)]


# -- Append Campaign --------------------------------------------------------------------------------------------


def seed_campaign_body(mapping: str) -> str:
    return (
        (FIXTURES / "append_campaign_body.txt")
        .read_text()
        .replace('"global"/"inline"/"all-agents"', f'"{mapping}"')
    )


def test_the_seed_campaign_body_verbatim_is_not_json_and_is_refused(emulator):
    raw = (FIXTURES / "append_campaign_body.txt").read_text()
    answer = api(
        emulator, "POST", "/campaign/595", data=raw, headers=AUTH | {"Content-Type": "application/json"}
    )
    assert answer.status_code == 500 and answer.json() == fixture_json("append_campaign_500.json")


@pytest.mark.parametrize(
    ("mapping", "first_agents"),
    [
        ("global", ["ashwin@example.com", "alice@example.com"]),
        ("inline", ["john@example.com", "emma@example.com"]),
        ("all-agents", []),
    ],
)
def test_the_seed_campaign_body_is_appended_for_each_mapping(emulator, mapping, first_agents):
    answer = api(
        emulator,
        "POST",
        "/campaign/595",
        data=seed_campaign_body(mapping),
        headers=AUTH | {"Content-Type": "application/json"},
    )
    assert answer.status_code == 200 and answer.json() == fixture_json("append_campaign_200.json")
    campaign = control(emulator, "GET", "campaigns/595/leads")
    assert campaign["name"] == "Example Campaign"
    assert campaign["customFieldNames"] == {
        "customField1Name": "Name",
        "customField2Name": "Brand",
        "customField3Name": "Product",
    }
    assert campaign["terminalCallbackUrl"] == "http://api.example.com/call-data"
    assert campaign["connectCallbackUrl"] == "http://api.example.com/connect-data"
    assert [lead["number"] for lead in campaign["leads"]] == [
        "+919876543210",
        "+917994771185",
        "+919876543210",
        "+919876543210",
    ]
    assert campaign["leads"][0]["agents"] == first_agents
    assert [lead["customFields"]["customField1"] for lead in campaign["leads"]] == [
        "Max",
        "Alex",
        "Sophia",
        "Oliver",
    ]
    assert {lead["agentMapping"] for lead in campaign["leads"]} == {mapping}


def test_appends_accumulate_and_default_the_name(emulator):
    body = {"customerData": {"jsonData": [{"number": "+911"}]}}
    assert api(emulator, "POST", "/campaign/7", json=body).status_code == 200
    assert api(emulator, "POST", "/campaign/7", json=body).status_code == 200
    campaign = control(emulator, "GET", "campaigns/7/leads")
    assert campaign["name"] == "Campaign::7" and [lead["append"] for lead in campaign["leads"]] == [1, 2]
    assert campaign["leads"][0]["agentMapping"] == "all-agents"


@pytest.mark.parametrize(
    "body",
    [
        {"agentMapping": "implicit", "customerData": {"jsonData": [{"number": "+911"}]}},
        {"agentMapping": "global", "customerData": {"jsonData": [{"number": "+911"}]}},
        {"agentMapping": "global", "agents": "a@x", "customerData": {"jsonData": [{"number": "+911"}]}},
        {"customerData": {}},
        {"customerData": {"jsonData": {"number": "+911"}}},
        {"customerData": {"jsonData": []}},
        {"customerData": {"jsonData": [{"customField1": "no number"}]}},
        {"customFieldNames": {"Name": "x"}, "customerData": {"jsonData": [{"number": "+911"}]}},
        [],
    ],
    ids=[
        "bad-mapping",
        "global-no-agents",
        "agents-not-list",
        "no-jsondata",
        "jsondata-not-list",
        "jsondata-empty",
        "row-no-number",
        "bad-field-name-key",
        "not-object",
    ],
)
def test_a_bad_campaign_body_gets_the_seeds_500(emulator, body):
    answer = api(emulator, "POST", "/campaign/595", json=body)
    assert answer.status_code == 500 and answer.json() == fixture_json("append_campaign_500.json")


def test_a_campaign_id_that_is_not_a_number_gets_the_seeds_500(emulator):
    answer = api(emulator, "POST", "/campaign/abc", json={"customerData": {"jsonData": [{"number": "+911"}]}})
    assert answer.status_code == 500 and answer.json() == fixture_json("append_campaign_500.json")


def sheet(text: str) -> dict[str, Any]:
    return {"campaign-sheet": ("leads.csv", text.encode(), "text/csv")}


def test_a_csv_sheet_with_repeated_and_comma_separated_agents(emulator):
    files = sheet("number,Name,Brand\n+911,Max,Acme\n+912,Alex,\n")
    answer = api(
        emulator,
        "POST",
        "/campaign/9",
        files=files,
        data=[("agents", "a@x.com"), ("agents", "b@x.com,c@x.com")],
    )
    assert answer.status_code == 200 and answer.json() == fixture_json("append_campaign_200.json")
    campaign = control(emulator, "GET", "campaigns/9/leads")
    assert campaign["customFieldNames"] == {"customField1Name": "Name", "customField2Name": "Brand"}
    assert campaign["leads"][0] == {
        "number": "+911",
        "agentMapping": "global",
        "agents": ["a@x.com", "b@x.com", "c@x.com"],
        "customFields": {"customField1": "Max", "customField2": "Acme"},
        "source": "csv",
        "append": 1,
    }
    assert campaign["leads"][1]["customFields"] == {"customField1": "Alex"}


def test_a_csv_sheet_with_in_file_agents_and_with_all_agents(emulator):
    files = sheet('number,agents,customField3\n+911,"a@x.com,b@x.com",x\n+912,c@x.com,y\n')
    assert api(emulator, "POST", "/campaign/9", files=files, data={"agents": "in-file"}).status_code == 200
    leads = control(emulator, "GET", "campaigns/9/leads")["leads"]
    assert [lead["agents"] for lead in leads] == [["a@x.com", "b@x.com"], ["c@x.com"]]
    assert leads[0]["customFields"] == {"customField3": "x"}
    assert api(emulator, "POST", "/campaign/10", files=sheet("Number\n+911\n+912\n")).status_code == 200
    leads = control(emulator, "GET", "campaigns/10/leads")["leads"]
    assert [(lead["agentMapping"], lead["agents"]) for lead in leads] == [("all-agents", [])] * 2


@pytest.mark.parametrize(
    ("files", "data"),
    [
        ({}, {"agents": "a@x.com"}),
        (sheet("phone,name\n+911,x\n+912,y\n"), {}),
        (sheet("number,name\n+911,x\n+912,y\n"), {"agents": "in-file"}),
        (sheet("number\n+911\n"), {}),
        (sheet("number,name\n+911,x\n,y\n"), {"agents": "a@x.com"}),
        (sheet("number\n"), {"agents": "a@x.com"}),
    ],
    ids=[
        "no-sheet",
        "no-number-column",
        "in-file-no-agent-column",
        "one-lead-no-agents",
        "row-no-number",
        "no-rows",
    ],
)
def test_a_bad_campaign_sheet_gets_the_seeds_500(emulator, files, data):
    if not files:
        files = {"other": ("x.txt", b"x", "text/plain")}
    answer = api(emulator, "POST", "/campaign/9", files=files, data=data)
    assert answer.status_code == 500 and answer.json() == fixture_json("append_campaign_500.json")


# -- control API --------------------------------------------------------------------------------------------------


def test_reset_clears_calls_campaigns_agents_and_settings(emulator):
    dial(emulator)
    control(emulator, "POST", "agents", {"agentID": 1, "agentUsername": "a@x.com"})
    control(emulator, "POST", "config", {"completed_status": "completed"})
    api(emulator, "POST", "/campaign/1", json={"customerData": {"jsonData": [{"number": "+911"}]}})
    emulator.reset()
    assert control(emulator, "GET", "calls") == [] and control(emulator, "GET", "campaigns") == []
    assert control(emulator, "GET", "agents") == []
    assert control(emulator, "GET", "config")["completed_status"] == "2"
    assert requests.get(f"{emulator.url}/_emulator/ryng/campaigns/1/leads", timeout=5).status_code == 404
    assert dial(emulator)["callID"] == 16703  # ids start again where the seed's example does
