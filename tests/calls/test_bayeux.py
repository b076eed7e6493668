"""Our Bayeux client against the GWS emulator's CometD server, over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from calls.bayeux import BayeuxClient


class Inbox:
    """Collects data messages from the client's thread; tests wait on it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.cond = threading.Condition()

    def __call__(self, message: dict[str, Any]) -> None:
        with self.cond:
            self.messages.append(message)
            self.cond.notify_all()

    def wait(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no matching message in {self.messages}")
                self.cond.wait(remaining)


def wait_until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


class Rest:
    """The GWS REST side sharing the client's session, as the adapter does."""

    def __init__(self, url: str, password: str = "demo"):
        self.url = url
        self.session = requests.Session()
        self.session.auth = ("agent1", password)
        self.token = ""

    def login(self) -> None:
        answer = self.session.get(f"{self.url}/api/v2/me/devices", timeout=5)
        self.token = answer.headers["X-CSRF-TOKEN"]
        self.device_id = answer.json()["devices"][0]["id"]
        self.post("/me", {"operationName": "StartContactCenterSession", "channels": ["voice"]})

    def headers(self) -> dict[str, str]:
        return {"X-CSRF-TOKEN": self.token} if self.token else {}

    def post(self, path: str, body: dict[str, Any]) -> None:
        answer = self.session.post(f"{self.url}/api/v2{path}", json=body, headers=self.headers(), timeout=5)
        assert answer.json() == {"statusCode": 0}, answer.text

    def dial(self, number: str) -> None:
        body = {
            "operationName": "Dial",
            "devicePath": f"/devices/{self.device_id}",
            "destination": {"phoneNumber": number},
        }
        self.post(f"/me/devices/{self.device_id}/calls", body)


@pytest.fixture
def rest(emulator) -> Rest:
    rest = Rest(emulator.url)
    rest.login()
    return rest


@pytest.fixture
def running() -> Iterator[list[BayeuxClient]]:
    clients: list[BayeuxClient] = []
    yield clients
    for client in clients:
        client.stop(timeout=5)


def make_client(
    emulator, rest: Rest, running: list[BayeuxClient], **kwargs: Any
) -> tuple[BayeuxClient, Inbox]:
    inbox = Inbox()
    client = BayeuxClient(
        f"{emulator.url}/api/v2/notifications",
        session=rest.session,
        channels=["/v2/me/*"],
        on_message=inbox,
        headers=rest.headers,
        network_delay=5.0,
        backoff_base=0.05,
        **kwargs,
    )
    running.append(client)
    return client, inbox


def call_states(inbox: Inbox, number: str, until: str = "Released") -> list[str]:
    inbox.wait(
        lambda m: (
            m["channel"] == "/v2/me/calls"
            and m["data"]["call"]["dnis"] == number
            and m["data"]["call"]["state"] == until
        )
    )
    return [
        m["data"]["call"]["state"]
        for m in inbox.messages
        if m["channel"] == "/v2/me/calls" and m["data"]["call"]["dnis"] == number
    ]


def test_receives_call_states_through_held_connects(emulator, rest, running):
    client, inbox = make_client(emulator, rest, running)
    client.start()
    wait_until(lambda: client.client_id is not None)
    emulator.control("POST", "outcomes", {"platform": "genesys", "result": "answer", "talk_seconds": 2})
    rest.dial("+14155550100")
    assert call_states(inbox, "+14155550100") == ["Dialing", "Ringing", "Established", "Released"]
    assert client.advice["timeout"] == 1000
    assert client.handshakes == 1


def test_rehandshakes_after_drop_clients_and_still_gets_the_next_call(emulator, rest, running):
    """The product's acceptance criterion: a dropped CometD session heals by itself."""
    rehandshakes: list[float] = []
    client, inbox = make_client(
        emulator, rest, running, on_rehandshake=lambda: rehandshakes.append(time.time())
    )
    client.start()
    wait_until(lambda: client.client_id is not None)
    first_id = client.client_id
    emulator.control("POST", "genesys/drop-clients")
    wait_until(lambda: bool(rehandshakes))
    assert client.client_id not in (None, first_id)
    assert client.handshakes == 2
    clients = emulator.control("GET", "genesys/state")["cometd"]["clients"]
    assert [c["subscriptions"] for c in clients] == [["/v2/me/*"]]  # subscribed again
    emulator.control("POST", "outcomes", {"platform": "genesys", "result": "busy"})
    rest.dial("+14155550111")
    assert call_states(inbox, "+14155550111") == ["Dialing", "Released"]


def test_stop_ends_the_loop_and_disconnects(emulator, rest, running):
    client, _ = make_client(emulator, rest, running)
    thread = client.start()
    wait_until(lambda: client.client_id is not None)
    client.stop(timeout=5)
    assert not thread.is_alive()
    assert emulator.control("GET", "genesys/state")["cometd"]["clients"] == []


def test_missing_csrf_token_is_refreshed_through_the_callback(emulator, rest, running):
    rest.token = ""
    refreshed: list[int] = []

    def on_http_error(response: requests.Response) -> None:
        refreshed.append(response.status_code)
        rest.token = rest.session.get(f"{emulator.url}/api/v2/me", timeout=5).headers["X-CSRF-TOKEN"]

    client, _ = make_client(emulator, rest, running, on_http_error=on_http_error)
    client.start()
    wait_until(lambda: client.client_id is not None)
    assert refreshed == [403]


def test_refused_credentials_back_off_without_ending(emulator, running):
    rest = Rest(emulator.url, password="wrong")
    statuses: list[int] = []
    client, _ = make_client(emulator, rest, running, on_http_error=lambda r: statuses.append(r.status_code))
    thread = client.start()
    wait_until(lambda: len(statuses) >= 3)
    assert set(statuses) == {401}
    assert client.failures >= 3 and client.client_id is None
    assert thread.is_alive()
    delays = [client._backoff() for _ in range(20)]
    ceiling = min(client.backoff_max, client.backoff_base * 2 ** (client.failures - 1))
    assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
    client.stop(timeout=5)
    assert not thread.is_alive()
