"""The Huawei CC-Gateway emulator over real HTTP: sessions and GUIDs, the long poll, preview offers,
previewCallout and its events, release, logout, faults."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

AGENT = "101"
NUMBER = "88889039"


class Gateway:
    """A bare client of the emulated gateway: raw requests, GUID handled by hand."""

    def __init__(self, url: str, agent: str = AGENT):
        self.url = url
        self.base = f"{url}/agentgateway/resource"
        self.agent = agent
        self.guid = ""

    def call(
        self, method: str, path: str, body: Any = None, guid: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = {"Content-Type": "application/json; charset=UTF-8"}
        guid = self.guid if guid is None else guid
        if guid:
            headers["guid"] = guid
        return requests.request(
            method, f"{self.base}{path}", json=body, headers=headers, timeout=15, **kwargs
        )

    def sign_in(self, status: int = 4, password: str = "demo", **extra: Any) -> requests.Response:
        body = {"password": password, "phonenum": "6001", "status": status, "agenttype": 4, **extra}
        answer = self.call("PUT", f"/onlineagent/{self.agent}", body, guid="")
        if answer.headers.get("Set-GUID"):
            self.guid = answer.headers["Set-GUID"].split("=", 1)[1]
        return answer

    def poll(self, guid: str | None = None) -> requests.Response:
        answer = self.call("GET", f"/agentevent/{self.agent}", guid=guid)
        if answer.headers.get("Set-GUID") and guid is None:
            self.guid = answer.headers["Set-GUID"].split("=", 1)[1]
        return answer

    def events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            assert time.monotonic() < deadline, f"only got {found}"
            answer = self.poll().json()
            assert answer["retcode"] == "0", answer
            if answer["event"]:
                found.append(answer["event"])
        return found

    def event(self, event_type: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self.poll().json()["event"]
            if event and event["eventType"] == event_type:
                return event
        raise AssertionError(f"no {event_type} within {timeout}s")

    def callout(self, called: str, controlid: Any) -> dict[str, Any]:
        body = {"called": called, "callcontrolid": controlid}
        return self.call("PUT", f"/voicecall/{self.agent}/previewCallout", body).json()


def retcode(answer: requests.Response) -> str:
    assert answer.status_code == 200, answer.text  # business failures are HTTP 200
    return answer.json()["retcode"]


@pytest.fixture
def gw(emulator) -> Gateway:
    # Long intervals unless a test shortens them; a short hold keeps empty polls quick.
    emulator.huawei_quiet()
    return Gateway(emulator.url)


def load(emulator, *records: dict[str, Any]) -> None:
    emulator.control("POST", "huawei/campaigns", {"records": list(records)})


def offered(gw: Gateway, emulator, number: str = NUMBER, call_data: str = "lead-1") -> dict[str, Any]:
    load(emulator, {"number": number, "callData": call_data})
    return gw.event("AgentEvent_Preview_CallOut")["content"]


# -- sign-in and GUIDs ---------------------------------------------------------------------------


def test_sign_in_answers_set_guid(gw: Gateway) -> None:
    answer = gw.sign_in()
    assert retcode(answer) == "0"
    assert answer.json()["result"]["workno"] == AGENT
    assert answer.headers["Set-GUID"].startswith("JSESSIONID=")
    assert gw.guid.endswith(".AgentGateway1")
    assert retcode(gw.call("POST", f"/onlineagent/{AGENT}/saybusy")) == "0"


def test_sign_in_refusals(gw: Gateway) -> None:
    assert retcode(gw.sign_in(password="wrong")) == "100-004"
    assert retcode(Gateway(gw.url, agent="999").sign_in()) == "100-004"
    missing_phone = gw.call("PUT", f"/onlineagent/{AGENT}", {"password": "demo"}, guid="")
    assert retcode(missing_phone) == "100-001"
    assert retcode(gw.sign_in(status=9)) == "100-011"
    assert "Set-GUID" not in missing_phone.headers


def test_second_sign_in_is_refused_and_forcelogin_takes_over(gw: Gateway) -> None:
    gw.sign_in()
    first = gw.guid
    assert retcode(gw.sign_in()) == "100-002"
    assert gw.guid == first
    forced = gw.call(
        "PUT", f"/onlineagent/{AGENT}/forcelogin", {"password": "demo", "phonenum": "6001"}, guid=""
    )
    assert retcode(forced) == "0"
    second = forced.headers["Set-GUID"].split("=", 1)[1]
    assert second != first
    assert retcode(gw.call("POST", f"/onlineagent/{AGENT}/sayfree", guid=first)) == "100-006"
    assert retcode(gw.call("POST", f"/onlineagent/{AGENT}/sayfree", guid=second)) == "0"


def test_missing_unknown_and_foreign_guid(gw: Gateway) -> None:
    assert (
        retcode(gw.call("POST", f"/onlineagent/{AGENT}/sayfree", guid="nope")) == "100-006"
    )  # not signed in
    gw.sign_in()
    assert retcode(gw.call("POST", f"/onlineagent/{AGENT}/sayfree", guid="")) == "100-006"
    assert retcode(gw.call("POST", f"/onlineagent/{AGENT}/sayfree", guid="stale.AgentGateway1")) == "100-006"
    other = Gateway(gw.url, agent="102")
    other.sign_in()
    assert retcode(gw.call("POST", f"/onlineagent/{AGENT}/sayfree", guid=other.guid)) == "000-003"


def test_guid_rotates_on_a_poll_answer_and_the_old_one_lives_for_the_grace(gw: Gateway, emulator) -> None:
    # Platform seconds at time scale 0.01: rotate every 0.2 s, old GUID valid for 1 s.
    emulator.control("POST", "config", {"huawei_guid_rotate_seconds": 20, "huawei_guid_grace_seconds": 100})
    gw.sign_in()
    old = gw.guid
    time.sleep(0.3)
    answer = gw.poll()
    assert retcode(answer) == "0"
    assert answer.headers["Set-GUID"] == f"JSESSIONID={gw.guid}"
    assert gw.guid != old
    assert retcode(gw.call("POST", f"/onlineagent/{AGENT}/saybusy", guid=old)) == "0"  # within the grace
    agents = emulator.control("GET", "huawei/agents")
    assert old in agents[AGENT]["retired_guids"]
    time.sleep(1.3)
    assert retcode(gw.call("POST", f"/onlineagent/{AGENT}/saybusy", guid=old)) == "100-006"
    assert retcode(gw.call("POST", f"/onlineagent/{AGENT}/saybusy")) == "0"


def test_forced_rotation_and_a_poll_with_a_retired_guid_learns_the_current_one(gw: Gateway, emulator) -> None:
    gw.sign_in()
    old = gw.guid
    emulator.control("POST", f"huawei/agents/{AGENT}/rotate-guid")
    rotated = gw.poll()
    new = rotated.headers["Set-GUID"].split("=", 1)[1]
    assert new != old
    assert gw.poll(guid=old).headers["Set-GUID"] == f"JSESSIONID={new}"
    assert "Set-GUID" not in gw.poll(guid=new).headers


def test_idle_agent_is_signed_out(gw: Gateway, emulator) -> None:
    emulator.control("POST", "config", {"huawei_idle_signout_seconds": 50})  # 0.5 s real
    gw.sign_in()
    assert retcode(gw.poll()) == "0"
    time.sleep(1.0)
    assert emulator.control("GET", "huawei/agents")[AGENT] == {"signed_in": False}
    assert retcode(gw.poll()) == "100-006"
    assert retcode(gw.sign_in()) == "0"  # and can sign in again without forcelogin


def test_polling_keeps_the_agent_signed_in(gw: Gateway, emulator) -> None:
    # 1 s of idleness allowed; each poll is held 0.3 s and the next follows at once.
    emulator.control("POST", "config", {"huawei_idle_signout_seconds": 100, "huawei_poll_hold_seconds": 0.3})
    gw.sign_in()
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        assert retcode(gw.poll()) == "0"


# -- the long poll ------------------------------------------------------------------------------


def test_long_poll_holds_then_answers_empty(gw: Gateway, emulator) -> None:
    emulator.control("POST", "config", {"huawei_poll_hold_seconds": 0.8})
    gw.sign_in(status=3)
    started = time.monotonic()
    answer = gw.poll().json()
    assert time.monotonic() - started >= 0.6
    assert answer == {"message": "", "retcode": "0", "event": {}}


def test_long_poll_answers_as_soon_as_an_event_is_queued(gw: Gateway, emulator) -> None:
    emulator.control("POST", "config", {"huawei_poll_hold_seconds": 8})
    gw.sign_in(status=3)
    guid = gw.guid
    threading.Timer(0.3, lambda: gw.call("POST", f"/onlineagent/{AGENT}/sayfree", guid=guid)).start()
    started = time.monotonic()
    event = gw.poll().json()["event"]
    assert time.monotonic() - started < 6
    assert event == {"eventType": "AgentState_Ready", "workNo": AGENT, "content": None}


def test_one_event_per_answer(gw: Gateway) -> None:
    gw.sign_in(status=3)
    gw.call("POST", f"/onlineagent/{AGENT}/sayfree")
    gw.call("POST", f"/onlineagent/{AGENT}/saybusy")
    first, second = gw.poll().json(), gw.poll().json()
    assert first["event"]["eventType"] == "AgentState_Ready"
    assert second["event"]["eventType"] == "AgentState_SetNotReady_Success"
    assert gw.poll().json()["event"] == {}


# -- preview offers -----------------------------------------------------------------------------


def test_offer_goes_to_a_ready_agent_only(gw: Gateway, emulator) -> None:
    gw.sign_in(status=3)
    load(emulator, {"number": NUMBER, "callData": '{"lead": 42}'})
    assert gw.poll().json()["event"] == {}  # busy: no offer
    gw.call("POST", f"/onlineagent/{AGENT}/sayfree")
    assert gw.events(1)[0]["eventType"] == "AgentState_Ready"
    offer = gw.events(1)[0]
    assert offer["eventType"] == "AgentEvent_Preview_CallOut"
    assert offer["workNo"] == AGENT
    assert offer["content"]["controlid"].isdigit()
    assert offer["content"]["dialeddigits"] == NUMBER
    assert offer["content"]["callData"] == '{"lead": 42}'
    assert (
        emulator.control("GET", "huawei/agents")[AGENT]["offer"]["controlid"] == offer["content"]["controlid"]
    )


def test_extended_offer_lists_several_numbers(gw: Gateway, emulator) -> None:
    gw.sign_in()
    load(emulator, {"numbers": ["88889039", "88889040"], "callData": "x"})
    offer = gw.event("AgentEvent_Preview_CallOut_Ex")["content"]
    assert offer["dialeddigits"] == "88889039,88889040"
    assert gw.callout("88889040", int(offer["controlid"]))["retcode"] == "0"


def test_record_for_another_agent_is_not_offered(gw: Gateway, emulator) -> None:
    gw.sign_in()
    load(emulator, {"number": NUMBER, "agent": "102"})
    assert gw.poll().json()["event"] == {}
    other = Gateway(gw.url, agent="102")
    other.sign_in()
    assert other.event("AgentEvent_Preview_CallOut")["content"]["dialeddigits"] == NUMBER


def test_saybusy_withdraws_the_offer_and_sayfree_hands_the_next_record(gw: Gateway, emulator) -> None:
    gw.sign_in()
    load(emulator, {"number": "111", "callData": "a"}, {"number": "222", "callData": "b"})
    first = gw.event("AgentEvent_Preview_CallOut")["content"]
    gw.call("POST", f"/onlineagent/{AGENT}/saybusy")
    gw.call("POST", f"/onlineagent/{AGENT}/sayfree")
    second = gw.event("AgentEvent_Preview_CallOut")["content"]
    assert (first["dialeddigits"], second["dialeddigits"]) == ("111", "222")
    assert gw.callout("111", first["controlid"])["retcode"] == "200-036"  # withdrawn
    assert [r["numbers"] for r in emulator.control("GET", "huawei/campaigns")] == [["111"]]


# -- previewCallout -----------------------------------------------------------------------------


def test_seed_example_callout_with_a_string_controlid(gw: Gateway, emulator) -> None:
    gw.sign_in()
    offer = offered(gw, emulator)
    answer = gw.callout(NUMBER, offer["controlid"])  # seed 003 sends "11776" as a string
    assert answer["retcode"] == "0"
    assert answer["message"] == ""
    assert answer["result"].count("-") == 1


def test_answered_call_full_event_sequence(gw: Gateway, emulator) -> None:
    gw.sign_in()
    emulator.control("POST", "outcomes", {"number": NUMBER, "result": "answer", "talk_seconds": 30})
    offer = offered(gw, emulator)
    call_id = gw.callout(NUMBER, int(offer["controlid"]))["result"]
    events = gw.events(7)
    assert [e["eventType"] for e in events] == [
        "AgentOther_PhoneAlerting",
        "AgentOther_PhoneOffhook",
        "AgentEvent_Customer_Alerting",
        "AgentEvent_Talking",
        "AgentEvent_Call_Release",
        "AgentEvent_Customer_Release",
        "AgentState_Ready",
    ]
    assert events[0]["content"] is None
    assert events[2]["content"]["callid"] == call_id
    talking = events[3]["content"]
    assert set(talking) == {"caller", "callid", "called", "feature", "type", "mediaAbility"}
    assert (talking["callid"], talking["called"]) == (call_id, NUMBER)
    assert events[4]["content"] == call_id


@pytest.mark.parametrize("result", ["no_answer", "busy"])
def test_unanswered_call_fails_with_the_bare_call_id(gw: Gateway, emulator, result: str) -> None:
    gw.sign_in()
    emulator.control("POST", "outcomes", {"number": NUMBER, "result": result})
    offer = offered(gw, emulator)
    call_id = gw.callout(NUMBER, offer["controlid"])["result"]
    events = gw.events(5)
    assert [e["eventType"] for e in events] == [
        "AgentOther_PhoneAlerting",
        "AgentOther_PhoneOffhook",
        "AgentEvent_Customer_Alerting",
        "AgentEvent_Call_Out_Fail",
        "AgentState_Ready",
    ]
    assert events[3]["content"] == call_id
    assert events[3]["reason"] == result  # the emulator's documented extension


def test_next_offer_follows_the_end_of_the_call(gw: Gateway, emulator) -> None:
    gw.sign_in()
    emulator.control("POST", "outcomes", {"platform": "huawei", "result": "busy"})
    load(emulator, {"number": "111"}, {"number": "222"})
    first = gw.event("AgentEvent_Preview_CallOut")["content"]
    gw.callout("111", first["controlid"])
    gw.event("AgentState_Ready")
    assert gw.event("AgentEvent_Preview_CallOut")["content"]["dialeddigits"] == "222"


def test_callout_refusals(gw: Gateway, emulator) -> None:
    gw.sign_in()
    offer = offered(gw, emulator)
    assert gw.callout("99999999", offer["controlid"])["retcode"] == "200-001"
    assert gw.callout(NUMBER, int(offer["controlid"]) + 100)["retcode"] == "200-036"
    assert gw.callout(NUMBER, "12a")["retcode"] == "000-002"
    assert gw.callout("", offer["controlid"])["retcode"] == "000-002"
    missing = gw.call("PUT", f"/voicecall/{AGENT}/previewCallout", {"called": NUMBER})
    assert retcode(missing) == "000-002"
    garbled = requests.put(
        f"{gw.base}/voicecall/{AGENT}/previewCallout", data=b"{not json", headers={"guid": gw.guid}, timeout=5
    )
    assert retcode(garbled) == "000-002"
    assert retcode(gw.call("PUT", f"/voicecall/{AGENT}/previewCallout", {}, guid="")) == "100-006"
    # The offer is still pending after all those refusals.
    assert gw.callout(NUMBER, offer["controlid"])["retcode"] == "0"
    assert gw.callout(NUMBER, offer["controlid"])["retcode"] == "200-036"  # consumed


def test_scripted_error_is_a_retryable_100_007(gw: Gateway, emulator) -> None:
    gw.sign_in()
    emulator.control("POST", "outcomes", {"platform": "huawei", "result": "error"})
    offer = offered(gw, emulator)
    assert gw.callout(NUMBER, offer["controlid"])["retcode"] == "100-007"
    assert gw.callout(NUMBER, offer["controlid"])["retcode"] == "0"


# -- release, logout, queries -----------------------------------------------------------------------


def test_release_ends_the_call_with_its_events(gw: Gateway, emulator) -> None:
    gw.sign_in()
    offer = offered(gw, emulator)
    call_id = gw.callout(NUMBER, offer["controlid"])["result"]
    gw.event("AgentEvent_Talking")
    assert retcode(gw.call("GET", f"/calldata/{AGENT}/allcallinfoEx/{AGENT}")) == "0"
    assert gw.call("GET", f"/calldata/{AGENT}/allcallinfoEx/{AGENT}").json()["result"] == [call_id]
    info = gw.call("GET", f"/calldata/{AGENT}/callinfobycallid/{call_id}").json()["result"]
    assert info["called"] == NUMBER
    assert retcode(gw.call("DELETE", f"/voicecall/{AGENT}/release")) == "0"
    events = gw.events(3)
    assert [(e["eventType"], e["content"]) for e in events] == [
        ("AgentEvent_Call_Release", call_id),
        ("AgentEvent_Customer_Release", {"callid": call_id}),
        ("AgentState_Ready", None),
    ]
    assert retcode(gw.call("DELETE", f"/voicecall/{AGENT}/release")) == "200-017"
    assert gw.call("GET", f"/calldata/{AGENT}/allcallinfoEx/{AGENT}").json()["result"] == []


def test_release_without_a_call(gw: Gateway) -> None:
    gw.sign_in()
    assert retcode(gw.call("DELETE", f"/voicecall/{AGENT}/release")) == "200-017"


def test_logout_is_refused_during_a_call(gw: Gateway, emulator) -> None:
    gw.sign_in()
    offer = offered(gw, emulator)
    gw.callout(NUMBER, offer["controlid"])
    assert retcode(gw.call("DELETE", f"/onlineagent/{AGENT}/logout")) == "100-010"
    gw.call("DELETE", f"/voicecall/{AGENT}/release")
    assert retcode(gw.call("DELETE", f"/onlineagent/{AGENT}/logout")) == "0"
    assert retcode(gw.poll()) == "100-006"
    assert emulator.control("GET", "huawei/agents")[AGENT] == {"signed_in": False}


def test_logout_puts_a_pending_offer_back(gw: Gateway, emulator) -> None:
    gw.sign_in()
    offered(gw, emulator)
    assert retcode(gw.call("DELETE", f"/onlineagent/{AGENT}/logout")) == "0"
    assert [r["numbers"] for r in emulator.control("GET", "huawei/campaigns")] == [[NUMBER]]


def test_control_signout_ends_a_held_poll(gw: Gateway, emulator) -> None:
    emulator.control("POST", "config", {"huawei_poll_hold_seconds": 8})
    gw.sign_in(status=3)
    threading.Timer(0.3, lambda: emulator.control("POST", f"huawei/agents/{AGENT}/signout")).start()
    started = time.monotonic()
    assert retcode(gw.poll()) == "100-006"
    assert time.monotonic() - started < 6


def test_a_supervisor_forces_the_agent_busy_and_idle(gw: Gateway, emulator) -> None:
    gw.sign_in()
    offer = offered(gw, emulator)
    forced = emulator.control("POST", f"huawei/agents/{AGENT}/state", {"state": "busy"})
    assert forced == {"state": "busy", "event": "AgentState_Force_SetNotReady"}
    assert gw.event("AgentState_Force_SetNotReady")["content"] is None
    assert emulator.control("GET", "huawei/agents")[AGENT]["ready"] is False
    assert gw.callout(NUMBER, offer["controlid"])["retcode"] == "200-036"  # withdrawn, as on saybusy
    emulator.control("POST", f"huawei/agents/{AGENT}/state", {"state": "idle"})
    assert [e["eventType"] for e in gw.events(2)] == ["AgentState_Force_Ready", "AgentEvent_Preview_CallOut"]


def test_a_forced_busy_during_a_call_is_told_at_once_and_holds_after_it(gw: Gateway, emulator) -> None:
    gw.sign_in()
    offer = offered(gw, emulator)
    gw.callout(NUMBER, offer["controlid"])
    gw.event("AgentEvent_Talking")
    emulator.control("POST", f"huawei/agents/{AGENT}/state", {"state": "busy"})
    assert gw.events(1)[0]["eventType"] == "AgentState_Force_SetNotReady"
    assert emulator.control("GET", "huawei/agents")[AGENT]["call"] is not None  # the call goes on
    gw.call("DELETE", f"/voicecall/{AGENT}/release")
    assert [e["eventType"] for e in gw.events(3)][-1] == "AgentState_Work"


def test_forcing_a_state_is_checked(gw: Gateway, emulator) -> None:
    url = f"{emulator.url}/_emulator/huawei/agents/{AGENT}/state"
    assert requests.post(url, json={"state": "idle"}, timeout=5).status_code == 404  # not signed in
    gw.sign_in()
    assert requests.post(url, json={"state": "lunch"}, timeout=5).status_code == 400


# -- faults ------------------------------------------------------------------------------------------


def test_500_and_slow_faults(gw: Gateway, emulator) -> None:
    gw.sign_in()
    emulator.control("POST", "faults", {"kind": "500", "platform": "huawei", "path": "/agentgateway"})
    assert gw.call("POST", f"/onlineagent/{AGENT}/saybusy").status_code == 500
    emulator.control("POST", "faults", {"kind": "slow", "platform": "huawei", "seconds": 0.5})
    started = time.monotonic()
    assert retcode(gw.call("POST", f"/onlineagent/{AGENT}/sayfree")) == "0"
    assert time.monotonic() - started >= 0.4
    logged = emulator.requests(platform="huawei", path=f"/agentgateway/resource/onlineagent/{AGENT}/sayfree")
    assert logged and logged[-1]["headers"].get("guid") == gw.guid
