"""Sign-in throttling (django-axes): who is locked out now, and unlocking them.

axes counts wrong passwords per username and per address (``settings.AXES_LOCKOUT_PARAMETERS``)
and refuses further tries for ``AXES_COOLOFF_TIME`` once either reaches ``AXES_FAILURE_LIMIT``
(docs/security.md). A supervisor sees the agents and addresses locked out now on the agents
board and can unlock them; an administrator can also use the admin or ``axes_reset_username``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from axes.handlers.database import AxesDatabaseHandler
from axes.models import AccessAttempt
from axes.utils import reset
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Max, Sum
from django.utils import timezone

from agentdesk.models import AGENTS_GROUP

log = logging.getLogger("agentdesk.signin")


class ThrottleHandler(AxesDatabaseHandler):
    """axes' database handler, with the lockout starting at the try *after* the limit: the fifth
    wrong password is answered as wrong (with a warning that sign-in is about to pause), the sixth
    try, right or wrong, meets the lockout page."""

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        # A try refused because the lockout was already on stays refused.
        already_locked = request is not None and self.is_locked(request, credentials)
        super().user_login_failed(sender, credentials, request=request, **kwargs)
        if request is not None and not already_locked and getattr(request, "axes_locked_out", False):
            request.axes_locked_out = False
            request.signin_paused_minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)


@dataclass(frozen=True)
class Lockout:
    kind: str  # "username" | "address"
    value: str
    failures: int
    until: datetime


def _locked(field: str) -> list[tuple[str, int, datetime]]:
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    rows = (
        AccessAttempt.objects.filter(attempt_time__gt=since)
        .exclude(**{f"{field}__isnull": True})
        .values(field)
        .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
        .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
        .order_by(field)
    )
    return [(row[field], row["failures"], row["last"] + settings.AXES_COOLOFF_TIME) for row in rows]


def lockouts_for_supervisor() -> list[Lockout]:
    """Agents' usernames and addresses locked out now (a supervisor unlocks agents, not staff)."""
    by_name = _locked("username")
    agents = set(
        get_user_model()
        .objects.filter(username__in=[name for name, _, _ in by_name], groups__name=AGENTS_GROUP)
        .values_list("username", flat=True)
    )
    found = [Lockout("username", name, n, until) for name, n, until in by_name if name in agents]
    if "ip_address" in settings.AXES_LOCKOUT_PARAMETERS:
        found += [Lockout("address", ip, n, until) for ip, n, until in _locked("ip_address")]
    return found


def unlock(*, kind: str, value: str, by: str) -> bool:
    """Lift a lockout shown by :func:`lockouts_for_supervisor`; False when there is none."""
    current = {(lock.kind, lock.value) for lock in lockouts_for_supervisor()}
    if (kind, value) not in current:
        return False
    if kind == "username":
        reset(username=value)
    else:
        reset(ip=value)
    log.warning("sign-in lockout of %s %s lifted by %s", kind, value, by)
    return True
