"""A Ryng call is never ended here while Ryng may still have it (issue 15, found by ``make shift``).

The call engine against the Ryng emulator over real HTTP: the dial and End Preview Call go to the
emulator; its callbacks reach a sink (``PUBLIC_BASE_URL``) and are relayed to our webhook as
they came. The shift's causes, one test each:

(a) a dial answered after our read timeout (in doubt) whose callbacks were dropped: AgentDesk
    never learned the callID/logID End Preview Call needs (seed 001), yet ended the call on its
    side at the agent's End and "disposed" it with nothing sent: Ryng kept the call up;
(b) the same with the connect callbacks delivered: the callID came, the logID (only in the dial's
    answer and the terminal callback) never did; the PATCH was refused and given up on;
(c) End Preview Call answered 500 more often than the four tries allowed: given up, call up.

And an end owed to Ryng whose retry was lost with a killed worker is handed back by the
reconciler, not after the broker's two-hour visibility timeout.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from calls import services, tasks
from calls.models import LIVE_STATES, Call, CallEvent, CallState, DialAttempt
from calls.providers.base import ProviderError
from campaigns.models import Disposition

pytestmark = pytest.mark.django_db

DIAL_PATH = "/rest-api/v1/preview/call"


@pytest.fixture
def ryng(ryng_lead, emulator, callback_sink, settings):
    """Callbacks to the sink; answers waited for 0.5 s (the 10 s default, compressed)."""
    settings.PUBLIC_BASE_URL = callback_sink.url
    account = ryng_lead.campaign.account
    account.options = {"read_timeout": 0.5}
    account.save()
    emulator.control("POST", "outcomes", {"number": ryng_lead.number, "result": "answer"})
    return ryng_lead


def relay(client, sink, count: int, path: str = "") -> None:
    """Hand the callbacks the platform sent (from the ``count``-th on, as they came) to our
    webhook."""
    for row in sink.wait_for(count, path=path or None)[count - 1 :]:
        assert client.post(row["path"], data=row["body"], content_type="application/json").status_code == 200


def patches(emulator) -> list[dict]:
    return [r for r in emulator.requests(platform="ryng", path=DIAL_PATH) if r["method"] == "PATCH"]


def ryng_call(emulator, state: str, timeout: float = 10) -> dict:
    """The emulator's one call, once it reached ``state`` (its clock runs in real time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        calls = emulator.control("GET", "ryng/calls")
        if calls and calls[0]["state"] == state:
            return calls[0]
        time.sleep(0.05)
    raise AssertionError(f"the Ryng call never reached {state}: {emulator.control('GET', 'ryng/calls')}")


def dial_in_doubt(emulator, lead, agent) -> Call:
    """A dial Ryng took but answered after our timeout: in doubt, and never sent again."""
    emulator.control("POST", "faults", {"kind": "slow", "platform": "ryng", "path": DIAL_PATH, "seconds": 1})
    call = services.call_dial(agent=agent, lead=lead)
    first = services.call_place(call_id=call.pk)
    assert first.status == "retry" and first.error.code == "timeout"
    assert services.call_place(call_id=call.pk).status == "waiting"  # no lookup on Ryng
    assert DialAttempt.objects.get(call=call).status == DialAttempt.Status.AMBIGUOUS
    return call


def end(agent, call: Call) -> Call:
    """The agent's End and what ``end_call`` then runs."""
    services.call_end(agent=agent, call=call)
    services.call_hang_up(call_id=call.pk)
    call.refresh_from_db()
    return call


def dispose(agent, call: Call, name: str = "Interested") -> Call:
    """The agent's disposition and what ``dispose_call`` then runs."""
    disposition = Disposition.objects.get(campaign=call.campaign, name=name)
    services.call_dispose(agent=agent, call=call, disposition=disposition, notes="Spoke to her.")
    services.call_platform_dispose(call_id=call.pk)
    call.refresh_from_db()
    return call


