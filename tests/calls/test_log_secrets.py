"""No log line carries a webhook secret: a whole Ryng call with its callbacks on the real stack
(daphne, Celery workers, run_streams), plus a forged and a broken callback, then every line every
process wrote is searched for the account's secret."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from django.conf import settings

from calls import services
from calls.models import Call, CallEvent, CallState, Platform
from tests.calls.conftest import lease_lead, make_account, make_agent, make_campaign
from tests.calls.test_live import call_state, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def log_sizes() -> dict[Path, int]:
    return {path: path.stat().st_size for path in (settings.VAR_DIR / "test-logs").glob("*.log")}


def log_lines_since(sizes: dict[Path, int]) -> list[str]:
    """Every line every process of the stack wrote since ``sizes`` was taken."""
    lines = []
    for path in sorted((settings.VAR_DIR / "test-logs").glob("*.log")):
        with path.open("rb") as handle:
            handle.seek(sizes.get(path, 0))
            text = handle.read().decode("utf-8", "replace")
        lines += [f"{path.name}: {line}" for line in text.splitlines()]
    return lines


def test_no_log_line_of_a_call_with_callbacks_holds_the_webhook_secret(live_stack, emulator):
    sizes = log_sizes()
    alice = make_agent("alice", 1)
    account = make_account(Platform.RYNG, emulator.url)
    campaign = make_campaign(account, "595")
    call = services.call_dial(agent=alice, lead=lease_lead(campaign, alice))
    wait_until(lambda: call_state(call) == CallState.CONNECTED, what="connected", timeout=45)
    services.call_end(agent=alice, call=call)
    wait_until(lambda: call_state(call) == CallState.ENDED, what="ended")

    secret = account.webhook_secret
    hook = f"{live_stack.base_url}/calls/hooks/ryng/{secret}"
    # A body we cannot read (kept raw, logged), one with a huge nesting, and a forged secret.
    assert requests.post(f"{hook}/terminal?token=t0ps3cret", data=b"\xff{not json", timeout=10).ok
    assert requests.post(f"{hook}/connect", data="[" * 5000 + "]" * 5000, timeout=10).ok  # no 500
    forged = requests.post(f"{live_stack.base_url}/calls/hooks/ryng/{secret[:-1]}X/connect", timeout=10)
    assert forged.status_code == 404
    wait_until(lambda: CallEvent.objects.filter(kind="unreadable").exists(), what="the unreadable callback")

    lines = log_lines_since(sizes)
    hook_lines = [line for line in lines if "/calls/hooks/ryng/" in line]
    assert hook_lines, "the callbacks are in the access log"
    assert all("/calls/hooks/ryng/[redacted]/" in line for line in hook_lines), hook_lines[:5]
    assert not [line for line in lines if secret in line or secret[:-1] in line]
    assert not [line for line in lines if "t0ps3cret" in line]
    assert Call.objects.get(pk=call.pk).state == CallState.ENDED
