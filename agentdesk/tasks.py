"""Desk tasks (thin: they call services). Scheduled by Celery beat (settings)."""

from __future__ import annotations

from celery import shared_task

from agentdesk import services


@shared_task(name="agentdesk.tasks.expire_leases", ignore_result=True)
def expire_leases() -> int:
    """Free leads whose desks stopped renewing their lease, and move leads whose retry delay or
    callback time has passed into the ready queue (every 30 s)."""
    services.leads_promote_due()
    return services.lease_release_expired()
