"""``make shift`` (bench/shift): a short shift on a stack of its own passes every invariant, and
the checker catches a broken one. Real processes throughout: the shift starts the devstack
(daphne, Celery, beat, streams, the emulators, a private Redis) in a temporary var dir; the
checker reads a database where the test broke invariants on purpose and the emulators' own
request log.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone

from agentdesk.models import Agent, Presence
from bench.shift.__main__ import report
from bench.shift.desk import PASSWORD as DESK_PASSWORD
from bench.shift.desk import SimulatedAgent
from bench.shift.invariants import desks_consistent
from bench.shift.script import Script
from calls.models import CallState, DialAttempt
from campaigns.models import Lead
from tests.factories import make_call, make_campaign, make_leads, make_user_agent
from tests.process_fixtures import child_env

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_shift_keeps_every_invariant(tmp_path):
    """Six agents (two per platform), two platform minutes at a tenth of real time, the dial
    worker killed half-way: the shift runs, prints every invariant with its count, exits 0."""
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.pop("HEALTHZ_TOKEN", None)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.shift",
            "--agents",
            "6",
            "--minutes",
            "2",
            "--time-scale",
            "0.1",
            "--var-dir",
            str(tmp_path / "var"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    for name in (
        "one platform dial per dial attempt",
        "no call ended while the platform still had it",
        "no lead leased to two agents at once",
        "every lead touched accounted for",
        "attempts never above the campaign's cap",
        "no call outside its lead's calling window",
        "every desk's last WebSocket frame equals its state re-read over HTTP",
    ):
        assert f"ok   {name}: " in output, output
    assert "6 desks, 0 broken" in output
    assert "Dial worker killed: pid" in output and "back as pid" in output, output
    assert "All invariants hold." in output


# The invariants, by the names the shift prints.
ONE_DIAL = "one platform dial per dial attempt"
NOT_CLOSED_WHILE_LIVE = "no call ended while the platform still had it"
ONE_AGENT = "no lead leased to two agents at once"
ACCOUNTED = "every lead touched accounted for"
WITHIN_CAP = "attempts never above the campaign's cap"
IN_WINDOW = "no call outside its lead's calling window"
CHECKED_FROM_THE_DATABASE = (ONE_DIAL, NOT_CLOSED_WHILE_LIVE, ONE_AGENT, ACCOUNTED, WITHIN_CAP, IN_WINDOW)


def ryng_dial(emulator, number: str) -> dict:
    """One Make Preview Call straight to the Ryng emulator: the platform now has that call up."""
    answer = requests.post(
        f"{emulator.url}/rest-api/v1/preview/call",
        params={"agentID": 1, "campaignID": 595, "customerNumber": number},
        headers={"x-access-token": "demo-ryng-token"},
        timeout=10,
    )
    assert answer.json()["error"] is False
    return answer.json()["data"]


def placed(call) -> None:
    DialAttempt.objects.create(call=call, key=f"dial:{call.key}", status="placed", tries=1)


def two_agents_on_one_lead(emulator, campaign, ann, bob) -> list[str]:
    lead = make_leads(campaign, 1)[0]
    placed(make_call(ann, lead, CallState.CONNECTED))
    placed(make_call(bob, lead, CallState.CONNECTED))  # both live at once
    return [f"FAIL {ONE_AGENT}: 1 leads, 1 broken", f"lead {lead.pk}: calls of ann and bob overlap"]


def over_the_cap(emulator, campaign, ann, bob) -> list[str]:
    lead = make_leads(campaign, 1)[0]
    placed(make_call(ann, lead, CallState.DISPOSED))
    lead.attempts = 4  # the campaign's cap is 3
    lead.save(update_fields=["attempts"])
    return [f"FAIL {WITHIN_CAP}: 1 leads, 1 broken", f"lead {lead.pk}: 4 attempts, cap 3"]


def dialed_twice(emulator, campaign, ann, bob) -> list[str]:
    lead = make_leads(campaign, 1)[0]
    call = make_call(ann, lead, CallState.DISPOSED)
    placed(call)
    for _ in range(2):  # the one attempt reached the platform twice
        ryng_dial(emulator, lead.number)
    return [
        f"FAIL {ONE_DIAL}: 1 dial attempts, 1 broken",
        f"ryng {lead.number}: 2 dials accepted for 1 attempt(s)",
    ]


def disposed_while_up(emulator, campaign, ann, bob) -> list[str]:
    """Disposed here while the platform still has the call connected (what the reconciler's old
    rule did to every conversation past 15 minutes)."""
    lead = make_leads(campaign, 1)[0]
    data = ryng_dial(emulator, lead.number)
    call = make_call(ann, lead, CallState.DISPOSED)
    call.platform_call_id, call.platform_log_id = str(data["callID"]), str(data["logID"])
    call.save(update_fields=["platform_call_id", "platform_log_id"])
    placed(call)
    return [
        f"FAIL {NOT_CLOSED_WHILE_LIVE}: 1 calls over, 1 broken",
        f"call {call.pk} (ryng {data['callID']}) is disposed here, live there",
    ]


def left_unaccounted(emulator, campaign, ann, bob) -> list[str]:
    """A lead left in progress with no live call, and a call failed without a reason."""
    stuck, failed = make_leads(campaign, 2)
    placed(make_call(ann, stuck, CallState.DISPOSED))
    stuck.status = Lead.Status.IN_PROGRESS
    stuck.save(update_fields=["status"])
    call = make_call(ann, failed, CallState.FAILED)
    return [
        f"FAIL {ACCOUNTED}: 2 leads, 2 broken",
        f"lead {stuck.pk}: in progress with no live call",
        f"call {call.pk}: failed without a reason",
    ]


def outside_the_window(emulator, campaign, ann, bob) -> list[str]:
    campaign.window_days = ""  # no calling day at all: every dial is outside the window
    campaign.save(update_fields=["window_days"])
    lead = make_leads(campaign, 1)[0]
    call = make_call(ann, lead, CallState.DISPOSED)
    placed(call)
    return [f"FAIL {IN_WINDOW}: 1 dialed calls, 1 broken", f"call {call.pk}: dialed outside the window ("]


@pytest.mark.parametrize(
    ("broken", "plant"),
    [
        (ONE_DIAL, dialed_twice),
        (NOT_CLOSED_WHILE_LIVE, disposed_while_up),
        (ONE_AGENT, two_agents_on_one_lead),
        (ACCOUNTED, left_unaccounted),
        (WITHIN_CAP, over_the_cap),
        (IN_WINDOW, outside_the_window),
    ],
    ids=["one-dial", "closed-while-live", "one-agent", "accounted", "cap", "window"],
)
def test_the_checker_reports_each_broken_invariant_and_exits_non_zero(
    transactional_db, emulator, broken, plant
):
    """Each invariant the checker reads from the database and the emulators, broken on its own
    on purpose: reported by name with what broke it, every other one holds, and the exit status
    is 1."""
    since = timezone.now() - timedelta(seconds=1)
    campaign = make_campaign(base_url=f"{emulator.url}/rest-api/v1")
    expected = plant(emulator, campaign, make_user_agent("ann", 1), make_user_agent("bob", 2))

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.shift",
            "check",
            "--since",
            since.isoformat(),
            "--emulator-url",
            emulator.url,
        ],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    for line in expected:
        assert line in output, output
    for name in CHECKED_FROM_THE_DATABASE:
        if name != broken:
            assert f"ok   {name}: " in output, output
    assert f"FAILED: {broken}\n" in output, output


@pytest.mark.django_db(transaction=True)
def test_the_checker_reports_a_desk_whose_last_frame_is_not_its_state_over_http(live_stack, emulator, capsys):
    """A real desk (the simulator's: HTTP and its WebSocket against daphne) agrees with its
    re-read until its state changes with no event to tell it (written past the engine's one
    writer): the desk check then reports it by name with both sides, and the exit status is 1."""
    ann = make_user_agent("ann", 1)
    ann.user.set_password(DESK_PASSWORD)
    ann.user.save(update_fields=["password"])
    campaign = make_campaign(base_url=f"{emulator.url}/rest-api/v1")
    desk = SimulatedAgent(
        username="ann",
        campaign_id=campaign.pk,
        base_url=live_stack.base_url,
        emulator_url=emulator.url,
        script=Script(emulator.url),
        scale=1.0,
        seed=1,
    )
    desk.sign_in()
    try:
        assert desk.compare(settle=1.0)["same"] is True
        Agent.objects.filter(pk=ann.pk).update(presence=Presence.NOT_READY, presence_reason="Lunch")
        final = desk.compare(settle=1.0, tries=1)
    finally:
        desk.reading.clear()
        if desk.socket is not None:
            desk.socket.close()
    assert final["same"] is False
    assert final["http"]["presence"] == Presence.NOT_READY != final["frame"]["presence"]
    assert report([desks_consistent([final])]) == 1
    output = capsys.readouterr().out
    assert (
        "FAIL every desk's last WebSocket frame equals its state re-read over HTTP: 1 desks, 1 broken"
        in output
    )
    assert "ann: last frame {" in output and "'presence': 'not_ready'" in output
    assert "FAILED: every desk's last WebSocket frame equals its state re-read over HTTP" in output
