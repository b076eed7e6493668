"""The engine across real processes (tests/process_fixtures.py ``live_stack``): daphne, Celery
workers and run_streams on the test database, next to the emulators.

- a call event reaches a real WebSocket client connected to daphne from a change a Celery worker
  made, along Ryng's whole dial -> states -> end -> dispose path;
- a Celery worker SIGKILLed while its dial is in flight neither loses the call nor places it twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from django.test import Client

from calls import services
from calls.models import Call, CallEvent, CallState, DialAttempt, Platform
from calls.tasks import place_call
from tests.calls.conftest import lease_lead, make_account, make_agent, make_campaign
from tests.calls.wsclient import WSClient
from tests.process_fixtures import celery_worker, child_env, wait_for_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DIAL_PATH = "/rest-api/v1/preview/call"


def wait_until(check: Callable[[], object], timeout: float = 45.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def dials(emulator) -> list[dict]:
    return [r for r in emulator.requests(platform="ryng", path=DIAL_PATH) if r["method"] == "POST"]


def call_state(call: Call) -> str:
    return Call.objects.values_list("state", flat=True).get(pk=call.pk)


def desk_socket(live_stack, agent) -> WSClient:
    client = Client()
    client.force_login(agent.user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    host = live_stack.base_url.removeprefix("http://")
    return WSClient(f"ws://{host}/ws/desk/", cookie=cookie, origin=live_stack.base_url)


def test_ryng_call_from_worker_reaches_a_websocket_client(live_stack, emulator):
    alice = make_agent("alice", 1)
    campaign = make_campaign(make_account(Platform.RYNG, emulator.url), "595")
    lead = lease_lead(campaign, alice)
    ws = desk_socket(live_stack, alice)
    try:
        call = services.call_dial(agent=alice, lead=lead)
        # The worker placed it; Ryng's connect callbacks came back through daphne.
        wait_until(lambda: call_state(call) == CallState.CONNECTED, what="connected", timeout=45)
        frames = ws.recv_until(lambda m: 'id="desk-call"' in m, timeout=20)
        assert any("hx-swap-oob" in f for f in frames)
        call.refresh_from_db()
        assert call.platform_call_id and call.dial_attempt.status == DialAttempt.Status.PLACED

        services.call_end(agent=alice, call=call)
        wait_until(lambda: call_state(call) == CallState.ENDED, what="ended")
        disposition = campaign.dispositions.get(name="Interested")
        services.call_dispose(agent=alice, call=call, disposition=disposition, notes="wants the plus plan")
        # dispose_call PATCHed Ryng, whose disposed terminal callback came back and was kept.
        wait_until(
            lambda: CallEvent.objects.filter(call=call, key__endswith=":disposed").exists(),
            what="the disposed terminal callback",
        )
    finally:
        ws.close()
    patches = [r for r in emulator.requests(platform="ryng") if r["method"] == "PATCH"]
    assert len(patches) == 1 and "wants the plus plan" in patches[0]["body"]
    assert len(dials(emulator)) == 1
    assert call_state(call) == CallState.DISPOSED


def test_worker_killed_mid_dial_neither_loses_nor_duplicates_the_call(live_stack, emulator):
    alice = make_agent("alice", 1)
    campaign = make_campaign(make_account(Platform.RYNG, emulator.url), "595")
    lead = lease_lead(campaign, alice)
    # The platform holds the dial request for 3 s: the worker is mid-request when it dies.
    emulator.control("POST", "faults", {"kind": "slow", "platform": "ryng", "path": DIAL_PATH, "seconds": 3})
    call = Call.objects.create(
        lead=lead,
        campaign=campaign,
        agent=alice,
        account=campaign.account,
        state=CallState.DIAL_REQUESTED,
        number=lead.number,
    )
    queue = f"dial-kill-{call.pk}"  # a queue of its own, so the live_stack worker stays out of it
    # A short visibility timeout: the broker itself redelivers the dead worker's unacked task.
    env = child_env(
        PUBLIC_BASE_URL=live_stack.base_url, EMULATOR_URL=emulator.url, CELERY_VISIBILITY_TIMEOUT="4"
    )
    doomed = celery_worker(queue, f"doomed{call.pk}", env).start()
    survivor = None
    try:
        wait_for_worker(f"doomed{call.pk}-")
        place_call.apply_async((call.pk,), queue=queue)
        wait_until(
            lambda: DialAttempt.objects.filter(call=call, tries=1).exists(), what="the committed attempt"
        )
        time.sleep(1.0)  # the request is now inside the emulator's 3 s hold
        doomed.kill()
        survivor = celery_worker(queue, f"survivor{call.pk}", env).start()
        wait_for_worker(f"survivor{call.pk}-")
        wait_until(lambda: call_state(call) == CallState.CONNECTED, what="connected", timeout=45)
        # Kombu restores unacked messages every ~10 s once they are older than the visibility
        # timeout: the redelivered task must run in the survivor, find the attempt, and not redial.
        wait_until(
            lambda: (
                "calls.tasks.place_call" in survivor.log_tail(200) and "succeeded" in survivor.log_tail(200)
            ),
            what="the broker's redelivery of the dead worker's task",
            timeout=45,
        )
    finally:
        doomed.stop()
        if survivor is not None:
            survivor.stop()
    assert len(dials(emulator)) == 1
    call.refresh_from_db()
    assert call.platform_call_id
    assert DialAttempt.objects.get(call=call).status == DialAttempt.Status.PLACED
    assert Call.objects.filter(lead=lead).count() == 1
