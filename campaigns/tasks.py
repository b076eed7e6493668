"""Celery tasks for campaigns: thin wrappers that load by id and call a service (STYLE.md).

All of them run on the ``imports`` queue (``CELERY_TASK_ROUTES["campaigns.tasks.*"]``) so a big
sheet never delays a dial.
"""

from __future__ import annotations

from celery import shared_task

from calls.providers.base import ProviderError
from campaigns import services

SYNC_RETRIES = 5


@shared_task(acks_late=True)
def upload_dry_run(upload_id: int) -> None:
    services.upload_dry_run_run(upload_id=upload_id)


@shared_task(acks_late=True)
def upload_import(upload_id: int) -> None:
    services.upload_import_run(upload_id=upload_id)


@shared_task(acks_late=True)
def upload_undo(upload_id: int) -> None:
    services.upload_undo_run(upload_id=upload_id)


@shared_task(bind=True, acks_late=True, max_retries=SYNC_RETRIES)
def campaign_sync(self, campaign_id: int) -> None:
    """Push unpushed leads to Ryng. Transient failures retry with exponential backoff (10 s, 20 s,
    40 s ...); chunks already accepted are not pushed again (``Lead.pushed_at``)."""
    try:
        services.campaign_sync_run(campaign_id=campaign_id)
    except ProviderError as exc:
        final = exc.permanent or self.request.retries >= SYNC_RETRIES
        services.campaign_sync_failed(campaign_id=campaign_id, message=str(exc), final=final)
        if not final:
            raise self.retry(exc=exc, countdown=10 * 2**self.request.retries) from exc


@shared_task
def campaign_breakdown(campaign_id: int) -> None:
    """Count why a big campaign's leads are not dialable, for its page (a few seconds at
    millions of leads)."""
    services.campaign_breakdown_count_run(campaign_id=campaign_id)
