"""The agents domain: an agent's profile and presence (platform identities: calls.models)."""

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


# What an agent picks from when going Not ready, and when skipping a lead.
NOT_READY_REASONS = ["Break", "Lunch", "Meeting", "Training", "Coaching"]
SKIP_REASONS = ["Not a good time", "Wrong campaign", "Bad data", "Duplicate", "Other"]
SKIP_OTHER = "Other"  # the skip reason that takes a few words of the agent's own
SKIP_OTHER_MAX = 80


class Agent(models.Model):
    """A person on the desk. Role comes from the user's groups (agents / supervisors)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent")
    presence = models.CharField(max_length=16, choices=Presence.choices, default=Presence.OFFLINE)
    presence_reason = models.CharField(max_length=80, blank=True)
    presence_changed_at = models.DateTimeField(null=True, blank=True)
    # The campaign the desk works: kept here, not in a browser session, so every process that
    # renders the desk (a socket's consumer, a command's answer) shows the same campaign.
    desk_campaign = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who each platform knows the agent as: ``calls.models.PlatformIdentity`` (``identities``),
    # one row per platform, read by the platform's adapter (DESIGN.md "Core model").

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return self.user.get_username()

    @property
    def username(self) -> str:
        return self.user.get_username()


class PresenceSpan(models.Model):
    """One stretch of an agent's presence: written with every change of ``Agent.presence`` (by
    ``calls.services.presence.presence_write``, the one writer), so the desk can sum an agent's
    day by state. The open span (``ended_at`` empty) is the current one."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="presence_spans")
    presence = models.CharField(max_length=16, choices=Presence.choices)
    reason = models.CharField(max_length=80, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [models.Index(fields=["agent", "started_at"], name="presence_span_day_idx")]

    def __str__(self) -> str:
        return f"{self.agent} {self.presence} from {self.started_at:%H:%M}"
