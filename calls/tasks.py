"""Celery tasks for calls: thin wrappers that take ids and call services (calls/services/).

``place_call``, ``end_call`` and ``dispose_call`` run on the ``dial`` queue (settings
``CELERY_TASK_ROUTES``) so an import never delays a click. Tasks acknowledge late and are
rejected (redelivered) when a worker dies; that is safe because :func:`calls.services.call_place`
is at most once: a redelivered dial finds its attempt row and looks the call up instead of
dialing again.

Retry policy (owned here): a retryable :class:`ProviderError` backs off exponentially with full
jitter, ``CALLS_RETRY_BASE_SECONDS`` * 2**n capped at ``CALLS_RETRY_CAP_SECONDS``, at most
``CALLS_DIAL_MAX_RETRIES`` times; then the call fails with the platform's reason, shown to the
agent. The broker's visibility timeout (2 h) is far longer than the whole chain. Ending a call
on the platform (``end_call``, ``dispose_call``) is never given up that way: see
:func:`_platform_end`.
"""

from __future__ import annotations

import logging
import random

from celery import shared_task
from django.conf import settings

from calls import services
from calls.providers.base import ProviderError

log = logging.getLogger("calls.tasks")


def backoff_seconds(retries: int) -> float:
    """Exponential backoff with full jitter (AWS "Exponential Backoff And Jitter")."""
    base = float(settings.CALLS_RETRY_BASE_SECONDS)
    cap = float(settings.CALLS_RETRY_CAP_SECONDS)
    return random.uniform(base / 2, min(cap, base * 2**retries))


def _max_retries() -> int:
    return settings.CALLS_DIAL_MAX_RETRIES


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def place_call(self, call_id: int) -> str:
    """Place the call at most once; retry retryable failures, then fail the call."""
    outcome = services.call_place(call_id=call_id)
    if outcome.status == "retry":
        if self.request.retries >= _max_retries():
            services.call_place_give_up(call_id=call_id, error=outcome.error)
            return "failed"
        countdown = backoff_seconds(self.request.retries)
        log.info("call %s: dial retry in %.1fs (%s)", call_id, countdown, outcome.error)
        raise self.retry(countdown=countdown)
    return outcome.status


def _platform_end(task, step, call_id: int) -> None:
    """Run ``step`` (the hang-up or the disposition on the platform), owed until it succeeds.

    A call the platform may still have is never given up after a few tries: a retryable failure
    backs off (capped at ``CALLS_RETRY_CAP_SECONDS``) for as long as the call is younger than
    ``CALLS_MAX_CALL_SECONDS``, the agent told in words at the first failure; a refusal for good
    stops and is said. A retry lost with a killed worker is handed back by the reconciler
    (``Call.platform_end_due_at``), not after the broker's visibility timeout."""
    try:
        step(call_id=call_id)
    except ProviderError as exc:
        if exc.permanent:
            services.call_platform_end_refused(call_id=call_id, error=exc)
            return
        countdown = backoff_seconds(min(task.request.retries, 8))
        if services.call_platform_end_retry(call_id=call_id, error=exc, countdown=countdown):
            raise task.retry(countdown=countdown) from exc


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def end_call(self, call_id: int) -> None:
    _platform_end(self, services.call_hang_up, call_id)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def dispose_call(self, call_id: int) -> None:
    """The disposition is already ours (committed); this tells the platform, once: the call
    owes it until it is taken (a repeat finds nothing owed)."""
    _platform_end(self, services.call_platform_dispose, call_id)


@shared_task
def reconcile_calls() -> int:
    """Beat, every 60 s: calls that never got their final signal."""
    touched = services.calls_reconcile()
    if touched:
        log.info("reconciled %s stuck calls", touched)
    return touched
