"""The Genesys GWS emulator over real HTTP: sessions, CSRF, REST operations, call progress and the
CometD server they notify through. Time runs at 0.01 (tests/emulator_fixtures.py), connects hold 1 s."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "genesys"
SEED_MESSAGE = json.loads((FIXTURES / "seed_004_cometd_message.json").read_text())
SEED_DIAL = json.loads((FIXTURES / "seed_004_dial_request.json").read_text())


class Gws:
    """A hand-driven GWS client: one cookie session, Basic auth, the CSRF token, one CometD client."""

    def __init__(self, url: str, user: str = "agent1", password: str = "demo"):
        self.url = url
        self.http = requests.Session()
        self.http.auth = (user, password)
        answer = self.get("/me/devices")
        assert answer.status_code == 200, answer.text
        self.device_id = answer.json()["devices"][0]["id"]
        self.device_path = f"/devices/{self.device_id}"
        self.csrf = answer.headers.get("X-CSRF-TOKEN", "")
        self.client_id = ""
        self.inbox: list[dict[str, Any]] = []

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(f"{self.url}/api/v2{path}", timeout=5, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        headers = {"X-CSRF-TOKEN": self.csrf} if self.csrf else {}
        return self.http.post(f"{self.url}/api/v2{path}", json=body, headers=headers, timeout=5, **kwargs)

    def ok(self, path: str, body: Any) -> dict[str, Any]:
        answer = self.post(path, body)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"statusCode": 0}
        return answer.json()

    # -- CometD -----------------------------------------------------------------------------
    def bayeux(self, messages: list[dict[str, Any]], timeout: float = 5) -> list[dict[str, Any]]:
        headers = {"X-CSRF-TOKEN": self.csrf} if self.csrf else {}
        answer = self.http.post(
            f"{self.url}/api/v2/notifications", json=messages, headers=headers, timeout=timeout
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def handshake(self, channels: list[str] | str = "/v2/me/*") -> str:
        reply = self.bayeux(
            [{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}]
        )[0]
        assert reply["successful"], reply
        self.client_id = reply["clientId"]
        sub = self.bayeux(
            [{"channel": "/meta/subscribe", "clientId": self.client_id, "subscription": channels}]
        )
        assert sub[0]["successful"], sub
        self.connect()  # the first connect returns at once
        return self.client_id

    def connect(self) -> list[dict[str, Any]]:
        replies = self.bayeux(
            [
                {
                    "channel": "/meta/connect",
                    "clientId": self.client_id,
                    "connectionType": "long-polling",
                    "id": "c",
                }
            ]
        )
        self.inbox += [r for r in replies if not r["channel"].startswith("/meta/")]
        return replies

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 8) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for message in self.inbox:
                if predicate(message):
                    self.inbox.remove(message)
                    return message
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching message; inbox: {self.inbox}")
            self.connect()

    def call_states(self, call_id: str, until: str = "Released") -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["call"]["state"] != until:
            seen.append(self.wait_for(lambda m: m["data"].get("call", {}).get("id") == call_id)["data"])
        return seen

    def start_session(self) -> None:
        self.ok("/me", {"operationName": "StartContactCenterSession", "channels": ["voice"]})

    def dial(self, number: str, **extra: Any) -> str:
        body = {
            "operationName": "Dial",
            "devicePath": self.device_path,
            "destination": {"phoneNumber": number},
        }
        body.update(extra)
        self.ok(f"/me/devices/{self.device_id}/calls", body)
        first = self.wait_for(lambda m: m["channel"] == "/v2/me/calls")
        return first["data"]["call"]["id"]


@pytest.fixture
def gws(emulator) -> Gws:
    return Gws(emulator.url)


def load_campaign(emulator, name: str = "Spring", rows: list[dict[str, Any]] | None = None) -> list[int]:
    rows = rows if rows is not None else [{"phoneNumber": "+14155550101", "customerName": "Ada"}]
    return emulator.control(
        "POST", "genesys/campaigns", {"name": name, "callingList": f"{name}_list", "records": rows}
    )["recordHandles"]


def script(emulator, **outcome: Any) -> None:
    emulator.control("POST", "outcomes", {"platform": "genesys", **outcome})


# -- session -------------------------------------------------------------------------------------
@pytest.mark.parametrize("auth", [None, ("agent1", "wrong"), ("nobody", "demo")])
def test_every_request_needs_basic_auth(emulator, auth):
    for method, path in (("GET", "/api/v2/me"), ("POST", "/api/v2/me"), ("POST", "/api/v2/notifications")):
        answer = requests.request(method, f"{emulator.url}{path}", auth=auth, json={}, timeout=5)
        assert answer.status_code == 401
        assert answer.json()["statusCode"] == 20
        assert "Set-Cookie" not in answer.headers


def test_cookie_session_and_csrf_token(emulator):
    http = requests.Session()
    http.auth = ("agent1", "demo")
    first = http.get(f"{emulator.url}/api/v2/me", timeout=5)
    assert first.json()["statusCode"] == 0
    assert "JSESSIONID" in first.cookies
    assert first.headers["X-CSRF-HEADER"] == "X-CSRF-TOKEN"
    token = first.headers["X-CSRF-TOKEN"]
    second = http.get(f"{emulator.url}/api/v2/me/devices", timeout=5)
    assert "Set-Cookie" not in second.headers  # the cookie names the session now
    assert second.headers["X-CSRF-TOKEN"] == token  # one token per session

    start = {"operationName": "StartContactCenterSession", "channels": ["voice"]}
    refused = http.post(f"{emulator.url}/api/v2/me", json=start, timeout=5)
    assert refused.status_code == 403 and refused.json()["statusCode"] == 3
    wrong = http.post(f"{emulator.url}/api/v2/me", json=start, headers={"X-CSRF-TOKEN": "nope"}, timeout=5)
    assert wrong.status_code == 403
    accepted = http.post(f"{emulator.url}/api/v2/me", json=start, headers={"X-CSRF-TOKEN": token}, timeout=5)
    assert accepted.json() == {"statusCode": 0}

    # Another session's token is no good, and a write that opens a session cannot carry a token.
    other = requests.Session()
    other.auth = ("agent1", "demo")
    fresh = other.post(f"{emulator.url}/api/v2/me", json=start, headers={"X-CSRF-TOKEN": token}, timeout=5)
    assert fresh.status_code == 403
    assert "JSESSIONID" in fresh.cookies
    assert fresh.cookies["JSESSIONID"] != first.cookies["JSESSIONID"]


def test_without_csrf_protection_writes_need_no_token(emulator):
    emulator.control("POST", "config", {"genesys_csrf": False})
    http = requests.Session()
    http.auth = ("agent1", "demo")
    answer = http.get(f"{emulator.url}/api/v2/me", timeout=5)
    assert "X-CSRF-TOKEN" not in answer.headers and "X-CSRF-HEADER" not in answer.headers
    start = {"operationName": "StartContactCenterSession", "channels": ["voice"]}
    assert http.post(f"{emulator.url}/api/v2/me", json=start, timeout=5).json() == {"statusCode": 0}


def test_me_with_subresources_and_devices(gws):
    me = gws.get("/me", params={"subresources": "*"}).json()
    assert me["statusCode"] == 0
    user = me["user"]
    assert user["userName"] == "agent1"
    assert user["devices"][0]["id"] == gws.device_id
    assert user["devices"][0]["path"] == gws.device_path
    assert user["channels"] == []  # no contact-center session yet
    assert "devices" not in gws.get("/me").json()["user"]
    gws.start_session()
    channels = gws.get("/me", params={"subresources": "*"}).json()["user"]["channels"]
    assert channels[0]["name"] == "voice"
    assert channels[0]["userState"]["state"] == "NotReady"


def test_contact_center_session_and_agent_states(gws):
    answer = gws.post("/me/channels/voice", {"operationName": "Ready"})
    assert answer.status_code == 400 and answer.json()["statusCode"] == 2  # no session yet
    assert gws.post("/me", {"operationName": "StartContactCenterSession"}).json()["statusCode"] == 1
    gws.handshake()
    gws.start_session()

    def device_state(state: str) -> dict[str, Any]:
        message = gws.wait_for(
            lambda m: (
                m["channel"] == "/v2/me/devices" and m["data"]["devices"][0]["userState"]["state"] == state
            )
        )
        assert message["data"]["messageType"] == "DeviceStateChangeMessage"
        assert message["data"]["devices"][0]["id"] == gws.device_id
        return message["data"]["devices"][0]["userState"]

    device_state("NotReady")
    gws.ok("/me/channels/voice", {"operationName": "Ready"})
    assert device_state("Ready")["displayName"] == "Ready"
    gws.ok("/me/channels/voice", {"operationName": "NotReady", "reasonCode": "Lunch"})
    assert device_state("NotReady")["reason"] == "Lunch"
    gws.ok("/me/channels/voice", {"operationName": "AfterCallWork"})
    device_state("AfterCallWork")
    assert gws.post("/me/channels/voice", {"operationName": "Dance"}).json()["statusCode"] == 1
    gws.ok("/me", {"operationName": "EndContactCenterSession"})
    device_state("LoggedOut")


def test_a_supervisor_changes_the_agents_state_on_the_platform(emulator, gws):
    url = f"{emulator.url}/_emulator/genesys/users/agent1/state"
    assert requests.post(url, json={"state": "NotReady"}, timeout=5).status_code == 409  # no session
    gws.handshake()
    gws.start_session()
    gws.ok("/me/channels/voice", {"operationName": "Ready"})
    assert requests.post(url, json={"state": "Dance"}, timeout=5).status_code == 400
    unknown = f"{emulator.url}/_emulator/genesys/users/nobody/state"
    assert requests.post(unknown, json={"state": "Ready"}, timeout=5).status_code == 404

    answer = requests.post(url, json={"state": "NotReady", "reason": "Coaching"}, timeout=5)
    assert answer.json() == {"agentState": "NotReady", "reason": "Coaching"}
    message = gws.wait_for(
        lambda m: m["channel"] == "/v2/me/devices" and m["data"]["devices"][0]["userState"].get("reason")
    )
    assert message["data"]["messageType"] == "DeviceStateChangeMessage"
    assert message["data"]["devices"][0]["userState"] == {
        "id": "NotReady-agent1",
        "state": "NotReady",
        "displayName": "Not Ready",
        "reason": "Coaching",
    }


def test_a_silent_change_is_only_seen_by_reading_the_devices(emulator, gws):
    gws.handshake()
    gws.start_session()
    gws.wait_for(lambda m: m["channel"] == "/v2/me/devices")  # the session's own NotReady
    url = f"{emulator.url}/_emulator/genesys/users/agent1/state"
    requests.post(url, json={"state": "Ready", "notify": False}, timeout=5).raise_for_status()
    gws.connect()  # held for the CometD timeout: nothing comes
    assert not [m for m in gws.inbox if m["channel"] == "/v2/me/devices"]
    assert gws.get("/me/devices").json()["devices"][0]["userState"]["state"] == "Ready"


# -- outbound preview ----------------------------------------------------------------------------
def test_preview_session_hands_out_records_then_no_records(emulator, gws):
    [handle] = load_campaign(
        emulator, rows=[{"phoneNumber": "+14155550101", "customerName": "Ada", "Plan": "Gold"}]
    )
    gws.handshake()
    path = "/me/outbound-campaigns/Spring"
    assert gws.post(path, {"operationName": "GetPreviewRecord"}).json()["statusCode"] == 2
    start = {
        "operationName": "StartPreviewSession",
        "applicationId": "OCS_App",
        "devicePath": gws.device_path,
    }
    assert gws.post(path, start).json()["statusCode"] == 2  # needs a contact-center session
    gws.start_session()
    assert gws.post(path, {"operationName": "StartPreviewSession"}).json()["statusCode"] == 1
    assert gws.post("/me/outbound-campaigns/Nope", start).json()["statusCode"] == 6
    gws.ok(path, start)
    started = gws.wait_for(lambda m: m["data"].get("messageType") == "OutboundCampaignMessage")
    assert started["channel"] == "/v2/me/outbound"
    assert started["data"]["notificationType"] == "PreviewSessionStarted"
    assert started["data"]["campaignName"] == "Spring"

    gws.ok(path, {"operationName": "GetPreviewRecord"})
    offer = gws.wait_for(lambda m: m["data"].get("notificationType") == "PreviewRecord")["data"]
    assert offer["messageType"] == "OutboundRecordMessage"
    record = offer["record"]
    assert record["recordHandle"] == handle
    assert record["phoneNumber"] == "+14155550101"
    assert record["callingList"] == "Spring_list"
    assert record["campaignName"] == "Spring"
    assert record["userData"]["GSW_RECORD_HANDLE"] == handle
    assert record["userData"]["GSW_CAMPAIGN_NAME"] == "Spring"
    assert record["userData"]["GSW_APPLICATION_ID"] == "OCS_App"
    assert record["userData"]["customerName"] == "Ada" and record["userData"]["Plan"] == "Gold"

    gws.ok(path, {"operationName": "GetPreviewRecord"})
    empty = gws.wait_for(lambda m: m["channel"] == "/v2/me/outbound")["data"]
    assert empty == {
        "messageType": "OutboundRecordMessage",
        "notificationType": "NoRecords",
        "campaignName": "Spring",
        "statusMessage": "No Records Available",
    }


def _take_record(emulator, gws: Gws, rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    load_campaign(emulator, rows=rows)
    gws.start_session()
    path = "/me/outbound-campaigns/Spring"
    gws.ok(
        path,
        {"operationName": "StartPreviewSession", "applicationId": "OCS_App", "devicePath": gws.device_path},
    )
    gws.ok(path, {"operationName": "GetPreviewRecord"})
    return gws.wait_for(lambda m: m["data"].get("notificationType") == "PreviewRecord")["data"]["record"]


def _record_op(gws: Gws, record: dict[str, Any], operation: str, **extra: Any) -> requests.Response:
    body = {
        "operationName": operation,
        "applicationId": "OCS_App",
        "campaignName": record["campaignName"],
        "callingList": record["callingList"],
        "devicePath": gws.device_path,
        **extra,
    }
    return gws.post(f"/me/outbound-records/{record['recordHandle']}", body)


def _ack(gws: Gws) -> dict[str, Any]:
    return gws.wait_for(lambda m: str(m["data"].get("notificationType", "")).endswith("Acknowledge"))["data"]


def test_complete_record_is_acknowledged_and_final(emulator, gws):
    gws.handshake()
    record = _take_record(emulator, gws)
    assert _record_op(gws, record, "CompleteRecord", campaignName="").json()["statusCode"] == 1
    assert (
        gws.post(
            "/me/outbound-records/99999",
            {"operationName": "CompleteRecord", "campaignName": "Spring", "callingList": "x"},
        ).json()["statusCode"]
        == 6
    )
    assert _record_op(gws, record, "Finish").json()["statusCode"] == 1
    assert _record_op(gws, record, "CompleteRecord", callResult="Answer").json() == {"statusCode": 0}
    ack = _ack(gws)
    assert ack["notificationType"] == "RecordProcessedAcknowledge"
    assert ack["recordHandle"] == record["recordHandle"]
    answer = _record_op(gws, record, "CompleteRecord")
    assert answer.status_code == 400 and answer.json()["statusCode"] == 2  # already processed
    state = emulator.control("GET", "genesys/state")["records"][str(record["recordHandle"])]
    assert state["status"] == "completed" and state["callResult"] == "Answer"


def test_reject_record_returns_it_to_the_pool(emulator, gws):
    gws.handshake()
    record = _take_record(emulator, gws)
    assert _record_op(gws, record, "RejectRecord").json() == {"statusCode": 0}
    assert _ack(gws)["notificationType"] == "RecordRejectAcknowledge"
    gws.ok("/me/outbound-campaigns/Spring", {"operationName": "GetPreviewRecord"})
    again = gws.wait_for(lambda m: m["data"].get("notificationType") == "PreviewRecord")["data"]["record"]
    assert again["recordHandle"] == record["recordHandle"]


def test_reschedule_and_update_record(emulator, gws):
    gws.handshake()
    record = _take_record(emulator, gws)
    assert _record_op(gws, record, "RescheduleRecord", callbackType="Personal").json()["statusCode"] == 1
    assert (
        _record_op(gws, record, "RescheduleRecord", callbackType="Soon", timestamp=1).json()["statusCode"]
        == 1
    )
    assert _record_op(gws, record, "UpdateRecord", userData={"Plan": "Silver"}).json() == {"statusCode": 0}
    update = _ack(gws)
    assert update["notificationType"] == "UpdateCallCompletionStatsAcknowledge"
    assert update["record"]["userData"]["Plan"] == "Silver"
    due = int(time.time()) - 1  # already due, so the next GetPreviewRecord hands it out again
    assert _record_op(gws, record, "RescheduleRecord", callbackType="Personal", timestamp=due).json() == {
        "statusCode": 0
    }
    assert _ack(gws)["notificationType"] == "RecordRescheduleAcknowledge"
    gws.ok("/me/outbound-campaigns/Spring", {"operationName": "GetPreviewRecord"})
    callback = gws.wait_for(lambda m: m["data"].get("notificationType") == "PreviewRecord")["data"]["record"]
    assert callback["recordType"] == "PersonalCallback"
    assert (
        _record_op(gws, callback, "RescheduleRecord", callbackType="Campaign", timestamp=due + 3600).json()[
            "statusCode"
        ]
        == 0
    )
    assert _ack(gws)["notificationType"] == "ScheduledRecordRescheduleAcknowledge"


# -- calls ---------------------------------------------------------------------------------------
def test_dial_preview_record_follows_the_seed(emulator, gws):
    gws.handshake(["/v2/me/calls", "/v2/me/outbound"])
    record = _take_record(emulator, gws, rows=[{"phoneNumber": "5001"}])
    script(emulator, result="answer", talk_seconds=3)
    # The seed's body (004), as real JSON, with this agent's device and the offered record.
    body = {
        **SEED_DIAL,
        "devicePath": gws.device_path,
        "outboundRecord": {**SEED_DIAL["outboundRecord"], **record},
    }
    answer = gws.post(f"/me/devices/{gws.device_id}/calls", body)
    assert answer.status_code == 200 and answer.json() == {"statusCode": 0}
    first = gws.wait_for(lambda m: m["channel"] == SEED_MESSAGE["channel"] == "/v2/me/calls")
    seed_data, data = SEED_MESSAGE["data"], first["data"]
    assert set(seed_data) <= set(data)
    assert data["messageType"] == "CallStateChangeMessage" and data["notificationType"] == "StatusChange"
    assert set(seed_data["call"]) <= set(data["call"])
    call = data["call"]
    assert call["state"] == "Dialing"
    assert call["capabilities"] == seed_data["call"]["capabilities"]
    assert call["callType"] == "Internal"  # as in the seed, 5001 is an internal DN
    assert call["participants"] == seed_data["call"]["participants"]
    assert call["dnis"] == "5001" and call["duration"] == "0"
    assert call["uri"].endswith(f"/api/v2/me/calls/{call['id']}") and call["path"] == f"/calls/{call['id']}"
    assert call["deviceUri"].endswith(f"/api/v2/devices/{gws.device_id}")
    assert call["userData"]["GSW_RECORD_HANDLE"] == record["recordHandle"]
    assert data["phoneNumber"] == "5001"  # the agent's own DN, like the seed's 5005
    assert data["extensions"] == {"WrapUpTime": 0, "BusinessCall": 0}

    rest = gws.call_states(call["id"])
    assert [m["call"]["state"] for m in rest] == ["Ringing", "Established", "Released"]
    released = rest[-1]
    assert released["call"]["capabilities"] == []
    assert released["extensions"]["CallResult"] == "Answer"
    listed = gws.get("/me/calls").json()["calls"]
    assert [(c["id"], c["state"]) for c in listed] == [(call["id"], "Released")]


@pytest.mark.parametrize(
    ("result", "states", "call_result"),
    [
        ("no_answer", ["Dialing", "Ringing", "Released"], "NoAnswer"),
        ("busy", ["Dialing", "Released"], "Busy"),
        ("fail", ["Dialing", "Released"], "GeneralError"),
    ],
)
def test_unanswered_outcomes_release_without_established(emulator, gws, result, states, call_result):
    gws.handshake()
    gws.start_session()
    script(emulator, result=result)
    call_id = gws.dial("+14155550123")
    seen = gws.call_states(call_id)
    assert ["Dialing", *[m["call"]["state"] for m in seen]] == states
    assert seen[-1]["extensions"]["CallResult"] == call_result
    assert seen[-1]["call"]["callType"] == "Outbound"


def test_error_outcome_fails_the_dial_itself(emulator, gws):
    gws.start_session()
    script(emulator, result="error")
    body = {
        "operationName": "Dial",
        "devicePath": gws.device_path,
        "destination": {"phoneNumber": "+14155550123"},
    }
    answer = gws.post(f"/me/devices/{gws.device_id}/calls", body)
    assert answer.status_code == 500 and answer.json()["statusCode"] == 4
    assert gws.get("/me/calls").json() == {"statusCode": 0, "calls": []}


def test_dial_validation(emulator, gws):
    calls = f"/me/devices/{gws.device_id}/calls"
    body = {
        "operationName": "Dial",
        "devicePath": gws.device_path,
        "destination": {"phoneNumber": "+14155550123"},
    }
    assert gws.post(calls, body).json()["statusCode"] == 2  # no contact-center session
    gws.start_session()
    assert gws.post(calls, {**body, "destination": {}}).json()["statusCode"] == 1
    assert gws.post(calls, {**body, "operationName": "Call"}).json()["statusCode"] == 1
    assert gws.post("/me/devices/not-mine/calls", body).json()["statusCode"] == 6
    assert gws.post(calls, {**body, "devicePath": "/devices/1234567890"}).json()["statusCode"] == 6


def test_hangup_releases_with_empty_capabilities(emulator, gws):
    gws.handshake()
    gws.start_session()
    script(emulator, result="answer", talk_seconds=None)
    call_id = gws.dial("+14155550123")
    assert gws.call_states(call_id, until="Established")[-1]["call"]["capabilities"]
    live = gws.get(f"/me/calls/{call_id}").json()["call"]
    assert live["state"] == "Established"
    body = {
        "operationName": "Dial",
        "devicePath": gws.device_path,
        "destination": {"phoneNumber": "+14155550999"},
    }
    assert gws.post(f"/me/devices/{gws.device_id}/calls", body).json()["statusCode"] == 2  # busy device
    gws.ok(f"/me/calls/{call_id}", {"operationName": "Hangup"})
    released = gws.call_states(call_id)[-1]
    assert released["call"]["state"] == "Released"
    assert released["call"]["capabilities"] == []
    assert released["extensions"]["CallResult"] == "Answer"
    assert gws.post(f"/me/calls/{call_id}", {"operationName": "Hangup"}).json()["statusCode"] == 2
    missing = gws.post("/me/calls/NOSUCHCALL", {"operationName": "Hangup"})
    assert missing.status_code == 404 and missing.json()["statusCode"] == 6
    assert gws.get("/me/calls/NOSUCHCALL").json()["statusCode"] == 6


def test_hangup_before_answer_is_abandoned(emulator, gws):
    gws.handshake()
    gws.start_session()
    script(emulator, result="answer", agent_ring_seconds=300)
    call_id = gws.dial("+14155550123")
    gws.ok(f"/me/calls/{call_id}", {"operationName": "Hangup"})
    assert gws.call_states(call_id)[-1]["extensions"]["CallResult"] == "Abandoned"


# -- CometD ----------------------------------------------------------------------------------------
def test_handshake_advice_and_unsupported_transport(emulator, gws):
    replies = gws.bayeux(
        [
            {
                "channel": "/meta/handshake",
                "version": "1.0",
                "supportedConnectionTypes": ["long-polling"],
                "id": "7",
            }
        ]
    )
    reply = replies[0]
    assert reply["successful"] is True and reply["id"] == "7" and reply["clientId"]
    assert reply["version"] == "1.0" and reply["supportedConnectionTypes"] == ["long-polling"]
    assert reply["advice"] == {"reconnect": "retry", "interval": 0, "timeout": 1000}
    refused = gws.bayeux(
        [{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["websocket"]}]
    )
    assert refused[0]["successful"] is False and refused[0]["error"].startswith("301")


def test_notifications_need_auth_and_csrf(emulator, gws):
    handshake = [
        {"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}
    ]
    assert requests.post(f"{emulator.url}/api/v2/notifications", json=handshake, timeout=5).status_code == 401
    answer = gws.http.post(f"{emulator.url}/api/v2/notifications", json=handshake, timeout=5)
    assert answer.status_code == 403


def test_batch_subscribe_and_connect_in_one_post_with_ids_echoed(emulator, gws):
    reply = gws.bayeux(
        [{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}]
    )
    gws.client_id = client = reply[0]["clientId"]
    replies = gws.bayeux(
        [
            {
                "channel": "/meta/subscribe",
                "clientId": client,
                "subscription": ["/v2/me/calls", "/v2/me/devices"],
                "id": "2",
                "ext": {"ack": True},
            },
            {"channel": "/meta/connect", "clientId": client, "connectionType": "long-polling", "id": "3"},
        ]
    )
    assert [(r["channel"], r["id"], r["successful"]) for r in replies] == [
        ("/meta/subscribe", "2", True),
        ("/meta/connect", "3", True),
    ]
    assert replies[0]["subscription"] == ["/v2/me/calls", "/v2/me/devices"]
    assert replies[1]["advice"]["reconnect"] == "retry"
    denied = gws.bayeux([{"channel": "/meta/subscribe", "clientId": client, "subscription": "/meta/connect"}])
    assert denied[0]["successful"] is False
    published = gws.bayeux([{"channel": "/v2/me/calls", "clientId": client, "data": {}}])
    assert published[0]["successful"] is False and published[0]["error"].startswith("403")


def test_connect_is_held_then_answered_with_queued_messages_batched(emulator, gws):
    gws.handshake("/v2/me/devices")
    started = time.monotonic()
    replies = gws.connect()
    assert time.monotonic() - started >= 0.5  # held (timeout 1000 ms) when nothing is queued
    assert [r["channel"] for r in replies] == ["/meta/connect"]
    assert replies[0]["advice"] == {"reconnect": "retry", "interval": 0, "timeout": 1000}
    gws.start_session()  # NotReady
    gws.ok("/me/channels/voice", {"operationName": "Ready"})
    replies = gws.connect()
    assert [r["channel"] for r in replies] == ["/v2/me/devices", "/v2/me/devices", "/meta/connect"]
    states = [r["data"]["devices"][0]["userState"]["state"] for r in replies[:2]]
    assert states == ["NotReady", "Ready"]
    assert replies[0]["id"] != replies[1]["id"]


def test_subscriptions_filter_channels_and_unsubscribe_stops_delivery(emulator, gws):
    gws.handshake("/v2/me/calls")
    gws.start_session()
    gws.ok("/me/channels/voice", {"operationName": "Ready"})
    assert [r["channel"] for r in gws.connect()] == ["/meta/connect"]  # devices not subscribed
    gws.bayeux([{"channel": "/meta/subscribe", "clientId": gws.client_id, "subscription": "/v2/me/**"}])
    gws.ok("/me/channels/voice", {"operationName": "NotReady"})
    assert gws.wait_for(lambda m: m["channel"] == "/v2/me/devices")
    answer = gws.bayeux(
        [{"channel": "/meta/unsubscribe", "clientId": gws.client_id, "subscription": "/v2/me/**"}]
    )
    assert answer[0]["successful"] is True
    gws.ok("/me/channels/voice", {"operationName": "Ready"})
    assert [r["channel"] for r in gws.connect()] == ["/meta/connect"]


def test_messages_go_only_to_the_users_own_clients(emulator, gws):
    other = Gws(emulator.url, user="agent2")
    other.handshake()
    gws.handshake()
    gws.start_session()
    assert gws.wait_for(lambda m: m["channel"] == "/v2/me/devices")
    assert [r["channel"] for r in other.connect()] == ["/meta/connect"]
    # A client id is bound to its user: agent2 cannot connect with agent1's client.
    stolen = other.bayeux(
        [{"channel": "/meta/connect", "clientId": gws.client_id, "connectionType": "long-polling"}]
    )
    assert stolen[0]["error"] == "402::Unknown client"


def test_drop_clients_makes_the_next_connect_402(emulator, gws):
    gws.handshake()
    assert emulator.control("POST", "genesys/drop-clients") == {"dropped": 1}
    reply = gws.connect()[-1]
    assert reply == {
        "channel": "/meta/connect",
        "id": "c",
        "successful": False,
        "error": "402::Unknown client",
        "advice": {"reconnect": "handshake", "interval": 0},
        "clientId": gws.client_id,
    }
    sub = gws.bayeux([{"channel": "/meta/subscribe", "clientId": gws.client_id, "subscription": "/v2/me/*"}])
    assert sub[0]["error"] == "402::Unknown client"
    gws.handshake()  # a new handshake works and gets a new client id
    assert emulator.control("GET", "genesys/state")["cometd"]["clients"][0]["clientId"] == gws.client_id


def test_client_expires_after_max_interval_without_connect(emulator, gws):
    emulator.control("POST", "config", {"cometd_max_interval_ms": 200})
    gws.handshake()
    time.sleep(0.6)
    assert gws.connect()[-1]["error"] == "402::Unknown client"


def test_disconnect_forgets_the_client(emulator, gws):
    gws.handshake()
    reply = gws.bayeux([{"channel": "/meta/disconnect", "clientId": gws.client_id, "id": "9"}])
    assert reply == [
        {"channel": "/meta/disconnect", "id": "9", "successful": True, "clientId": gws.client_id}
    ]
    assert gws.connect()[-1]["error"] == "402::Unknown client"


def test_reset_clears_everything(emulator, gws):
    load_campaign(emulator)
    gws.handshake()
    gws.start_session()
    emulator.reset()
    state = emulator.control("GET", "genesys/state")
    assert state["campaigns"] == {} and state["records"] == {} and state["users"] == {}
    assert state["sessions"] == [] and state["cometd"]["clients"] == []
