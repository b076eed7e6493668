"""Roles are Django groups. Views use these decorators; the admin needs ``is_staff``.

:class:`SignedInBackend` reads a signed-in request's user with its roles and its agent row in one
query (three before: the user, its groups, its agent), on every request and socket."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import StringAgg, Value

from agentdesk.models import AGENTS_GROUP, SUPERVISORS_GROUP

# Between group names in the one read (a character no one types into a name).
_SEPARATOR = "\x1f"


class SignedInBackend(ModelBackend):
    """Django's ModelBackend, whose read of the session's user also brings the names of the
    user's groups (the roles :func:`is_agent` and :func:`is_supervisor` check) and the user's
    agent row (``user.agent``, the desk's every command)."""

    def get_user(self, user_id):
        user = (
            get_user_model()
            ._default_manager.select_related("agent")
            .annotate(role_names=StringAgg("groups__name", delimiter=Value(_SEPARATOR)))
            .filter(pk=user_id)
            .first()
        )
        if user is None or not self.user_can_authenticate(user):
            return None
        user._agentdesk_groups = set(filter(None, (user.role_names or "").split(_SEPARATOR)))
        return user


def _in_group(user, name: str) -> bool:
    if not user.is_authenticated:
        return False
    cache = getattr(user, "_agentdesk_groups", None)
    if cache is None:  # a user not read by SignedInBackend (a sign-in's own request, a test)
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
