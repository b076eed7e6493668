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

import requests
from django.utils import timezone

from calls.models import CallState, DialAttempt
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


def test_the_checker_reports_broken_invariants_and_exits_non_zero(transactional_db, emulator):
    """A lead called by two agents at once, four attempts on a campaign capped at three, and one
    attempt that reached the platform twice (two Make Preview Call requests for one call): each
    is reported by name with what broke it, and the exit status is 1."""
    since = timezone.now() - timedelta(seconds=1)
    campaign = make_campaign(base_url=f"{emulator.url}/rest-api/v1")
    lead, other_lead = make_leads(campaign, 2)
    ann, bob = make_user_agent("ann", 1), make_user_agent("bob", 2)
    first = make_call(ann, lead, CallState.CONNECTED)
    make_call(bob, lead, CallState.CONNECTED)  # leased to two agents: both live at once
    DialAttempt.objects.create(call=first, key=f"dial:{first.key}", status="placed", tries=1)
    lead.attempts = 4  # over the cap of 3
    lead.save(update_fields=["attempts"])
    twice = make_call(ann, other_lead, CallState.DISPOSED)
    DialAttempt.objects.create(call=twice, key=f"dial:{twice.key}", status="placed", tries=1)
    for _ in range(2):  # the one attempt dialed twice on the platform
        answer = requests.post(
            f"{emulator.url}/rest-api/v1/preview/call",
            params={"agentID": 1, "campaignID": 595, "customerNumber": other_lead.number},
            headers={"x-access-token": "demo-ryng-token"},
            timeout=10,
        )
        assert answer.json()["error"] is False

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
    assert "FAIL no lead leased to two agents at once: 2 leads, 1 broken" in output, output
    assert f"lead {lead.pk}: calls of ann and bob overlap" in output
    assert "FAIL attempts never above the campaign's cap: 2 leads, 1 broken" in output
    assert f"lead {lead.pk}: 4 attempts, cap 3" in output
    assert "FAIL one platform dial per dial attempt: 2 dial attempts, 1 broken" in output
    assert f"ryng {other_lead.number}: 2 dials accepted for 1 attempt(s)" in output
    assert "ok   no call outside its lead's calling window" in output
    assert "FAILED: " in output
