"""Roles are Django groups. Views use these decorators; the admin needs ``is_staff``."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from agentdesk.models import AGENTS_GROUP, SUPERVISORS_GROUP


def _in_group(user, name: str) -> bool:
    if not user.is_authenticated:
        return False
    cache = getattr(user, "_agentdesk_groups", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user._agentdesk_groups = cache
    return name in cache


def is_agent(user) -> bool:
    return _in_group(user, AGENTS_GROUP)


def is_supervisor(user) -> bool:
    return _in_group(user, SUPERVISORS_GROUP)


def _require(check, view):
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not check(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapped


def agent_required(view):
    """Signed-in users in the agents group; others get 403, anonymous users the login page."""
    return _require(is_agent, view)


def supervisor_required(view):
    """Signed-in users in the supervisors group; others get 403, anonymous users the login page."""
    return _require(is_supervisor, view)