def test_a_slow_dial_whose_callbacks_were_dropped_stays_up_here_until_ryng_ends_it(
    ryng, alice, emulator, callback_sink, client
):
    """(a) Before: End ended the call here at once, the disposition had no ids to send, and
    Ryng kept the customer on the line for good."""
    for label in ("agent-connected", "customer-connected"):
        emulator.control("POST", "callback-faults", {"kind": "drop", "label": label, "count": 1})
    call = dial_in_doubt(emulator, ryng, alice)
    up = ryng_call(emulator, "connected")
    assert len(emulator.requests(platform="ryng", path=DIAL_PATH)) == 1  # dialed once, never again
    call = end(alice, call)
    assert call.state in LIVE_STATES  # not ended here: Ryng has it, and nothing can end it there
    assert "Hang up your phone" in call.platform_end_error
    assert call.platform_end_due_at is not None  # owed still
    assert patches(emulator) == []
    # The agent hangs up their phone: Ryng ends the call and says so, with both ids.
    emulator.control("POST", f"ryng/calls/{up['callID']}/hangup")
    relay(client, callback_sink, 1, "/calls/hooks/ryng/")
    call.refresh_from_db()
    assert call.state == CallState.ENDED
    assert (call.platform_call_id, call.platform_log_id) == (str(up["callID"]), str(up["logID"]))
    call = dispose(alice, call)
    there = emulator.control("GET", f"ryng/calls/{up['callID']}")
    assert there["disposed"] is True and there["disposition"] == "Interested"
    assert call.platform_end_due_at is None  # nothing owed any more


def test_a_slow_dial_known_only_by_its_callid_is_kept_and_ended_once_the_logid_comes(
    ryng, alice, emulator, callback_sink, client
):
    """(b) The connect callbacks carry the callID but no logID, which End Preview Call requires
    (seed 001): the PATCH could not name the call. The reconciler no longer fails such a call as
    lost (it is on Ryng), End keeps it owed, and the logID of the terminal callback ends it."""
    emulator.control("POST", "callback-faults", {"kind": "drop", "label": "customer-connected", "count": 1})
    call = dial_in_doubt(emulator, ryng, alice)
    up = ryng_call(emulator, "connected")
    relay(client, callback_sink, 1, "/calls/hooks/ryng/")  # agent-connected
    call.refresh_from_db()
    assert call.state == CallState.AGENT_CONNECTED and call.platform_call_id == str(up["callID"])
    assert call.platform_log_id == ""
    Call.objects.filter(pk=call.pk).update(state_changed_at=timezone.now() - timedelta(hours=1))
    services.calls_reconcile(stale_after=timedelta(minutes=15))
    call.refresh_from_db()
    assert call.state == CallState.AGENT_CONNECTED  # before: failed as lost, and disposed with no PATCH
    decision = CallEvent.objects.get(call=call, source="reconcile").payload
    assert decision["action"] == "kept" and "no way to end it from here" in decision["reason"]
    call = end(alice, call)
    assert call.state in LIVE_STATES and "Hang up your phone" in call.platform_end_error
    assert patches(emulator) == []  # never a PATCH without its logID
    emulator.control("POST", f"ryng/calls/{up['callID']}/hangup")
    relay(client, callback_sink, 2, "/calls/hooks/ryng/")  # call-ended, with callLogID
    call.refresh_from_db()
    assert call.state == CallState.ENDED and call.platform_log_id == str(up["logID"])
    dispose(alice, call)
    assert emulator.control("GET", f"ryng/calls/{up['callID']}")["disposed"] is True


