"""Scale-out: two web processes (daphne) on one database and one Redis. A desk holds its socket on
one process while the platform's callback lands on the other: the event crosses through the
channel layer and the desk shows the call's new state (issue 20, item 7; the throughput the
second process buys is measured by ``bench/load_bench.py scaleout``)."""

from __future__ import annotations

import json
import re

import pytest
import requests
from django.test import Client

from calls.models import Call, CallState, Platform
from tests.calls.conftest import lease_lead, make_account, make_campaign
from tests.calls.wsclient import WSClient
from tests.emulator_fixtures import free_port, wait_for_http
from tests.factories import make_user_agent
from tests.process_fixtures import child_env, daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

STATE_RE = re.compile(r'id="desk-call"[^>]*data-state="([a-z_]+)"')


@pytest.fixture
def second_web(live_stack, emulator):
    """A second daphne next to ``live_stack``'s, same settings (database, Redis, channel prefix)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = child_env(
        PUBLIC_BASE_URL=live_stack.base_url, EMULATOR_URL=emulator.url, ALLOWED_HOSTS="127.0.0.1,localhost"
    )
    web = daphne("web-b", port, env).start()
    try:
        wait_for_http(f"{url}/login/", timeout=30)
        yield url
    finally:
        web.stop()


def desk_on(base_url: str, agent) -> WSClient:
    client = Client()
    client.force_login(agent.user)
    ws = WSClient(
        base_url.replace("http://", "ws://") + "/ws/desk/",
        cookie=f"sessionid={client.cookies['sessionid'].value}",
        origin=base_url,
    )
    first = ws.recv(timeout=10)
    assert 'id="desk-main"' in first  # the whole desk, rendered by this process
    return ws


def ryng_callback(base_url: str, account, call_id: str, event: str) -> requests.Response:
    body = {"callID": call_id, "callbackType": "connect", "event": event, "agentID": 1}
    if event == "customer-connected":
        body["callStarted"] = "2026-12-06T10:00:05Z"
    return requests.post(
        f"{base_url}/calls/hooks/ryng/{account.webhook_secret}/connect", data=json.dumps(body), timeout=20
    )


def shown_state(ws: WSClient, state: str) -> list[str]:
    return ws.recv_until(lambda frame: (m := STATE_RE.search(frame)) is not None and m.group(1) == state)


def test_a_desk_on_one_web_process_shows_a_callback_the_other_handled(live_stack, second_web, emulator):
    web_a, web_b = live_stack.base_url, second_web
    alice, bob = make_user_agent("alice", 1), make_user_agent("bob", 2)
    account = make_account(Platform.RYNG, emulator.url)
    campaign = make_campaign(account, "595")
    calls = {}
    for agent, number, call_id in ((alice, "+12125550100", "ryng-71"), (bob, "+12125550101", "ryng-72")):
        lead = lease_lead(campaign, agent, number=number)
        calls[agent.pk] = Call.objects.create(
            lead=lead,
            campaign=campaign,
            agent=agent,
            account=account,
            state=CallState.DIALING,
            number=number,
            platform_call_id=call_id,
        )
    # Alice's desk is on web A, Bob's on web B; each one's callbacks land on the other process.
    alice_desk, bob_desk = desk_on(web_a, alice), desk_on(web_b, bob)
    try:
        assert ryng_callback(web_b, account, "ryng-71", "agent-connected").status_code == 200
        frames = shown_state(alice_desk, CallState.AGENT_CONNECTED)
        assert "Calling the customer" in frames[-1]

        assert ryng_callback(web_a, account, "ryng-72", "agent-connected").status_code == 200
        shown_state(bob_desk, CallState.AGENT_CONNECTED)
        assert ryng_callback(web_a, account, "ryng-72", "customer-connected").status_code == 200
        frames = shown_state(bob_desk, CallState.CONNECTED)
        assert "Connected" in frames[-1]
    finally:
        alice_desk.close()
        bob_desk.close()
    # Each callback was applied once, by whichever process took it.
    assert Call.objects.get(pk=calls[alice.pk].pk).state == CallState.AGENT_CONNECTED
    assert Call.objects.get(pk=calls[bob.pk].pk).state == CallState.CONNECTED
    assert calls[alice.pk].events.count() == 1 and calls[bob.pk].events.count() == 2
