"""Desk tasks (thin: they call services). Scheduled by Celery beat (settings)."""

from __future__ import annotations

from celery import shared_task

from agentdesk import services


@shared_task(name="agentdesk.tasks.expire_leases", ignore_result=True)
def expire_leases() -> int:
    """Free leads whose desks stopped renewing their lease (every 30 s)."""
    return services.lease_release_expired()