def test_a_disposition_waiting_for_ryngs_ids_goes_when_a_late_callback_brings_them(
    ryng, alice, emulator, callback_sink, client, django_capture_on_commit_callbacks
):
    """A call failed as lost (no signal at all) and disposed here keeps its End Preview Call
    owed; the terminal callback that comes later brings the ids, and it is sent."""
    for label in ("agent-connected", "customer-connected"):
        emulator.control("POST", "callback-faults", {"kind": "drop", "label": label, "count": 1})
    call = dial_in_doubt(emulator, ryng, alice)
    up = ryng_call(emulator, "connected")
    Call.objects.filter(pk=call.pk).update(state_changed_at=timezone.now() - timedelta(hours=1))
    services.calls_reconcile(stale_after=timedelta(minutes=15))
    call.refresh_from_db()
    assert call.state == CallState.FAILED and call.failure_reason == Call.FailureReason.LOST
    call = dispose(alice, call, "No answer")
    assert call.platform_end_due_at is not None and "Hang up your phone" in call.platform_end_error
    emulator.control("POST", f"ryng/calls/{up['callID']}/hangup")
    with django_capture_on_commit_callbacks() as queued:
        relay(client, callback_sink, 1, "/calls/hooks/ryng/")
    # dispose_call, at once (beside the live events telling the desk and the wallboard the details)
    assert len([q for q in queued if "emit" not in q.__qualname__]) == 1
    services.call_platform_dispose(call_id=call.pk)
    there = emulator.control("GET", f"ryng/calls/{up['callID']}")
    assert there["disposed"] is True and there["disposition"] == "No answer"


def test_end_preview_call_answered_500_more_than_four_times_is_tried_until_ryng_takes_it(
    ryng, alice, emulator, caplog
):
    """(c) Before: four tries, then given up with the call up on Ryng. Now the tries go on
    (backing off) while the call is younger than the maximum call length, and the agent reads at
    the first failure that AgentDesk keeps trying."""
    caplog.set_level(logging.INFO, logger="calls")
    call = services.call_dial(agent=alice, lead=ryng)
    assert services.call_place(call_id=call.pk).status == "placed"
    up = ryng_call(emulator, "connected")
    call = end(alice, call)
    assert call.state == CallState.ENDED  # the ids are known: the PATCH will end it there
    emulator.control("POST", "faults", {"kind": "500", "platform": "ryng", "path": DIAL_PATH, "count": 6})
    disposition = Disposition.objects.get(campaign=call.campaign, name="Interested")
    services.call_dispose(agent=alice, call=call, disposition=disposition, notes="")
    tasks.dispose_call.apply(args=[call.pk])  # eager: its retries run at once
    assert [p["status"] for p in patches(emulator)] == [500] * 6 + [200]
    assert emulator.control("GET", f"ryng/calls/{up['callID']}")["disposed"] is True
    call.refresh_from_db()
    assert call.platform_end_due_at is None and call.platform_end_tries is None
    assert "did not take its end (try 6" in caplog.text


def test_an_owed_end_whose_retry_died_with_its_worker_is_handed_back_by_the_reconciler(
    ryng, alice, emulator, django_capture_on_commit_callbacks
):
    """A retry waiting its countdown inside a killed worker comes back only after the broker's
    visibility timeout (2 h); the reconciler hands the owed end back within a minute or two."""
    call = services.call_dial(agent=alice, lead=ryng)
    assert services.call_place(call_id=call.pk).status == "placed"
    call = end(alice, call)
    disposition = Disposition.objects.get(campaign=call.campaign, name="Interested")
    services.call_dispose(agent=alice, call=call, disposition=disposition, notes="")
    # The first try failed and its retry (due a while ago) never ran: the worker was killed.
    Call.objects.filter(pk=call.pk).update(
        platform_end_due_at=timezone.now() - timedelta(minutes=5), platform_end_tries=1
    )
    with django_capture_on_commit_callbacks() as queued:
        assert services.calls_reconcile() == 1
    assert len(queued) == 1
    decision = CallEvent.objects.get(call=call, source="reconcile").payload
    assert decision["action"] == "end_again" and "disposition" in decision["reason"]
    services.call_platform_dispose(call_id=call.pk)  # what the handed-back dispose_call runs
    assert emulator.control("GET", "ryng/calls")[0]["disposed"] is True
    with django_capture_on_commit_callbacks() as queued:
        assert services.calls_reconcile() == 0  # nothing owed any more
    assert queued == []


