"""Reconciling: live calls whose signals stopped coming.

A live call ends only on the platform's word or the agent's End. Every ``CALLS_LOST_AFTER_SECONDS``
of silence (beat runs this every minute) the reconciler looks at the call once more:

- a dial whose task certainly never ran is handed back to ``place_call`` (once);
- where the platform can look a call up (``Provider.can_look_up_calls``), it asks: a call the
  platform still has is kept (and looked at again after another quiet spell), one the platform no
  longer has is ended, or failed as lost if it never connected;
- elsewhere a call that never got past dialing and ringing is failed as lost, and a connected
  call is ended only after ``CALLS_MAX_CALL_SECONDS`` (hours): a conversation is not a lost call;
- a call the platform has but that cannot be ended from here (Ryng sent its callID, never its
  logID) is kept, unless the agent pressed End and was told to hang up their phone;
- an end owed to the platform (a hang-up, Ryng's End Preview Call) whose try is long overdue (lost
  with a killed worker) is handed back to its task (``Call.platform_end_due_at``).

A connected call whose final signal never came ends as *ended*, never *failed*: the agent
disposes it as the conversation it was. Every decision is logged per call with its reason and
recorded as a ``CallEvent`` (source ``reconcile``), shown on the call's admin page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from calls import tasks
from calls.models import LIVE_STATES, Call, CallEvent, CallState, DialAttempt
from calls.providers import provider_class
from calls.providers.base import ProviderError
from calls.services.life import call_advance, call_fail, dial_never_sent, on_commit
from calls.services.placing import attempt_update, dial_placed, dial_request
from calls.services.sessions import agent_login, provider_for, session_save_state

log = logging.getLogger("calls.reconcile")

# What the reconciler did with a call (CallEvent.payload["action"]).
REDIAL, FOUND, KEPT, ENDED, LOST = "redial", "found", "kept", "ended", "lost"
END_AGAIN = "end_again"


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str

    @property
    def acted(self) -> bool:
        return self.action != KEPT


def calls_reconcile(*, stale_after: timedelta | None = None, max_call: timedelta | None = None) -> int:
    """Look at every live call quiet for ``stale_after`` (default ``CALLS_LOST_AFTER_SECONDS``)
    and not found live on its platform within that spell. Returns how many calls were acted on
    (re-dialed, found, ended or failed); calls kept are logged but not counted."""
    stale_after = stale_after or timedelta(seconds=settings.CALLS_LOST_AFTER_SECONDS)
    max_call = max_call or timedelta(seconds=settings.CALLS_MAX_CALL_SECONDS)
    now = timezone.now()
    quiet_since = now - stale_after
    # An End the platform cannot be told of (no ids) is looked at sooner: the agent waits on it.
    ending_since = now - timedelta(seconds=settings.CALLS_END_WITHOUT_IDS_SECONDS)
    quiet = (
        Call.objects.filter(state__in=LIVE_STATES)
        .filter(
            Q(state_changed_at__lt=quiet_since)
            | Q(platform_end_due_at__isnull=False, state_changed_at__lt=ending_since)
        )
        .filter(Q(reconciled_at__isnull=True) | Q(reconciled_at__lt=quiet_since))
        .select_related("account", "agent", "lead", "campaign")
        .order_by("id")
    )
    acted = platform_ends_handed_back(now)
    for call in quiet:
        if call.state_changed_at >= quiet_since and not _end_waits_for_ids(call):
            continue  # an End the platform can be told of: its task does, not the reconciler
        attempt = DialAttempt.objects.filter(call=call).first()
        decision = _decide(call, attempt, now, stale_after, max_call)
        _record(call, decision, now)
        acted += decision.acted
    return acted


def _end_waits_for_ids(call: Call) -> bool:
    """The agent pressed End and the platform never sent the ids to end the call there."""
    adapter = provider_class(call.account.platform)
    return call.platform_end_due_at is not None and not adapter.can_end_call(
        call.platform_call_id, call.platform_log_id
    )


def _decide(
    call: Call, attempt: DialAttempt | None, now: datetime, stale_after: timedelta, max_call: timedelta
) -> Decision:
    quiet = _minutes(now - call.state_changed_at)
    if (
        call.state == CallState.DIAL_REQUESTED
        and dial_never_sent(attempt)
        and call.created_at > now - 2 * stale_after
    ):
        Call.objects.filter(pk=call.pk).update(state_changed_at=now)
        on_commit(lambda: tasks.place_call.delay(call.pk))
        return Decision(REDIAL, f"the dial never reached the platform in {quiet}: handed to place_call again")
    adapter = provider_class(call.account.platform)
    if adapter.can_look_up_calls:
        return _ask_the_platform(call, attempt, now, max_call)
    endable = adapter.can_end_call(call.platform_call_id, call.platform_log_id)
    if _end_waits_for_ids(call):
        # The agent pressed End, the platform never sent the ids to end it there, and the desk
        # told them to hang up their phone; nothing has come since (CALLS_END_WITHOUT_IDS_SECONDS:
        # a call Ryng placed rings the agent's phone and calls back within seconds, and retries
        # a refused connect callback after a minute).
        return _finish(
            call, attempt, f"the agent ended it and was told to hang up their phone; no signal for {quiet}"
        )
    if call.connected_at is None and call.platform_call_id and not endable:
        # On the platform (a callback named it) but not to be ended from here (Ryng sent no
        # logID): closing it here would leave it up there. Its final signal, or the agent's End
        # and their phone, close it; the maximum call length at the latest.
        if call.created_at < now - max_call:
            return _lose(
                call, attempt, f"known to the platform but silent for {quiet}, over the maximum call length"
            )
        _keep(call, now)
        return Decision(
            KEPT, f"on the platform as call {call.platform_call_id} with no way to end it from here"
        )
    if call.connected_at is None:
        return _lose(call, attempt, f"no signal past {call.get_state_display().lower()} for {quiet}")
    if call.connected_at < now - max_call:
        return _end(call, f"connected for {_minutes(now - call.connected_at)}, over the maximum call length")
    _keep(call, now)
    return Decision(
        KEPT, f"connected, quiet for {quiet}; the platform cannot be asked, under the maximum length"
    )


def platform_ends_handed_back(now: datetime) -> int:
    """Ends owed to a platform whose next try is long overdue (its task was lost, e.g. a retry
    waiting inside a killed worker, which the broker would redeliver only after its visibility
    timeout): handed back to their task, once per spell. Returns how many."""
    grace = timedelta(seconds=settings.CALLS_RETRY_CAP_SECONDS)
    overdue = (
        Call.objects.filter(platform_end_due_at__lt=now - grace).select_related("account").order_by("id")
    )
    handed = 0
    for call in overdue:
        if call.state in LIVE_STATES:
            task, what = tasks.end_call, "hang-up"
        elif call.state == CallState.DISPOSED:
            task, what = tasks.dispose_call, "disposition"
        else:
            Call.objects.filter(pk=call.pk).update(platform_end_due_at=None)
            continue
        Call.objects.filter(pk=call.pk).update(platform_end_due_at=now + grace)
        on_commit(lambda pk=call.pk, task=task: task.delay(pk))
        _record(
            call,
            Decision(
                END_AGAIN,
                f"the {what} owed to the platform was due {_minutes(now - call.platform_end_due_at)} ago: sent again",
            ),
            now,
        )
        handed += 1
    return handed


def _ask_the_platform(
    call: Call, attempt: DialAttempt | None, now: datetime, max_call: timedelta
) -> Decision:
    provider, session = provider_for(agent=call.agent, account=call.account)
    try:
        if call.platform_call_id:
            live = provider.call_live(
                agent_login(agent=call.agent, account=call.account), call.platform_call_id
            )
        else:
            found = provider.lookup_call(dial_request(call)) if attempt is not None else None
            if found is not None and attempt is not None:
                dial_placed(call, attempt, found)
                Call.objects.filter(pk=call.pk).update(state_changed_at=now)
                return Decision(FOUND, f"the platform placed the dial as call {found.call_id}")
            live = False
    except ProviderError as exc:
        started = call.connected_at or call.created_at
        if started < now - max_call:
            return _finish(
                call,
                attempt,
                f"the platform could not be asked ({exc.code or exc}) for {_minutes(now - started)}",
            )
        _keep(call, now)
        return Decision(KEPT, f"the platform could not be asked ({exc.code or exc}); asking again later")
    finally:
        session_save_state(session, provider)
    if live:
        _keep(call, now)
        return Decision(KEPT, "still live on the platform")
    return _finish(call, attempt, "the platform no longer has the call; its final signal never came")


def _finish(call: Call, attempt: DialAttempt | None, reason: str) -> Decision:
    """A connected call ends as ended; one that never connected fails as lost."""
    if call.connected_at is not None:
        return _end(call, reason)
    return _lose(call, attempt, reason)


def _end(call: Call, reason: str) -> Decision:
    with transaction.atomic():
        locked = Call.objects.select_for_update().select_related("agent").get(pk=call.pk)
        call_advance(call=locked, state=CallState.ENDED)
    return Decision(ENDED, reason)


def _lose(call: Call, attempt: DialAttempt | None, reason: str) -> Decision:
    call_fail(
        call=call,
        reason=Call.FailureReason.LOST,
        message="No final signal came from the platform; the call is closed.",
        code="lost",
    )
    if attempt is not None and attempt.status != DialAttempt.Status.PLACED:
        attempt_update(attempt, DialAttempt.Status.FAILED, "lost", "No signal from the platform.")
    return Decision(LOST, reason)


def _keep(call: Call, now: datetime) -> None:
    Call.objects.filter(pk=call.pk).update(reconciled_at=now)


def _record(call: Call, decision: Decision, now: datetime) -> None:
    call.refresh_from_db(fields=["state"])
    log.info(
        "reconcile call %s (%s, %s): %s: %s",
        call.pk,
        call.account.platform,
        call.state,
        decision.action,
        decision.reason,
    )
    CallEvent.objects.create(
        account=call.account,
        call=call,
        key=f"reconcile:{decision.action}:{call.key}:{now.isoformat()}",
        source="reconcile",
        kind="call",
        state=call.state if decision.action in (ENDED, LOST) else "",
        payload={"action": decision.action, "reason": decision.reason},
        applied=decision.acted,
    )


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"
