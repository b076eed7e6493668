"""Reconciling: calls whose final signal never came."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from calls import tasks
from calls.models import LIVE_STATES, Call, CallEvent, CallState, DialAttempt
from calls.providers import provider_class
from calls.providers.base import ProviderError
from calls.services.life import call_fail, on_commit
from calls.services.placing import attempt_update, dial_placed, dial_request
from calls.services.sessions import provider_for, session_save_state


def calls_reconcile(*, stale_after: timedelta | None = None) -> int:
    """Calls stuck in a live state past ``stale_after`` (default ``CALLS_LOST_AFTER_SECONDS``,
    15 min). A dial that certainly never went out (its task was lost) is handed back to
    ``place_call`` once; a dial in doubt is looked up where the platform can; everything else is
    failed with reason "lost" and the agent can dispose it. Returns how many calls were touched."""
    stale_after = stale_after or timedelta(seconds=settings.CALLS_LOST_AFTER_SECONDS)
    now = timezone.now()
    stuck = Call.objects.filter(state__in=LIVE_STATES, state_changed_at__lt=now - stale_after).select_related(
        "account", "agent", "lead", "campaign"
    )
    touched = 0
    for call in stuck:
        attempt = DialAttempt.objects.filter(call=call).first()
        if _reconcile_one(call, attempt, now, stale_after):
            touched += 1
    return touched


def _never_sent(attempt: DialAttempt | None) -> bool:
    """True when no request for this dial can have reached the platform."""
    if attempt is None or attempt.tries == 0:
        return True
    return attempt.status == DialAttempt.Status.PENDING and attempt.error_code not in ("", "no_lookup")


def _reconcile_one(call: Call, attempt: DialAttempt | None, now: datetime, stale_after: timedelta) -> bool:
    if (
        call.state == CallState.DIAL_REQUESTED
        and _never_sent(attempt)
        and call.created_at > now - 2 * stale_after
    ):
        Call.objects.filter(pk=call.pk).update(state_changed_at=now)
        on_commit(lambda: tasks.place_call.delay(call.pk))
        return True
    lookup = provider_class(call.account.platform).can_look_up_calls
    if attempt is not None and not call.platform_call_id and lookup:
        provider, session = provider_for(agent=call.agent, account=call.account)
        try:
            found = provider.lookup_call(dial_request(call))
        except (NotImplementedError, ProviderError):
            found = None
        finally:
            session_save_state(session, provider)
        if found is not None:
            dial_placed(call, attempt, found)
            Call.objects.filter(pk=call.pk).update(state_changed_at=now)
            return True
    if not call_fail(
        call=call,
        reason=Call.FailureReason.LOST,
        message="No final signal came from the platform; the call is closed.",
        code="lost",
    ):
        return False
    if attempt is not None and attempt.status != DialAttempt.Status.PLACED:
        attempt_update(attempt, DialAttempt.Status.FAILED, "lost", "No signal from the platform.")
    CallEvent.objects.get_or_create(
        account=call.account,
        key=f"reconcile:lost:{call.key}",
        defaults={
            "call": call,
            "source": "reconcile",
            "kind": "call",
            "state": CallState.FAILED,
            "applied": True,
        },
    )
    return True