def test_end_on_a_dial_ryng_never_placed_closes_within_minutes_not_at_the_lost_call_limit(
    ryng, alice, emulator
):
    """A bare 500 to the dial: in doubt, and in fact Ryng has no call. End cannot reach Ryng
    (no ids); the desk says to hang up the phone, and with no signal for
    ``CALLS_END_WITHOUT_IDS_SECONDS`` (2 min) the reconciler closes the call, not after the
    15 minutes of ``CALLS_LOST_AFTER_SECONDS``."""
    emulator.control("POST", "faults", {"kind": "500", "platform": "ryng", "path": DIAL_PATH})
    call = services.call_dial(agent=alice, lead=ryng)
    assert services.call_place(call_id=call.pk).status == "retry"
    assert services.call_place(call_id=call.pk).status == "waiting"
    call = end(alice, call)
    assert call.state == CallState.DIAL_REQUESTED and "Hang up your phone" in call.platform_end_error
    Call.objects.filter(pk=call.pk).update(state_changed_at=timezone.now() - timedelta(minutes=1))
    services.calls_reconcile()
    call.refresh_from_db()
    assert call.state == CallState.DIAL_REQUESTED  # still in its grace
    Call.objects.filter(pk=call.pk).update(state_changed_at=timezone.now() - timedelta(minutes=3))
    services.calls_reconcile()
    call.refresh_from_db()
    assert call.state == CallState.FAILED and call.failure_reason == Call.FailureReason.LOST
    decision = CallEvent.objects.get(call=call, source="reconcile").payload
    assert "told to hang up their phone" in decision["reason"]
    dispose(alice, call, "No answer")
    assert patches(emulator) == []  # nothing to name on Ryng; a late callback would still send it


def test_end_preview_call_answered_after_the_timeout_is_settled_by_ryngs_disposed_callback(
    ryng, alice, emulator, callback_sink, client
):
    """(b) What the refusals were: the ids sent were right (the dial's answer's), and the
    emulator is faithful to seed 001 (a call already disposed is refused with its one 500,
    "Failed to dispose of call."). A PATCH answered after the read timeout had been applied by
    Ryng; its retry found the call disposed and was refused. Now Ryng's terminal callback with
    ``callDisposed`` settles the owed end, and the retry sends nothing."""
    call = services.call_dial(agent=alice, lead=ryng)
    assert services.call_place(call_id=call.pk).status == "placed"
    up = ryng_call(emulator, "connected")
    call = end(alice, call)
    assert call.state == CallState.ENDED
    emulator.control("POST", "faults", {"kind": "slow", "platform": "ryng", "path": DIAL_PATH, "seconds": 1})
    disposition = Disposition.objects.get(campaign=call.campaign, name="Interested")
    services.call_dispose(agent=alice, call=call, disposition=disposition, notes="")
    with pytest.raises(ProviderError) as timed_out:
        services.call_platform_dispose(call_id=call.pk)
    assert timed_out.value.code == "timeout"
    assert services.call_platform_end_retry(call_id=call.pk, error=timed_out.value, countdown=1)
    terminal = f"/calls/hooks/ryng/{call.account.webhook_secret}/terminal"
    relay(client, callback_sink, 1, terminal)  # Ryng took it after all: call-ended, disposed
    assert emulator.control("GET", f"ryng/calls/{up['callID']}")["disposed"] is True
    call.refresh_from_db()
    assert call.platform_end_due_at is None  # settled by Ryng's word
    services.call_platform_dispose(call_id=call.pk)  # the retry
    assert [p["status"] for p in patches(emulator)] == [200]  # the slow one only; no repeat
