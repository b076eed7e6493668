"""The agents domain: an agent's profile, platform identities and presence."""

from __future__ import annotations

from django.conf import settings
from django.db import models

AGENTS_GROUP = "agents"
SUPERVISORS_GROUP = "supervisors"


class Presence(models.TextChoices):
    OFFLINE = "offline", "Offline"
    READY = "ready", "Ready"
    NOT_READY = "not_ready", "Not ready"
    ON_CALL = "on_call", "On call"
    WRAP_UP = "wrap_up", "Wrap-up"


class Agent(models.Model):
    """A person on the desk. Role comes from the user's groups (agents / supervisors)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent")
    presence = models.CharField(max_length=16, choices=Presence.choices, default=Presence.OFFLINE)
    presence_reason = models.CharField(max_length=80, blank=True)
    presence_changed_at = models.DateTimeField(null=True, blank=True)
    # Identities on each platform (DESIGN.md "Core model").
    ryng_agent_id = models.CharField("Ryng agentID", max_length=32, blank=True)
    ryng_username = models.CharField("Ryng agent username", max_length=150, blank=True)
    huawei_agent_id = models.CharField("Huawei agent id (workno)", max_length=16, blank=True)
    huawei_phone = models.CharField("Huawei phone number", max_length=32, blank=True)
    genesys_username = models.CharField("Genesys username", max_length=150, blank=True)

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return self.user.get_username()

    @property
    def username(self) -> str:
        return self.user.get_username()
